"""What every benchmark shares: result rows, statistics, the throwaway database, moto.

Figures on a shared 2-core machine drift from run to run, so each benchmark measures the
variants it compares in the same run, interleaved, and reports the ratio beside the
absolute numbers; the ratio is what to read.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from localdev.moto_server import MotoHandle

ROOT: Final = Path(__file__).resolve().parent.parent
BENCH_DIR: Final = ROOT / "bench"
# Scratch space (databases, the built edge package, logs); gitignored. Overridable so a
# test run never shares it with a benchmark running at the same time.
WORK_DIR: Final = Path(os.environ.get("VEDOMAINS_BENCH_WORK_DIR") or BENCH_DIR / ".work")
RESULTS_DIR: Final = BENCH_DIR / "results"
# Redis database the benchmark's own worker and web processes use (flushed): the tests use
# their own and the local stack 0, so a run never feeds tasks to someone else's worker.
# VEDOMAINS_BENCH_BROKER_URL points it at another Redis when 15 is taken.
BENCH_BROKER_URL: Final = os.environ.get("VEDOMAINS_BENCH_BROKER_URL",
                                         "redis://127.0.0.1:6379/15")
# A sitecustomize that makes moto's ACM reuse one RSA key (see bench/moto_patch/).
MOTO_PATCH_DIR: Final = BENCH_DIR / "moto_patch"
# How long a Celery worker the benchmark starts may take to say "ready." (importing Django
# and the app on a loaded 2-core machine has taken more than a minute).
WORKER_START_TIMEOUT: Final = float(os.environ.get("VEDOMAINS_BENCH_WORKER_START_TIMEOUT", "180"))


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    """One line of the results table."""

    bench: str
    metric: str
    ours: str
    reference: str = "-"
    ratio: str = "-"
    target: str = "-"
    # "PASS", "MISS" or "info" (no target: reported for context).
    result: str = "info"
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


TABLE_HEADER: Final = (
    "| Benchmark | Metric | Ours | Reference / baseline | Ratio | Target | Result |\n"
    "| --- | --- | --- | --- | --- | --- | --- |"
)


def render_table(rows: Sequence[Row]) -> str:
    lines = [TABLE_HEADER]
    for r in rows:
        cells = [r.bench, r.metric, r.ours, r.reference, r.ratio, r.target,
                 f"**{r.result}**" if r.result == "MISS" else r.result]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def render_notes(rows: Sequence[Row]) -> str:
    notes = [f"- **{r.bench} / {r.metric}**: {r.note}" for r in rows if r.note]
    return "\n".join(notes)


def rows_as_json(rows: Sequence[Row]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 100 samples is the 99th value)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return float(ordered[rank - 1])


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def ratio(ours: float, reference: float) -> float:
    return ours / reference if reference else math.inf


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x"


def fmt_int(value: float) -> str:
    return f"{value:,.0f}"


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def timed(label: str) -> Iterator[Callable[[], float]]:
    """`with timed("x") as elapsed:` ... `elapsed()` seconds so far (and logged at the end)."""
    start = time.perf_counter()
    yield lambda: time.perf_counter() - start
    log(f"{label}: {time.perf_counter() - start:.1f}s")


# --------------------------------------------------------------------------- environment


def prepare_environment() -> None:
    """Environment for this process and every child, set before Django is imported.

    DEBUG=true (as the issue asks) lets the web server start without a secret key and
    makes Django record queries; DATABASE_URL, when unset, points at a file under
    bench/.work so nothing can reach the developer's var/db.sqlite3.
    """
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vedomains_site.settings")
    os.environ["DJANGO_DEBUG"] = "true"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{WORK_DIR / 'bench-base.sqlite3'}")
    # In-process benchmarks queue follow-up tasks (edge pushes) that nothing consumes here:
    # an in-memory broker keeps them off anyone's Redis. Worker-based benchmarks pass their
    # own broker URL to their child processes.
    os.environ["CELERY_BROKER_URL"] = "memory://localhost/"
    # The fleet-wide AWS rate limiter keeps its buckets in Redis and, unless told otherwise,
    # in the broker's: an in-memory broker is no Redis, so in-process AWS calls (bootstrap,
    # seeding) would fail before the benchmark starts. Point it at the benchmark's Redis.
    os.environ.setdefault("VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL", BENCH_BROKER_URL)
    # Fake credentials only: a benchmark must never reach real AWS.
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = "/nonexistent/aws-config"
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/aws-credentials"
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ["AWS_REGION"] = "us-east-1"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


@dataclass
class BenchDatabase:
    """A throwaway database made with Django's test-database machinery."""

    old_config: Any
    url: str
    vendor: str

    def analyze(self) -> None:
        """Refresh the planner's statistics after bulk set-up, before timing queries: a
        table filled by bulk_create has none until autovacuum gets to it, and the plans
        (index or sequential scan) depend on them."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    def flush(self) -> None:
        """Empty every table (a fresh start for the next benchmark, without re-migrating)."""
        from django.core.management import call_command

        call_command("flush", interactive=False, verbosity=0)

    def teardown(self) -> None:
        from django.test.utils import teardown_databases

        teardown_databases(self.old_config, verbosity=0)


def setup_database() -> BenchDatabase:
    """Create and migrate `vedomains_bench` (PostgreSQL, when DATABASE_URL names one) or
    bench/.work/bench.sqlite3; never the database DATABASE_URL itself names."""
    import django
    from django.conf import settings

    django.setup()
    # DEBUG (needed by the web server's start-up without a secret key) would make this
    # process log every query in memory: production does not, and it would skew the
    # memory figures. Child processes get DJANGO_DEBUG from the environment.
    settings.DEBUG = False
    from django.db import connection
    from django.test.utils import setup_databases

    db = settings.DATABASES["default"]
    sqlite = db["ENGINE"].endswith("sqlite3")
    # VEDOMAINS_BENCH_DB_NAME lets two runs share a PostgreSQL server: a second run with
    # the same name would fail to drop the first one's database (it is in use).
    db.setdefault("TEST", {})["NAME"] = (
        str(WORK_DIR / "bench.sqlite3") if sqlite
        else os.environ.get("VEDOMAINS_BENCH_DB_NAME", "vedomains_bench")
    )
    old = setup_databases(verbosity=0, interactive=False, keepdb=False)
    cfg = connection.settings_dict
    if sqlite:
        url = f"sqlite:///{cfg['NAME']}"
    else:
        user = cfg.get("USER") or ""
        password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
        auth = f"{user}{password}@" if user else ""
        host = f"{cfg.get('HOST') or '127.0.0.1'}:{cfg.get('PORT') or 5432}"
        url = f"postgres://{auth}{host}/{cfg['NAME']}"
    return BenchDatabase(old_config=old, url=url, vendor=connection.vendor)


# --------------------------------------------------------------------------- servers


def process_cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) a process has used so far: this one by default.

    Lets a benchmark say where the time went: in our code, or in an emulator (moto, the
    DNS server) that production does not have.
    """
    if pid is None:
        return time.process_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    # utime and stime are fields 14 and 15 of /proc/<pid>/stat (after "pid (comm)").
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """CPU seconds used by named processes between start() and stop()."""

    pids: dict[str, int | None]
    used: dict[str, float] = field(default_factory=dict)

    def start(self) -> CpuMeter:
        self._start = {name: process_cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        self.used = {name: process_cpu_seconds(pid) - self._start[name]
                     for name, pid in self.pids.items()}
        return self.used


@contextmanager
def moto(acm_validation_wait: int = 1) -> Iterator[MotoHandle]:
    """moto in server mode (localdev.moto_server), pointed at by this process's boto3.

    Its ACM makes a fresh 2048-bit RSA key per certificate (~0.1 s each), which would make
    requesting 10,000 certificates take 15+ minutes of setup; bench/moto_patch makes it
    reuse one key. Nothing the benchmarks time depends on the key.
    """
    from localdev.moto_server import aws_env, start_moto

    path = os.pathsep.join(p for p in (str(MOTO_PATCH_DIR), os.environ.get("PYTHONPATH")) if p)
    handle = start_moto(acm_validation_wait=acm_validation_wait,
                        extra_env={"PYTHONPATH": path, "VEDOMAINS_BENCH_MOTO": "1"},
                        startup_timeout=60)
    saved = {k: os.environ.get(k) for k in aws_env(handle.endpoint_url)}
    os.environ.update(aws_env(handle.endpoint_url))
    try:
        yield handle
    finally:
        handle.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def django_aws(endpoint_url: str) -> Iterator[None]:
    """Point the app's AWS integrations at `endpoint_url` (moto) for the block."""
    from django.conf import settings

    from domains.integrations import aws

    previous = settings.VEDOMAINS_AWS_ENDPOINT_URL
    settings.VEDOMAINS_AWS_ENDPOINT_URL = endpoint_url
    aws.reset_clients()
    try:
        yield
    finally:
        settings.VEDOMAINS_AWS_ENDPOINT_URL = previous
        aws.reset_clients()


def redis_available(url: str = BENCH_BROKER_URL) -> bool:
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False
    return True


def flush_redis(url: str = BENCH_BROKER_URL) -> None:
    import redis

    redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()


@dataclass(frozen=True)
class DnsProcess:
    nameserver: str  # `host:port`, as VEDOMAINS_DNS_NAMESERVERS takes it
    pid: int
    control: str = ""  # the control API's URL (`local_dns`, the SaaS emulator's lookups)


@contextmanager
def dns_server(records: Sequence[tuple[str, str, str]]) -> Iterator[DnsProcess]:
    """localdev.dns_server in its own process, preloaded with `records` (name, type, value)
    from a state file.

    Its own process, not LocalDNSServer's threads in ours: a resolver is another machine in
    production, and in-process it would compete with the code under test for the GIL.
    """
    import json
    import subprocess

    state = WORK_DIR / "dns-state.json"
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"version": 1, "records": [
        {"name": name, "type": rtype, "value": value, "ttl": 60}
        for name, rtype, value in records]}), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "localdev.dns_server", "--port", "0", "--control-port", "0",
         "--state-file", str(state)],
        cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "local DNS: udp+tcp 127.0.0.1:PORT, control ..."
        if "udp+tcp" not in line:
            raise RuntimeError(f"DNS server did not start: {line}{proc.stdout.read()[-2000:]}")
        control = line.split("control", 1)[1].strip().split()[0].rstrip(",") \
            if "control" in line else ""
        yield DnsProcess(line.split("udp+tcp", 1)[1].split(",", 1)[0].strip(), proc.pid,
                         control)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        state.unlink(missing_ok=True)


class QueryCounter:
    """Counts the SQL statements run on `connection` (Django's execute_wrapper hook).

    Unlike CaptureQueriesContext it has no 9,000-query cap (DEBUG's query log is a bounded
    deque) and keeps no SQL text, so it neither skews memory figures nor saturates.
    """

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0  # wall time inside the database driver

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool,
                 context: dict[str, Any]) -> Any:
        self.count += 1
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start

    @contextmanager
    def counting(self) -> Iterator[QueryCounter]:
        from django.db import connection

        with connection.execute_wrapper(self):
            yield self
