"""Time to live: from "DNS set and certificate ISSUED" to the edge routing the domain.

A real Celery worker with embedded beat at its default schedule (dispatcher every
VEDOMAINS_DISPATCH_INTERVAL_SECONDS=10 s, fast checks every VEDOMAINS_FAST_CHECK_SECONDS=
10 s), moto, the local DNS server, Redis. Each sample domain is registered and its
certificate requested; moto issues it exactly `ACM_WAIT` seconds later, and at that moment
(t0) the benchmark creates the customer's CNAME. From then on it asks the edge handler,
with an empty cache every time (a fresh container), until it answers with the workspace.
Samples are staggered across the dispatcher's period so they see every phase of it.

The reference design polls every 5 minutes and caches "unknown host" for 5 minutes at
the edge: up to 600 s. Our edge caches "unknown" for 30 s (negative_ttl_seconds), which
is added to the measured figure for the worst case.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, redirect_stdout
from dataclasses import dataclass
from typing import Any, Final

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
    percentile,
    redis_available,
    verdict,
)

ACM_WAIT: Final = 12  # seconds from certificate request to ISSUED (moto)
PROBE_INTERVAL: Final = 0.1
TIMEOUT: Final = 180.0
REFERENCE_WORST: Final = 300 + 300  # polling + negative cache, seconds
TARGET: Final = 60.0
# The ACM-then-CNAME flow this benchmark times is the per-domain strategy's (see the module doc).
STRATEGY: Final = "distribution-per-domain"


@dataclass(frozen=True)
class TtlSizes:
    samples: int
    stagger: float  # seconds between registrations

    @classmethod
    def for_run(cls, quick: bool) -> TtlSizes:
        return cls(2, 5.0) if quick else cls(6, 10.0 / 6)


@contextmanager
def worker(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`celery worker --beat`, in its own process group (stopped as a whole)."""
    log_path = WORK_DIR / "ttl-worker.log"
    log_path.unlink(missing_ok=True)
    schedule = WORK_DIR / "ttl-beat-schedule"
    for stale in WORK_DIR.glob("ttl-beat-schedule*"):
        stale.unlink()
    cmd = [sys.executable, "-m", "celery", "-A", "vedomains_site", "worker", "--beat",
           "--schedule", str(schedule), "--loglevel=INFO", "--concurrency=2",
           "--pool=prefork", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_file,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while b"ready." not in log_path.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def run(quick: bool, database: BenchDatabase) -> list[Row]:
    if not redis_available():
        return [Row("ttl", "DNS + certificate -> edge routes", "not run", target=f"< {TARGET} s",
                    result="MISS", note=f"Redis is needed at {BENCH_BROKER_URL} for the worker")]
    import boto3
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from domains.integrations import edge_store
    from domains.models import CustomDomain, Membership, Role, Workspace
    from edge_lambda import handler as edge
    from edge_lambda.build import default_config
    from localdev import bootstrap
    from localdev.dns_server import LocalDNSServer
    from workflow import certificates, services

    settings.VEDOMAINS_CDN_STRATEGY = STRATEGY
    sizes = TtlSizes.for_run(quick)
    flush_redis()
    owner = get_user_model().objects.create_user("ttl-owner", "ttl@example.com", "pw-bench-1")
    workspace = Workspace.objects.create(slug="ttl-ws", name="TTL", plan="enterprise")
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)

    results: dict[str, dict[str, float]] = {}
    with LocalDNSServer(port=0) as dns, moto(acm_validation_wait=ACM_WAIT) as server, \
            django_aws(server.endpoint_url):
        edge_store.create_table()
        template = bootstrap.create_template_distribution(origin_domain="origin.ve.ai")
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": database.url,
            "DJANGO_DEBUG": "true",
            "CELERY_BROKER_URL": BENCH_BROKER_URL,
            "VEDOMAINS_AWS_ENDPOINT_URL": server.endpoint_url,
            "VEDOMAINS_DNS_NAMESERVERS": dns.nameserver,
            "VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID": template,
            "LOG_LEVEL": "INFO",
            # This benchmark times an ACM certificate the engine requests and the check that
            # attaches it: the per-domain strategy. The default path (SaaS Manager tenants)
            # is timed by bench/cdn.py.
            "VEDOMAINS_CDN_STRATEGY": STRATEGY,
            "VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL": BENCH_BROKER_URL,
        })
        # The beat schedule stays at its defaults: nothing VEDOMAINS_*_SECONDS is set.
        for name in ("VEDOMAINS_DISPATCH_INTERVAL_SECONDS", "VEDOMAINS_FAST_CHECK_SECONDS"):
            env.pop(name, None)
        acm_client = boto3.client("acm", region_name="us-east-1")
        edge._reset_for_tests(default_config())
        try:
            with worker(env), ExitStack() as stack:
                log(f"ttl: worker with beat is up; {sizes.samples} samples, "
                    f"ACM issues {ACM_WAIT}s after request")
                timers: list[threading.Timer] = []
                for i in range(sizes.samples):
                    host = f"live{i}.ttl-client.com"
                    domain = services.domain_register(workspace=workspace, hostname=host,
                                                      by=owner, source="bench")
                    # The same service the worker's domain_request_certificate task runs; done here
                    # so t0 is known exactly.
                    certificates.domain_request_certificate(domain_id=domain.pk)
                    arn = CustomDomain.objects.get(pk=domain.pk).certificate_arn
                    created = acm_client.describe_certificate(
                        CertificateArn=arn)["Certificate"]["CreatedAt"].timestamp()
                    # moto: ISSUED once more than ACM_WAIT seconds have passed.
                    t0 = created + ACM_WAIT + 0.05
                    results[host] = {"t0": t0}
                    timer = threading.Timer(
                        max(0.0, t0 - time.time()), dns.set_record,
                        args=(host, "CNAME", settings.VEDOMAINS_CNAME_TARGET))
                    timer.start()
                    timers.append(timer)
                    time.sleep(sizes.stagger)

                pending = set(results)
                deadline = time.time() + ACM_WAIT + TIMEOUT
                # The handler writes its EMF metric lines to stdout, which carries the table.
                stack.enter_context(redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
                while pending and time.time() < deadline:
                    for host in sorted(pending):
                        if time.time() < results[host]["t0"]:
                            continue
                        edge._cache.clear()  # a cold container: no cached answer
                        answer = edge.handler(_event(host), None)
                        values = answer.get("headers", {}).get("workspace-id")
                        if "status" not in answer and values and values[0]["value"] == "ttl-ws":
                            results[host]["t1"] = time.time()
                            pending.discard(host)
                            log(f"ttl: {host} routed after "
                                f"{results[host]['t1'] - results[host]['t0']:.1f}s")
                    time.sleep(PROBE_INTERVAL)
                for timer in timers:
                    timer.cancel()
        finally:
            edge._reset_for_tests()
            flush_redis()

    seconds = [r["t1"] - r["t0"] for r in results.values() if "t1" in r]
    missing = [h for h, r in results.items() if "t1" not in r]
    events = _phases(list(results))
    if not seconds:
        return [Row("ttl", "DNS + certificate -> edge routes", "never routed",
                    target=f"< {TARGET:.0f} s", result="MISS",
                    note=f"no sample routed within {TIMEOUT:.0f} s: {missing}")]
    worst = max(seconds)
    negative_ttl = default_config()["negative_ttl_seconds"]
    ok = worst < TARGET and not missing
    return [Row(
        "ttl", f"DNS set + certificate ISSUED -> edge routes (cold cache; {STRATEGY} "
        f"strategy), median / max of "
        f"{len(seconds)}; worst case adds our {negative_ttl} s negative cache",
        f"{percentile(seconds, 50):.1f} / {worst:.1f} s (worst case {worst + negative_ttl:.0f} s)",
        f"up to {REFERENCE_WORST} s (5 min polling + 5 min negative cache)",
        fmt_ratio((worst + negative_ttl) / REFERENCE_WORST) + " of the reference's worst case",
        f"< {TARGET:.0f} s of our own latency", verdict(ok),
        note="" if not missing else f"{len(missing)} samples never routed: {missing}",
        data={"seconds": seconds, "phases": events, "acm_wait": ACM_WAIT,
              "dispatch_interval": settings.VEDOMAINS_DISPATCH_INTERVAL_SECONDS,
              "fast_check_seconds": settings.VEDOMAINS_FAST_CHECK_SECONDS},
    )]


def _event(host: str) -> dict[str, Any]:
    import json

    from bench.edge import EVENT_FILE

    event: dict[str, Any] = json.loads(EVENT_FILE.read_text(encoding="utf-8"))
    event["Records"][0]["cf"]["request"]["headers"]["host"] = [{"key": "Host", "value": host}]
    return event


def _phases(hosts: list[str]) -> dict[str, dict[str, str]]:
    """When each domain was activated and pushed (from its record), for the JSON."""
    from domains.models import CustomDomain

    return {d.hostname: {"activated_at": str(d.activated_at), "edge_synced": str(d.edge_in_sync)}
            for d in CustomDomain.objects.filter(hostname__in=hosts)}
