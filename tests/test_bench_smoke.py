"""bench/ still runs: every benchmark's quick form, end to end, in its own process.

The edge benchmark needs no database: it builds the real package, starts moto, installs and
runs the reference JS handler, and prints the table. The database benchmarks (checks, sync,
api, ttl, fleet, cdn) run as one `bench/run.py --quick` started in the background when the
suite's collection ends (tests/bench_background.py); their tests run last and read its
table. Figures are not asserted (the machine is shared): each benchmark must run and print
its rows, none of them "benchmark failed". The full run (`python bench/run.py`) is not part
of the suite; bench/README.md holds its latest table.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import bench_background

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.integration]

EDGE_ROWS = (
    "cache hit, per invocation",
    "cache miss (one GetItem on moto)",
    "cold start: import plus first answer",
    "cold start: process start to first answer",
    "DynamoDB reads per",
    "deployment package (zip)",
    "metrics: EMF log bytes per request",
    "peak RSS with",
)


@pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                    reason="the edge benchmark's reference handler needs Node.js and npm")
def test_quick_edge_benchmark_prints_the_table(tmp_path: Path) -> None:
    env = dict(os.environ)
    # Its own scratch directory: a benchmark running at the same time keeps its own.
    env["VEDOMAINS_BENCH_WORK_DIR"] = str(tmp_path / "work")
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--only", "edge",
         "--results-dir", str(tmp_path / "results")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-4000:]

    table = result.stdout
    assert "| Benchmark | Metric | Ours | Reference / baseline | Ratio | Target | Result |" in table
    for row in EDGE_ROWS:
        assert any(line.startswith("| edge | " + row) for line in table.splitlines()), row
    assert (tmp_path / "results" / "latest.md").read_text() in table

    rows = json.loads((tmp_path / "results" / "latest.json").read_text())["rows"]
    assert [r["bench"] for r in rows] == ["edge"] * len(EDGE_ROWS)
    # Both handlers answered the same replay the same way, and the package (a figure that
    # does not depend on machine load) stays far under 1 MiB.
    reads = next(r for r in rows if r["metric"].startswith("DynamoDB reads"))["data"]
    assert reads["routed"]["python"] == reads["routed"]["node"] > 0
    assert reads["reads"]["python"] > 0 and reads["reads"]["node"] > 0
    package = next(r for r in rows if r["metric"] == "deployment package (zip)")
    assert package["result"] == "PASS"
    assert package["data"]["python_bytes"] < 1_048_576


# The rows each database benchmark prints in its quick form (the start of the metric).
DATABASE_ROWS: dict[str, tuple[str, ...]] = {
    "checks": ("one pass over", "DB queries per domain", "activation pass"),
    "sync": ("backfill", "reconcile pass", "reconcile peak Python memory"),
    "api": ("register: POST /api/domains/", "status poll", "domain list", "admin change list"),
    "ttl": ("DNS set + certificate ISSUED -> edge routes",),
    "fleet": ("dispatch",),
    "cdn": ("100 domains, default path", "CloudFront calls per domain",
            "register (CNAME in place) -> active"),
    "live": ("one pass over", "CNAME set -> active", "CNAME set -> edge routes",
             "AWS calls spent on the"),
}


@pytest.fixture(scope="module")
def database_benchmarks() -> dict[str, list[dict[str, object]]]:
    run = bench_background.wait(timeout=1800)
    stderr = run.stderr.read_text(errors="replace")
    latest = run.results_dir / "latest.json"
    assert latest.exists(), f"exit {run.process.returncode}: {stderr[-4000:]}"
    by_bench: dict[str, list[dict[str, object]]] = {}
    for row in json.loads(latest.read_text())["rows"]:
        by_bench.setdefault(str(row["bench"]), []).append(row)
    return by_bench


@pytest.mark.bench_smoke
@pytest.mark.parametrize("bench", sorted(DATABASE_ROWS))
def test_quick_database_benchmark_runs(bench: str,
                                       database_benchmarks: dict[str, list[dict[str, object]]]
                                       ) -> None:
    assert set(DATABASE_ROWS) == set(bench_background.DATABASE_BENCHMARKS)
    rows = database_benchmarks.get(bench, [])
    failed = [r for r in rows if r["metric"] == "benchmark failed"]
    assert not failed, f"{bench}: {failed[0]['note'] if failed else ''}"
    metrics = [str(r["metric"]) for r in rows]
    for start in DATABASE_ROWS[bench]:
        assert any(m.startswith(start) for m in metrics), (start, metrics)
