// Runs the reference handler for bench/edge.py: the Node twin of bench/edge_harness.py,
// with the same modes and JSON-lines protocol, so both languages are measured alike.
//
//   node bench.mjs cold  <event.json> <host>
//   node bench.mjs serve <event.json>          (JSON lines on stdin/stdout)
//   node bench.mjs mem   <event.json> <hosts>
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

const [mode, eventPath, arg] = process.argv.slice(2);
const started = process.hrtime.bigint();
const { handler, ddb } = await import("./handler.mjs");
const imported = process.hrtime.bigint();
const ms = (from, to) => Number(to - from) / 1e6;
const template = readFileSync(eventPath, "utf8");

// A fresh event per invocation (the runtime deserializes one per request), built outside
// the timed region.
const makeEvent = (host) => {
  const event = JSON.parse(template);
  event.Records[0].cf.request.headers.host = [{ key: "Host", value: host }];
  return event;
};
const routed = (result) =>
  result.status === undefined ? (result.headers["workspace-id"]?.[0]?.value ?? null) : null;
// This process image's peak RSS (VmHWM), as the Python twin reads it; resourceUsage's
// maxRSS survives exec on Linux and so starts at the spawning parent's RSS.
const peakRssKb = () => {
  try {
    const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith("VmHWM:"));
    if (line) return Number(line.split(/\s+/)[1]);
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS;
};
const send = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

// Count GetItem calls by wrapping send: one per call, like the Python side's before-call.
let reads = 0;
const realSend = ddb.send.bind(ddb);
ddb.send = (command, ...rest) => {
  reads += 1;
  return realSend(command, ...rest);
};

if (mode === "cold") {
  const result = await handler(makeEvent(arg));
  const done = process.hrtime.bigint();
  send({ routed: routed(result), import_ms: ms(started, imported), first_call_ms: ms(imported, done) });
} else if (mode === "mem") {
  // Reads are stubbed (a distinct workspace per host, the worst case); the real client
  // and SDK stay loaded, as in the Python twin.
  ddb.send = async (command) => ({ Item: { workspaceId: "ws-" + command.input.Key.domain.split(".")[0] } });
  const baselineKb = peakRssKb();
  const count = Number(arg);
  for (let i = 0; i < count; i++) await handler(makeEvent(`h${i}.mem-bench.com`));
  send({ cached: count, baseline_kb: baselineKb, peak_kb: peakRssKb() });
} else if (mode === "serve") {
  const replayHosts = new Map();
  const realDateNow = Date.now;
  let virtualBase = null;
  send({ ready: true });
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line);
    // The SDK's keep-alive socket would keep the process alive after a plain break.
    if (cmd.op === "exit") process.exit(0);
    if (cmd.op === "hit") {
      for (const host of cmd.hosts) await handler(makeEvent(host));
      const samples = new Array(cmd.n);
      for (let i = 0; i < cmd.n; i++) {
        const event = makeEvent(cmd.hosts[i % cmd.hosts.length]);
        const t0 = process.hrtime.bigint();
        await handler(event);
        samples[i] = Number(process.hrtime.bigint() - t0);
      }
      send({ samples_ns: samples });
    } else if (cmd.op === "miss") {
      const samples = [];
      let hits = 0;
      for (const host of cmd.hosts) {
        const event = makeEvent(host);
        const t0 = process.hrtime.bigint();
        const result = await handler(event);
        samples.push(Number(process.hrtime.bigint() - t0));
        if (routed(result) !== null) hits += 1;
      }
      send({ samples_ns: samples, routed: hits });
    } else if (cmd.op === "replay") {
      if (!replayHosts.has(cmd.file)) {
        replayHosts.set(cmd.file, readFileSync(cmd.file, "utf8").split(/\s+/).filter(Boolean));
      }
      // Simulated time, as in the Python twin: request i arrives at i / rate seconds. The
      // reference's cache reads Date.now(), so that is what follows the simulated clock.
      virtualBase ??= realDateNow();
      let index = cmd.start;
      Date.now = () => virtualBase + (index * 1000) / cmd.rate;
      const before = reads;
      let hits = 0;
      const t0 = process.hrtime.bigint();
      try {
        for (const host of replayHosts.get(cmd.file).slice(cmd.start, cmd.end)) {
          if (routed(await handler(makeEvent(host))) !== null) hits += 1;
          index += 1;
        }
      } finally {
        Date.now = realDateNow;
      }
      send({ reads: reads - before, routed: hits, elapsed_s: Number(process.hrtime.bigint() - t0) / 1e9 });
    } else {
      send({ error: `unknown op ${cmd.op}` });
    }
  }
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
