"""Fleet behaviour: dispatch under a backlog, the shared AWS rate limit, queue separation.

- dispatch: 10,000 due domains, workers that get through a tenth of them per beat tick
  (a 10x backlog), ten ticks; the queue's length after each tick with the dispatcher as it
  is (each due time queued once) against re-sending every due id each tick (as before).
  The queue is a list in this process and "checking" a domain is `domains_claim` plus a
  reschedule: what is measured is what the dispatcher queues, not how long checks take.
- rate limit: four Celery workers (two processes each) request certificates from moto for
  200 domains under a fleet-wide limit of 4 RequestCertificate a second; every request
  botocore sends is recorded in the workers (bench/probe/sitecustomize.py), and the most
  sent in any one second is compared with the limit and with the same fleet unlimited.
- queues: 10,000 checks wait in the queue, then an edge push is sent; one worker (one
  process) consuming every queue starts, and the time until DynamoDB holds the mapping is
  measured with the push on its own queue and, as before the queues existed, behind the
  checks on theirs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Final

from bench.common import (
    BENCH_BROKER_URL,
    ROOT,
    WORK_DIR,
    WORKER_START_TIMEOUT,
    BenchDatabase,
    Row,
    django_aws,
    flush_redis,
    fmt_ratio,
    log,
    moto,
    redis_available,
    verdict,
)
from domains.task_names import TaskName

PROBE_DIR: Final = Path(__file__).resolve().parent / "probe"
TICK: Final = timedelta(seconds=10)
RATE: Final = 4


def run(quick: bool, database: BenchDatabase) -> list[Row]:
    rows = [dispatch_backlog(quick)]
    if not redis_available():
        rows.append(Row("fleet", "rate limit, queues", "not run", result="MISS",
                        note=f"Redis is needed at {BENCH_BROKER_URL} for the workers"))
        return rows
    database.flush()
    with moto(acm_validation_wait=3600) as server, django_aws(server.endpoint_url):
        rows.append(rate_limit(quick, database, server.endpoint_url))
        database.flush()
        rows.append(queue_separation(quick, database, server.endpoint_url))
    return rows


# --- dispatch -------------------------------------------------------------------------------


def _due_domains(n: int) -> None:
    from django.utils import timezone

    from domains.models import CustomDomain, Workspace

    workspace = Workspace.objects.create(slug="fleet-ws", name="Fleet", plan="enterprise")
    past = timezone.now() - timedelta(minutes=1)
    CustomDomain.objects.bulk_create(
        [CustomDomain(hostname=f"site{i}.fleet-client.com", workspace=workspace,
                      ownership_token="bench", next_check_at=past - timedelta(seconds=i))
         for i in range(n)], batch_size=5000)


def _simulate(*, once: bool, due: int, ticks: int) -> tuple[list[int], int]:
    """Queue length after each tick, and how many ids were queued in all."""
    from django.utils import timezone

    from domains.models import CustomDomain
    from workflow import schedule

    start = timezone.now()
    CustomDomain.objects.update(next_check_at=start - timedelta(minutes=1),
                                dispatched_for=None, dispatched_at=None)
    capacity = due // 10
    queue: deque[int] = deque()
    lengths: list[int] = []
    sent = 0
    for tick in range(ticks):
        now = start + tick * TICK
        new = (schedule.domains_dispatch(limit=10**9, now=now) if once
               else schedule.domains_due(limit=10**9, now=now, queued=True))
        queue.extend(new)
        sent += len(new)
        taken = [queue.popleft() for _ in range(min(capacity, len(queue)))]
        won = schedule.domains_claim(taken, now=now)
        # Checked: next due in an hour (the interval does not matter within ten ticks).
        CustomDomain.objects.filter(pk__in=won).update(next_check_at=now + timedelta(hours=1))
        lengths.append(len(queue))
    return lengths, sent


def dispatch_backlog(quick: bool) -> Row:
    due = 1_000 if quick else 10_000
    ticks = 10
    _due_domains(due)
    once, once_sent = _simulate(once=True, due=due, ticks=ticks)
    every, every_sent = _simulate(once=False, due=due, ticks=ticks)
    log(f"dispatch: once {once}; every tick {every}")
    return Row(
        "fleet",
        f"dispatch: ids waiting in the queue, peak over {ticks} beat ticks; {due:,} due, "
        f"workers check {due // 10:,} a tick (10x backlog)",
        f"{max(once):,} ids ({once_sent:,} queued in all)",
        f"re-sent every tick: {max(every):,} ids ({every_sent:,} queued in all)",
        fmt_ratio(max(once) / max(every)) if max(every) else "-",
        "never more than the due count",
        verdict(max(once) <= due),
        note=f"Queue after each tick, each due time queued once: {once}; re-sent every "
             f"tick: {every}.",
        data={"once": once, "every_tick": every, "due": due},
    )


# --- workers --------------------------------------------------------------------------------


@contextmanager
def workers(env: dict[str, str], count: int, *, concurrency: int, name: str
            ) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    logs = [WORK_DIR / f"fleet-{name}-{i}.log" for i in range(count)]
    try:
        for path in logs:
            path.unlink(missing_ok=True)
            with open(path, "wb") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "vedomains_site", "worker",
                     "--loglevel=INFO", f"--concurrency={concurrency}", "--pool=prefork",
                     "--without-gossip", "--without-mingle", "--without-heartbeat",
                     "-n", f"{name}{len(procs)}@%h"],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True))
        # Four workers importing Django on a loaded 2-core machine can take more than a
        # minute to say "ready.".
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        for proc, path in zip(procs, logs, strict=True):
            while b"ready." not in path.read_bytes():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start: {path.read_text()[-3000:]}")
                time.sleep(0.2)
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _send(connection: object, name: TaskName, *args: object, queue: str | None = None) -> None:
    """Queue a task on the benchmark's Redis: this process's own broker is in memory."""
    from vedomains_site.celery import app

    options = {"queue": queue} if queue else {}
    app.tasks[name].apply_async(args=args, connection=connection, **options)


def _worker_env(database: BenchDatabase, endpoint_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": database.url, "DJANGO_DEBUG": "true",
                "CELERY_BROKER_URL": BENCH_BROKER_URL,
                "VEDOMAINS_AWS_ENDPOINT_URL": endpoint_url, "PYTHONUNBUFFERED": "1",
                "VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL": BENCH_BROKER_URL,
                # The worker says "ready." at INFO; prepare_environment defaults to WARNING.
                "LOG_LEVEL": "INFO", **extra})
    return env


def _busiest_second(times: list[float]) -> int:
    times = sorted(times)
    best = start = 0
    for end, at in enumerate(times):
        while times[start] <= at - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def _request_all(database: BenchDatabase, endpoint_url: str, *, n: int, limits: dict[str, float],
                 label: str) -> dict[str, float]:
    from domains.models import CustomDomain, DomainStatus, Workspace
    from vedomains_site.celery import app

    flush_redis()
    CustomDomain.objects.all().delete()
    workspace, _ = Workspace.objects.get_or_create(slug="fleet-rl", name="RL", plan="enterprise")
    made = CustomDomain.objects.bulk_create(
        [CustomDomain(hostname=f"rl{i}.{label}.fleet-client.com", workspace=workspace,
                      ownership_token="bench", next_check_at=None) for i in range(n)])
    probe = WORK_DIR / f"probe-{label}"
    probe.mkdir(parents=True, exist_ok=True)
    for old in probe.glob("*.log"):
        old.unlink()
    env = _worker_env(database, endpoint_url,
                      # ACM RequestCertificate is the per-domain strategy's call: the default
                      # path asks CloudFront for a managed certificate instead.
                      VEDOMAINS_CDN_STRATEGY="distribution-per-domain",
                      # The daily certificate budget (50 platform-wide by default) would hold
                      # most of the requests: this row measures the rate limiter alone.
                      VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY="0",
                      VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY="0",
                      VEDOMAINS_AWS_RATE_LIMITS=json.dumps(limits),
                      VEDOMAINS_BENCH_PROBE_DIR=str(probe),
                      PYTHONPATH=os.pathsep.join([str(PROBE_DIR), str(ROOT)]))
    started = time.monotonic()
    with workers(env, 4, concurrency=2, name=f"rl-{label}"), \
            app.connection_for_write(BENCH_BROKER_URL) as connection:
        for domain in made:
            _send(connection, TaskName.DOMAIN_REQUEST_CERTIFICATE, domain.pk)
        deadline = time.monotonic() + 600
        while CustomDomain.objects.filter(certificate_arn="").exists():
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
    sent = [float(line.split()[0]) for path in probe.glob("*.log")
            for line in path.read_text().splitlines()
            if line.endswith("CertificateManager.RequestCertificate")]
    retried = sum(path.read_text().count("RateLimited")
                  for path in WORK_DIR.glob(f"fleet-rl-{label}-*.log"))
    return {
        "requested": CustomDomain.objects.exclude(certificate_arn="").count(),
        "failed": CustomDomain.objects.filter(status=DomainStatus.FAILED).count(),
        "sent": len(sent),
        "busiest_second": _busiest_second(sent),
        "rate_limited_retries": retried,
        "seconds": elapsed,
    }


def rate_limit(quick: bool, database: BenchDatabase, endpoint_url: str) -> Row:
    n = 60 if quick else 200
    limited = _request_all(database, endpoint_url, n=n, label="limited",
                           limits={"acm.RequestCertificate": RATE})
    free = _request_all(database, endpoint_url, n=n, label="free", limits={})
    log(f"rate limit: limited {limited}; unlimited {free}")
    # A bucket of RATE tokens refilled at RATE a second admits at most 2 x RATE in a second.
    ok = (limited["busiest_second"] <= 2 * RATE and limited["requested"] == n
          and limited["failed"] == 0)
    return Row(
        "fleet",
        f"rate limit: RequestCertificate sent by 4 workers x 2 processes for {n} domains, "
        f"fleet-wide limit {RATE}/s (burst {RATE}; distribution-per-domain strategy)",
        f"busiest second {limited['busiest_second']:.0f} requests; {limited['requested']:.0f} "
        f"of {n} requested, {limited['failed']:.0f} failed, in {limited['seconds']:.0f} s",
        f"no limit: busiest second {free['busiest_second']:.0f}; {free['seconds']:.0f} s",
        "-",
        f"≤ {2 * RATE} in any second; none failed",
        verdict(ok),
        note=f"{limited['sent']:.0f} RequestCertificate requests sent; "
             f"{limited['rate_limited_retries']:.0f} task retries after waiting "
             f"VEDOMAINS_AWS_RATE_LIMIT_MAX_WAIT_SECONDS for a token.",
        data={"limited": limited, "unlimited": free},
    )


# --- queues ---------------------------------------------------------------------------------


def _push_latency(database: BenchDatabase, endpoint_url: str, *, checks: int,
                  separate: bool) -> float:
    from django.utils import timezone

    from domains.integrations import edge_store
    from domains.models import CustomDomain, DomainStatus, Workspace
    from vedomains_site.celery import app

    flush_redis()
    CustomDomain.objects.all().delete()
    workspace, _ = Workspace.objects.get_or_create(slug="fleet-q", name="Q", plan="enterprise")
    host = f"push-{'separate' if separate else 'shared'}.fleet-client.com"
    now = timezone.now()
    CustomDomain.objects.create(hostname=host, workspace=workspace, ownership_token="bench",
                                status=DomainStatus.ACTIVE, verified_at=now, activated_at=now,
                                edge_version=1)
    with app.connection_for_write(BENCH_BROKER_URL) as connection:
        for i in range(checks):
            _send(connection, TaskName.DOMAIN_CHECK, 10_000_000 + i)  # no such domain: a no-op
        # Before the queues existed every task shared one FIFO queue.
        _send(connection, TaskName.EDGE_SYNC_HOSTNAME, host, queue=None if separate else "checks")
    env = _worker_env(database, endpoint_url)
    started = time.monotonic()
    with workers(env, 1, concurrency=1, name="queue"):
        while edge_store.get_item(host) is None:
            if time.monotonic() - started > 900:
                return float("inf")
            time.sleep(0.05)
        return time.monotonic() - started


def queue_separation(quick: bool, database: BenchDatabase, endpoint_url: str) -> Row:
    from domains.integrations import edge_store

    checks = 1_000 if quick else 10_000
    edge_store.create_table()
    separate = _push_latency(database, endpoint_url, checks=checks, separate=True)
    shared = _push_latency(database, endpoint_url, checks=checks, separate=False)
    log(f"queues: separate {separate:.1f} s, shared {shared:.1f} s")
    return Row(
        "fleet",
        f"queues: edge push latency while {checks:,} checks wait (one worker process, "
        "started after both are queued; includes its start-up)",
        f"{separate:.1f} s (edge queue)",
        f"{shared:.1f} s (one queue, behind the checks)",
        fmt_ratio(separate / shared) if shared else "-",
        "not behind the checks",
        verdict(separate < shared / 2),
        data={"separate_s": separate, "shared_s": shared, "checks": checks},
    )
