"""Every benchmark's quick form runs with the suite, in the background, so none rots unseen.

When the collected tests include any marked `bench_smoke`, one `bench/run.py --quick` over
the database benchmarks starts as soon as collection ends, in its own process, and those
tests are moved to the end of the run: the benchmark's minutes overlap the rest of the
suite instead of adding to it. The tests then wait for the run and read its table.

The benchmark gets its own scratch directory, results directory and Redis database (on the
suite's Redis server, which `./dev test` starts when none is given), and the suite's
database server when DATABASE_URL names one (it makes and drops its own database there).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT: Final = Path(__file__).resolve().parent.parent
# The benchmarks `bench/run.py` knows besides `edge`, which test_bench_smoke.py runs on its
# own because it needs Node.js and no database.
DATABASE_BENCHMARKS: Final = ("checks", "sync", "api", "ttl", "fleet", "cdn", "live")
# Redis database for the benchmark's workers: `./dev test` uses 0 (suite) and 1 (e2e stack);
# pytest-xdist workers use 10 and up.
BENCH_REDIS_DB: Final = 3
NICENESS: Final = 15


@dataclass
class BackgroundRun:
    process: subprocess.Popen[bytes]
    results_dir: Path
    stdout: Path
    stderr: Path


_run: BackgroundRun | None = None


def _bench_broker_url() -> str:
    suite = os.environ.get("VEDOMAINS_TEST_BROKER_URL", "redis://127.0.0.1:6379/0")
    parts = urlsplit(suite)
    return urlunsplit((parts.scheme, parts.netloc, f"/{BENCH_REDIS_DB}", "", ""))


def start() -> BackgroundRun:
    global _run
    if _run is None:
        work = Path(tempfile.mkdtemp(prefix="vedomains-bench-smoke-"))
        env = dict(os.environ)
        env.update({
            "VEDOMAINS_BENCH_WORK_DIR": str(work / "work"),
            "VEDOMAINS_BENCH_BROKER_URL": _bench_broker_url(),
            "PYTHONUNBUFFERED": "1",
        })
        stdout, stderr = work / "stdout.txt", work / "stderr.txt"
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            # At a low CPU priority (its servers and workers inherit it): the suite's own
            # timed waits (the e2e stack, real workers) come first on a 2-core machine, and
            # the benchmark's figures are not asserted here.
            process = subprocess.Popen(
                ["nice", "-n", str(NICENESS), sys.executable, "bench/run.py", "--quick", "--only",
                 ",".join(DATABASE_BENCHMARKS), "--results-dir", str(work / "results")],
                cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True)
        _run = BackgroundRun(process, work / "results", stdout, stderr)
    return _run


def wait(timeout: float) -> BackgroundRun:
    run = start()
    try:
        run.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(run)
    return run


def stop(run: BackgroundRun) -> None:
    """SIGTERM first: bench/run.py then stops the servers and workers it started."""
    run.process.terminate()
    try:
        run.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        run.process.kill()
        run.process.wait()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A stable sort: the benchmark tests go last, everything else keeps its order.
    items.sort(key=lambda item: item.get_closest_marker("bench_smoke") is not None)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Under pytest-xdist every worker collects: the tests start the run when they need it.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    if any(item.get_closest_marker("bench_smoke") for item in session.items):
        start()


def pytest_sessionfinish() -> None:
    if _run is not None and _run.process.poll() is None:
        stop(_run)
