"""Runs the built edge package (its modules + edge_config.json) for bench/edge.py.

The Python twin of bench/reference/bench.mjs: same modes, same protocol, so both
languages are measured the same way. Standard library only at module level, so `cold`
measures what a Lambda cold start pays: the interpreter, the handler's imports (the
standard library only), building the client and one DynamoDB read.

    python bench/edge_harness.py cold  <package_dir> <event.json> <host>
    python bench/edge_harness.py serve <package_dir> <event.json>   (JSON lines on stdin/stdout)
    python bench/edge_harness.py mem   <package_dir> <event.json> <hosts>
    python bench/edge_harness.py logbytes <package_dir> <event.json> <requests>

Serve protocol, one JSON object per line each way:
    {"op": "hit", "hosts": [...], "n": N}   warm the hosts, then time N invocations
    {"op": "miss", "hosts": [...]}          time one invocation per (uncached) host
    {"op": "replay", "file": F, "start": i, "end": j, "rate": R}
                                            hosts F[i:j], request k at k/R seconds of
                                            simulated time; count DynamoDB reads
    {"op": "exit"}
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, TextIO

_STARTED = time.perf_counter()

# The protocol owns the real stdout; the handler's EMF metric lines (which go to CloudWatch
# Logs at the edge) are sent to /dev/null so they cannot corrupt it.
_PROTOCOL: TextIO = sys.stdout


def _load_handler(package_dir: str) -> ModuleType:
    # The zip's root is flat (the modules next to edge_config.json), exactly as Lambda
    # unpacks it into /var/task.
    sys.path.insert(0, package_dir)
    import handler

    return handler


def _event_factory(event_path: str) -> Callable[[str], dict[str, Any]]:
    template = open(event_path, encoding="utf-8").read()  # noqa: SIM115 - read once

    def make(host: str) -> dict[str, Any]:
        # A fresh event per invocation (the runtime deserializes one per request); its
        # cost is outside the timed region.
        event: dict[str, Any] = json.loads(template)
        event["Records"][0]["cf"]["request"]["headers"]["host"] = [{"key": "Host", "value": host}]
        return event

    return make


def _routed(result: dict[str, Any]) -> str | None:
    values = result.get("headers", {}).get("workspace-id") if "status" not in result else None
    return values[0]["value"] if values else None


class VirtualClock:
    """Seconds on the replay's timeline: request `index` arrives at `index / rate`."""

    def __init__(self, base: float) -> None:
        self.base = base
        self.rate = 1.0
        self.index = 0

    def __call__(self) -> float:
        return self.base + self.index / self.rate


def _send(obj: dict[str, Any]) -> None:
    _PROTOCOL.write(json.dumps(obj, separators=(",", ":")) + "\n")
    _PROTOCOL.flush()


def cold(package_dir: str, event_path: str, host: str) -> None:
    handler = _load_handler(package_dir)
    imported = time.perf_counter()
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    result = handler.handler(_event_factory(event_path)(host), None)
    done = time.perf_counter()
    _send({"routed": _routed(result), "import_ms": (imported - _STARTED) * 1000,
           "first_call_ms": (done - imported) * 1000})


def serve(package_dir: str, event_path: str) -> None:
    handler = _load_handler(package_dir)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    make = _event_factory(event_path)
    fn = handler.handler
    perf_ns = time.perf_counter_ns
    reads = 0

    def count_read(**_: Any) -> None:
        nonlocal reads
        reads += 1

    # One count per GetItem API call (whatever the retries), the same unit as wrapping
    # `send` on the Node side: the handler makes exactly one `_lookup` per GetItem call.
    real_lookup = handler._lookup

    def counting_lookup(host: str, settings: Any) -> Any:
        count_read()
        return real_lookup(host, settings)

    handler._lookup = counting_lookup
    replay_hosts: dict[str, list[str]] = {}
    clock = VirtualClock(time.monotonic())
    _send({"ready": True})
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "exit":
            break
        if op == "hit":
            hosts: list[str] = cmd["hosts"]
            for host in hosts:
                fn(make(host), None)
            samples = []
            for i in range(cmd["n"]):
                event = make(hosts[i % len(hosts)])
                start = perf_ns()
                fn(event, None)
                samples.append(perf_ns() - start)
            _send({"samples_ns": samples})
        elif op == "miss":
            samples, routed = [], 0
            for host in cmd["hosts"]:
                event = make(host)
                start = perf_ns()
                result = fn(event, None)
                samples.append(perf_ns() - start)
                routed += _routed(result) is not None
            _send({"samples_ns": samples, "routed": routed})
        elif op == "replay":
            path = cmd["file"]
            if path not in replay_hosts:
                replay_hosts[path] = open(path, encoding="utf-8").read().split()  # noqa: SIM115
            # Simulated time: request i arrives at i / rate seconds, whatever the machine's
            # speed, so the cache TTLs see the same timeline on both sides. `_clock` is the
            # handler's clock hook (what its tests use).
            clock.rate = float(cmd["rate"])
            clock.index = cmd["start"]
            before, routed = reads, 0
            started = time.monotonic()
            handler._clock = clock
            try:
                for host in replay_hosts[path][cmd["start"] : cmd["end"]]:
                    routed += _routed(fn(make(host), None)) is not None
                    clock.index += 1
            finally:
                handler._clock = time.monotonic
            _send({"reads": reads - before, "routed": routed,
                   "elapsed_s": time.monotonic() - started})
        else:
            _send({"error": f"unknown op {op!r}"})


