"""Run the benchmarks and print one table: `python bench/run.py [--quick] [--only edge,api]`.

Writes the table to bench/results/latest.md and the raw figures to latest.json. See
bench/README.md for what each row means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

# `python bench/run.py` (not -m): make the `bench` package importable first.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    RESULTS_DIR,
    Row,
    log,
    prepare_environment,
    render_notes,
    render_table,
    rows_as_json,
    setup_database,
)

BENCHMARKS: Final = ("edge", "checks", "sync", "api", "ttl", "fleet", "cdn", "live")
# Benchmarks that need the throwaway Django database.
NEEDS_DB: Final = frozenset({"checks", "sync", "api", "ttl", "fleet", "cdn", "live"})


def machine() -> dict[str, str]:
    def sh(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    mem = sh("free", "-g").splitlines()
    return {
        "nproc": sh("nproc"),
        "memory_gib": mem[1].split()[1] if len(mem) > 1 else "?",
        "cpu": next((line.split(":", 1)[1].strip() for line in
                     Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), platform.processor() or "?"),
        "python": platform.python_version(),
        "node": sh("node", "--version"),
        "os": platform.platform(),
        "load_avg_at_start": _load_avg(),
    }


def _load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # Once: a second SIGTERM (from `timeout` and its caller both) must not abort the clean-up.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="reduced sizes: a smoke run in a minute or two")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="where latest.md and latest.json go")
    args = parser.parse_args(argv)
    selected = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(selected) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    # SIGTERM (the suite's time limit, a Ctrl-C'd parent) unwinds like Ctrl-C, so every
    # `finally` stops the workers, moto and DNS servers this run started in their own
    # sessions instead of leaving them behind.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    prepare_environment()
    info = machine()
    log(f"machine: {info}")
    database = setup_database() if NEEDS_DB & set(selected) else None

    rows: list[Row] = []
    failures: list[str] = []
    started = time.time()
    try:
        for name in BENCHMARKS:
            if name not in selected:
                continue
            log(f"--- {name} ---")
            t0 = time.perf_counter()
            try:
                runner = _runner(name)
                rows += runner(args.quick) if database is None else _with_db(runner, database,
                                                                             args.quick)
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the rest
                log(f"{name} failed: {exc!r}")
                failures.append(name)
                rows.append(Row(name, "benchmark failed", type(exc).__name__, result="MISS",
                                note=str(exc)[:300]))
                import traceback

                traceback.print_exc(file=sys.stderr)
            log(f"{name} took {time.perf_counter() - t0:.0f}s")
    finally:
        if database is not None:
            database.teardown()

    table = render_table(rows)
    notes = render_notes(rows)
    mode = "quick" if args.quick else "full"
    db_note = f", database {database.vendor}" if database else ""
    header = (f"Run {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))} ({mode}{db_note}) "
              f"on {info['nproc']} cores / {info['memory_gib']} GiB, {info['cpu']}, "
              f"Python {info['python']}, Node {info['node']}; load average (1/5/15 min) "
              f"{info['load_avg_at_start']} at the start, {_load_avg()} at the end (other work "
              f"shares the machine); took {time.time() - started:.0f} s.")
    document = f"{header}\n\n{table}\n" + (f"\nNotes:\n\n{notes}\n" if notes else "")
    print(document)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "latest.md").write_text(document, encoding="utf-8")
    (args.results_dir / "latest.json").write_text(json.dumps(
        {"machine": info, "mode": mode, "selected": selected, "rows": rows_as_json(rows)},
        indent=2, default=str) + "\n", encoding="utf-8")
    return 1 if failures else 0


def _runner(name: str) -> Callable[..., list[Row]]:
    # Imported on demand: `--only edge` must not need Django's database at all.
    if name == "edge":
        from bench import edge

        return edge.run
    if name == "checks":
        from bench import checks

        return checks.run
    if name == "sync":
        from bench import sync

        return sync.run
    if name == "api":
        from bench import api

        return api.run
    if name == "fleet":
        from bench import fleet

        return fleet.run
    if name == "cdn":
        from bench import cdn

        return cdn.run
    if name == "live":
        from bench import live

        return live.run
    from bench import ttl

    return ttl.run


def _with_db(runner: Callable[..., list[Row]], database: object, quick: bool) -> list[Row]:
    from bench.common import BenchDatabase

    assert isinstance(database, BenchDatabase)
    if runner.__module__ == "bench.edge":
        return runner(quick)
    database.flush()
    return runner(quick, database)


if __name__ == "__main__":
    raise SystemExit(main())
