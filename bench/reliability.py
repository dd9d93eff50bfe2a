"""Long-run reliability: the suite's fault, concurrency and fuzzing scenarios, at full size.

    python bench/reliability.py                      # everything, PostgreSQL, ~15-25 min
    python bench/reliability.py --only concurrency --domains 500

It runs the same test code as the suite (tests/test_faults.py, tests/test_concurrency.py,
tests/test_api_fuzz.py) through pytest, with bigger sizes passed in the environment:

- faults: every fault test `--fault-iterations` times (kill -9 mid-check and mid-sync,
  Redis restarts with and without an append-only file, AWS endpoint cut and restarted
  empty, DNS timeout/SERVFAIL/REFUSED);
- concurrency: two beats and `--workers` workers over `--domains` domains for
  2 + 2 x `--rounds` + 1 check cycles, each transition and DomainEvent checked exactly once;
- fuzzing: schemathesis over /api/schema/ with `--fuzz-examples` examples per operation.

Each test prints one summary line (FAULTS / CYCLES / API fuzzing); this script collects them
into a table, prints it, and writes bench/results/reliability.md. PostgreSQL is required
for the concurrency scenario (SKIP LOCKED); the database named by --database-url is used
as the base name for pytest's throwaway test database. The shared Redis is not touched:
every scenario starts its own redis-server.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "reliability.md"
# pytest -q prints progress dots on the same line, before a test's own output.
SUMMARY = re.compile(r"^[.sFEx]*(FAULTS|CYCLES|API fuzzing)[: ]\s*(.*)$", re.MULTILINE)
PYTEST_TAIL = re.compile(r"^=*\s*(\d+ (?:passed|failed|error|skipped)[\w ,]*?) in ([\d.]+)s",
                         re.MULTILINE)


@dataclass
class Run:
    name: str
    command: str
    seconds: float
    outcome: str
    summaries: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    ok: bool = True


def parse_figures(kind: str, text: str) -> dict[str, str]:
    if kind == "API fuzzing":
        found = re.match(r"(\d+) requests, (\d+) 5xx", text)
        return {"requests": found.group(1), "5xx": found.group(2)} if found else {}
    pairs = text.split()
    figures: dict[str, str] = {}
    if kind == "FAULTS" and pairs:
        figures["scenario"] = pairs.pop(0)
    for pair in pairs:
        key, _, value = pair.partition("=")
        figures[key] = value
    return figures


def run_pytest(name: str, targets: list[str], env: dict[str, str]) -> Run:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:logging",
           "-q", "-s", *targets]
    started = time.monotonic()
    print(f"==> {name}: {' '.join(targets)}", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    output = proc.stdout + proc.stderr
    tail = PYTEST_TAIL.findall(output)
    outcome = tail[-1][0] if tail else f"exit {proc.returncode}"
    run = Run(name, " ".join(targets), seconds, outcome, ok=proc.returncode == 0)
    for kind, text in SUMMARY.findall(output):
        run.summaries.append((kind, parse_figures(kind, text)))
    if not run.ok:
        (ROOT / "bench" / "results" / f"reliability-{name}.log").write_text(output[-200_000:])
        print(output[-4000:], file=sys.stderr)
    print(f"    {outcome} ({seconds:.0f} s)", flush=True)
    return run


def table(runs: list[Run]) -> str:
    lines = []
    faults = [f for r in runs for k, f in r.summaries if k == "FAULTS"]
    if faults:
        lines += ["### Faults (real processes)", "",
                  "| scenario | domains | faults injected | transitions | lost updates | "
                  "other figures |", "|---|---|---|---|---|---|"]
        for f in faults:
            injected = sum(int(f.get(k, 0)) for k in ("kills", "restarts", "cuts", "faults"))
            other = ", ".join(f"{k}={v}" for k, v in f.items() if k not in {
                "scenario", "domains", "kills", "restarts", "cuts", "faults", "transitions",
                "lost_updates"})
            lines.append(f"| {f['scenario']} | {f.get('domains', '')} | {injected} | "
                         f"{f.get('transitions', '')} | {f.get('lost_updates', '')} | {other} |")
        total = sum(sum(int(f.get(k, 0)) for k in ("kills", "restarts", "cuts", "faults"))
                    for f in faults)
        lost = sum(int(f.get("lost_updates", 0)) for f in faults)
        lines += ["", f"Faults injected in total: **{total}**; lost updates: **{lost}**.", ""]
    cycles = [f for r in runs for k, f in r.summaries if k == "CYCLES"]
    for f in cycles:
        lines += ["### Concurrency (two beats, several workers)", "",
                  "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in f.items()]
        lines.append("")
    fuzz = [f for r in runs for k, f in r.summaries if k == "API fuzzing"]
    if fuzz:
        requests = sum(int(f.get("requests", 0)) for f in fuzz)
        errors = sum(int(f.get("5xx", 0)) for f in fuzz)
        lines += ["### API fuzzing (schemathesis, /api/schema/)", "",
                  f"Requests: **{requests}**; 5xx: **{errors}**; schema violations: "
                  f"{'none' if all(r.ok for r in runs if r.name == 'fuzz') else 'see log'}.",
                  ""]
    lines += ["### Runs", "", "| run | pytest | seconds |", "|---|---|---|"]
    lines += [f"| {r.name} | {r.outcome} | {r.seconds:.0f} |" for r in runs]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "VEDOMAINS_REL_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/relbench"))
    parser.add_argument("--domains", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fault-iterations", type=int, default=3)
    parser.add_argument("--fuzz-examples", type=int, default=1000)
    parser.add_argument("--only", choices=["faults", "concurrency", "fuzz"], action="append")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env.update({
        "DATABASE_URL": args.database_url,
        "DJANGO_DEBUG": "true",
        "VEDOMAINS_REL_DOMAINS": str(args.domains),
        "VEDOMAINS_REL_WORKERS": str(args.workers),
        "VEDOMAINS_REL_ROUNDS": str(args.rounds),
        "VEDOMAINS_FUZZ_EXAMPLES": str(args.fuzz_examples),
    })
    wanted = set(args.only or ["faults", "concurrency", "fuzz"])
    runs: list[Run] = []
    started = datetime.now(UTC)
    if "faults" in wanted:
        for i in range(args.fault_iterations):
            runs.append(run_pytest(f"faults-{i + 1}", ["tests/test_faults.py"], env))
    if "concurrency" in wanted:
        runs.append(run_pytest("concurrency", ["tests/test_concurrency.py"], env))
    if "fuzz" in wanted:
        runs.append(run_pytest("fuzz", ["tests/test_api_fuzz.py"], env))

    body = table(runs)
    command = "python bench/reliability.py " + " ".join(argv if argv is not None else
                                                          sys.argv[1:])
    report = "\n".join([
        "# Reliability: long run",
        "",
        f"`{command.strip()}` on {started:%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, database "
        f"{args.database_url.rsplit('@', 1)[-1]}.",
        f"Sizes: {args.domains} domains, {args.workers} workers (2 with beat), "
        f"{args.rounds} break/fix rounds, {args.fault_iterations} fault iterations, "
        f"{args.fuzz_examples} fuzz examples per operation.",
        "",
        body,
        "",
    ])
    print("\n" + body)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"\nwritten to {args.output}")
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