def peak_rss_kb() -> int:
    """This process image's peak RSS (VmHWM). Not getrusage's ru_maxrss: on Linux that
    survives exec and so starts at the RSS of the parent that spawned us."""
    try:
        for line in open("/proc/self/status", encoding="ascii"):  # noqa: SIM115
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def mem(package_dir: str, event_path: str, count: int) -> None:
    """Peak RSS with `count` hosts cached (the real client is built; reads are stubbed)."""
    handler = _load_handler(package_dir)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    make = _event_factory(event_path)
    handler._dynamodb()  # the client (and its imports) are part of the footprint
    baseline_kb = peak_rss_kb()

    # A distinct workspace per host: the worst case for memory. 100k real GetItem calls
    # against moto would take minutes and measure moto, not the cache.
    def fake_lookup(host: str, settings: Any) -> str:
        return sys.intern("ws-" + host.partition(".")[0])

    handler._lookup = fake_lookup
    for i in range(count):
        handler.handler(make(f"h{i}.mem-bench.com"), None)
    peak_kb = peak_rss_kb()
    _send({"cached": len(handler._cache), "baseline_kb": baseline_kb, "peak_kb": peak_kb})


class _CountingStdout:
    """Counts what the handler writes (its EMF lines) instead of keeping it."""

    def __init__(self) -> None:
        self.bytes = 0
        self.lines = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        self.lines += text.count("\n")
        return len(text)

    def flush(self) -> None:
        pass


def logbytes(package_dir: str, event_path: str, count: int) -> None:
    """EMF bytes for `count` requests (a mix of paths), windowed and flushed per invocation."""
    handler = _load_handler(package_dir)
    with open(os.path.join(package_dir, "edge_config.json"), encoding="utf-8") as file:
        config = json.load(file)
    make = _event_factory(event_path)
    hosts = [f"h{i}.log-bench.com" for i in range(100)]
    answer: dict[str, Any] = {"requests": count}
    for name, flush in (("default", config["metrics_flush_invocations"]),
                        ("per_invocation", 1)):
        handler.configure({**config, "metrics_flush_invocations": flush})
        handler._lookup = lambda host, settings: "ws-" + host.partition(".")[0]
        out = _CountingStdout()
        sys.stdout = out
        for i in range(count):
            # Mostly hits; every tenth a miss, a platform host or a garbage Host.
            host = (hosts[i % 100] if i % 10 else
                    ("acme.ve.ai", f"new{i}.log-bench.com", "[::1]")[i // 10 % 3])
            handler.handler(make(host), None)
        handler.flush_metrics()
        sys.stdout = sys.__stdout__
        answer[f"{name}_bytes"] = out.bytes
        answer[f"{name}_lines"] = out.lines
    _send(answer)


def main(argv: list[str]) -> int:
    mode, package_dir, event_path, *rest = argv
    if mode == "cold":
        cold(package_dir, event_path, rest[0])
    elif mode == "serve":
        serve(package_dir, event_path)
    elif mode == "mem":
        mem(package_dir, event_path, int(rest[0]))
    elif mode == "logbytes":
        logbytes(package_dir, event_path, int(rest[0]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
