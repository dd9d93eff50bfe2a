"""Live within a minute at fleet scale, on the default path (CloudFront SaaS Manager tenants).

10,000 pending domains (--quick: 300) whose DNS is absent sit in the database, registered
between an hour and three days ago, on the backed-off schedule their age gives them.

1. One check pass over all of them (`checks.domains_check_batch`, batches of 200, as
   `check_domains` runs it): with DNS first no AWS call is made for a domain whose DNS is
   wrong, so the pass is DNS plus the database. Reported with the CPU each process used
   (ours, the emulator, the DNS server), as bench/checks.py does for the per-domain path.
2. Time to live: a real Celery worker with embedded beat at the default schedule (dispatch
   every 10 s, the DNS-ready sweep every 10 s over 2,000 domains a tick), the default AWS
   rate limits on (Redis buckets), the SaaS Manager emulator deploying each change in
   DEPLOY_SECONDS (30 s; --quick 3 s) and attaching an issued managed certificate 1 s later.
   After a crowd-only stretch, 100 customers (--quick 5) chosen at random create their CNAME
   at random moments within a window; each is timed from that moment to "active" (the
   database) and to "the edge routes it" (the edge handler with an empty cache, a fresh
   container). The emulated delays are reported apart. The CloudFront calls made while only
   the crowd was pending (before the first CNAME and after the last customer is live) are
   the calls spent on domains that never set DNS: the goal is 0, and no tenant for any of
   them.
"""

from __future__ import annotations

import os
import random
import threading
import time
from contextlib import ExitStack, redirect_stdout
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from bench.common import (
    BENCH_BROKER_URL,
    BenchDatabase,
    CpuMeter,
    Row,
    django_aws,
    dns_server,
    flush_redis,
    log,
    moto,
    percentile,
    redis_available,
    verdict,
)

EDGE_IP: Final = "127.0.0.1"
BATCH: Final = 200
WORKSPACES: Final = 100
CERTIFICATE_ATTACH_SECONDS: Final = 1.0
PASS_TARGET: Final = 60.0
P50_TARGET: Final = 60.0
P95_TARGET: Final = 180.0
POLL: Final = 0.5


@dataclass(frozen=True)
class LiveSizes:
    crowd: int
    customers: int
    deploy_seconds: float
    quiet: float  # crowd-only stretch before the first CNAME and after the last live
    window: float  # the customers' CNAMEs are set at random moments within it
    timeout: float  # after the window, for the last customer to be live

    @classmethod
    def for_run(cls, quick: bool) -> LiveSizes:
        crowd = int(os.environ.get("VEDOMAINS_BENCH_LIVE_CROWD", "0"))
        if quick:
            return cls(crowd or 300, 5, 3.0, 5.0, 10.0, 120.0)
        return cls(crowd or 10_000, 100, 30.0, 30.0, 120.0, 420.0)


def run(quick: bool, database: BenchDatabase) -> list[Row]:
    if not redis_available():
        return [Row("live", "fleet time to live", "not run", result="MISS",
                    note=f"Redis is needed at {BENCH_BROKER_URL} for the worker and the "
                         "AWS rate limiter")]
    from django.conf import settings

    from bench.cdn import _configure, _edge_proxy
    from domains.integrations import edge_store
    from localdev import saas_resources

    sizes = LiveSizes.for_run(quick)
    settings.VEDOMAINS_CDN_STRATEGY = "saas-tenant"
    # Managed certificates count against the certificate budget; a crowd this size in a
    # benchmark would exhaust a day's, which is not what is measured.
    settings.VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY = 0
    settings.VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY = 0
    flush_redis()
    rows: list[Row] = []
    with moto() as server, django_aws(server.endpoint_url):
        endpoint = server.endpoint_url
        edge_store.create_table()
        distribution = saas_resources.create_multi_tenant_distribution(
            origin_domain="origin.ve.test")
        group_id, routing = saas_resources.create_connection_group()
        settings.VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID = distribution
        settings.VEDOMAINS_CDN_CONNECTION_GROUP_ID = group_id
        records = [(routing, "A", EDGE_IP), (settings.VEDOMAINS_CNAME_TARGET, "CNAME", routing)]
        with dns_server(records) as dns, _edge_proxy() as proxy:
            settings.VEDOMAINS_DNS_NAMESERVERS = [dns.nameserver]
            _configure(endpoint, dns_server=dns.nameserver, edge_ips=[EDGE_IP],
                       edge_proxy=f"127.0.0.1:{proxy.port}",
                       deploy_seconds=sizes.deploy_seconds,
                       certificate_attach_seconds=CERTIFICATE_ATTACH_SECONDS)
            ids = _crowd(sizes.crowd + sizes.customers)
            database.analyze()
            rows += _one_pass(endpoint, ids, {"ours": None, "moto": server.pid,
                                              "DNS server": dns.pid})
            env = _worker_env(database, endpoint, dns.nameserver)
            rows += _time_to_live(sizes, endpoint, dns.control, ids, env)
    flush_redis()
    return rows


def _crowd(count: int) -> list[int]:
    """Pending domains, DNS absent, registered 1 h to 3 days ago (bulk: setup, untimed)."""
    from django.utils import timezone

    from domains.models import CustomDomain, DomainStatus, Workspace

    workspaces = Workspace.objects.bulk_create(
        [Workspace(slug=f"live-ws-{i}", name=f"Live {i}", plan="enterprise")
         for i in range(WORKSPACES)])
    now = timezone.now()
    CustomDomain.objects.bulk_create(
        [CustomDomain(hostname=f"shop{i}.live-client-{i % 997}.com",
                      workspace=workspaces[i % WORKSPACES],
                      status=DomainStatus.PENDING_VALIDATION, ownership_token="bench",
                      next_check_at=now)
         for i in range(count)], batch_size=5000)
    ids = list(CustomDomain.objects.filter(hostname__contains=".live-client-")
               .order_by("pk").values_list("pk", flat=True))
    rng = random.Random(30)
    by_age: dict[int, list[int]] = {}
    for pk in ids:
        by_age.setdefault(rng.randrange(1, 72), []).append(pk)
    for hours, pks in by_age.items():
        CustomDomain.objects.filter(pk__in=pks).update(created_at=now - timedelta(hours=hours))
    return ids


def _calls(endpoint: str) -> dict[str, int]:
    from bench.cdn import _calls as emulator_calls

    return emulator_calls(endpoint)


def _one_pass(endpoint: str, ids: list[int], pids: dict[str, int | None]) -> list[Row]:
    from workflow import checks

    before = sum(_calls(endpoint).values())
    cpu = CpuMeter(pids).start()
    started = time.perf_counter()
    outcomes: dict[str, int] = {}
    for i in range(0, len(ids), BATCH):
        for outcome in checks.domains_check_batch(domain_ids=ids[i:i + BATCH], source="bench",
                                                  force=True):
            outcomes[outcome.outcome] = outcomes.get(outcome.outcome, 0) + 1
    seconds = time.perf_counter() - started
    used = cpu.stop()
    calls = sum(_calls(endpoint).values()) - before
    log(f"live: one pass over {len(ids):,} pending domains in {seconds:.1f}s {outcomes} "
        f"cpu {used}; CloudFront calls {calls}")
    split = ", ".join(f"{name} {value:.0f} s" for name, value in used.items())
    return [Row(
        "live", f"one pass over {len(ids):,} pending domains, default strategy (DNS absent), "
        f"batches of {BATCH}",
        f"{seconds:.1f} s ({len(ids) / seconds:,.0f} domains/s)", "-", "-",
        f"< {PASS_TARGET:.0f} s", verdict(seconds < PASS_TARGET and calls == 0),
        note=(f"CPU used meanwhile: {split} (2 cores, shared with other work). CloudFront "
              f"calls during the pass: {calls} (DNS first: none for a domain whose DNS is "
              f"wrong). Outcomes: {outcomes}. The AWS rate limiter is on (nothing to pace)."),
        data={"seconds": seconds, "domains": len(ids), "cpu_s": used, "calls": calls,
              "outcomes": outcomes},
    )]


def _worker_env(database: BenchDatabase, endpoint: str, nameserver: str) -> dict[str, str]:
    from django.conf import settings

    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database.url,
        "DJANGO_DEBUG": "true",
        "CELERY_BROKER_URL": BENCH_BROKER_URL,
        "VEDOMAINS_AWS_ENDPOINT_URL": endpoint,
        "VEDOMAINS_DNS_NAMESERVERS": nameserver,
        "VEDOMAINS_CDN_STRATEGY": "saas-tenant",
        "VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID":
            settings.VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID,
        "VEDOMAINS_CDN_CONNECTION_GROUP_ID": settings.VEDOMAINS_CDN_CONNECTION_GROUP_ID,
        "VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY": "0",
        "VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY": "0",
        "VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL": BENCH_BROKER_URL,
        "LOG_LEVEL": "INFO",
    })
    # The production defaults: the rate limits, the beat schedule, the sweep.
    for name in ("VEDOMAINS_AWS_RATE_LIMITS", "VEDOMAINS_DISPATCH_INTERVAL_SECONDS",
                 "VEDOMAINS_FAST_CHECK_SECONDS", "VEDOMAINS_DNS_SWEEP_INTERVAL_SECONDS",
                 "VEDOMAINS_DNS_SWEEP_LIMIT", "VEDOMAINS_DNS_SWEEP_CHECKS"):
        env.pop(name, None)
    return env


def _time_to_live(sizes: LiveSizes, endpoint: str, control_url: str, ids: list[int],
                  env: dict[str, str]) -> list[Row]:
    from django.conf import settings

    from bench.ttl import _event, worker
    from domains.models import CustomDomain, DomainStatus
    from edge_lambda import handler as edge
    from edge_lambda.build import default_config
    from localdev.dns_control import DNSControl

    rng = random.Random(2026)
    customers = dict(CustomDomain.objects.filter(pk__in=rng.sample(ids, sizes.customers))
                     .values_list("hostname", "pk"))
    control = DNSControl(control_url)
    set_at: dict[str, float] = {}
    active: dict[str, float] = {}
    routed: dict[str, float] = {}
    lock = threading.Lock()

    def set_cname(host: str) -> None:
        control.set(host, "CNAME", settings.VEDOMAINS_CNAME_TARGET)
        with lock:
            set_at[host] = time.time()

    edge._reset_for_tests(default_config())
    try:
        with worker(env), ExitStack() as stack:
            log(f"live: worker with beat up; {len(ids):,} pending, {sizes.customers} customers "
                f"within {sizes.window:.0f}s, deploy {sizes.deploy_seconds:g}s")
            c0 = _calls(endpoint)
            time.sleep(sizes.quiet)
            c1 = _calls(endpoint)
            timers = [threading.Timer(rng.uniform(0, sizes.window), set_cname, args=(host,))
                      for host in customers]
            for timer in timers:
                timer.start()
            stack.callback(lambda: [t.cancel() for t in timers])
            # The handler writes its EMF metric lines to stdout, which carries the table.
            stack.enter_context(redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
            deadline = time.time() + sizes.window + sizes.timeout
            while len(routed) < len(customers) and time.time() < deadline:
                with lock:
                    started = dict(set_at)
                waiting = [h for h in started if h not in active]
                if waiting:
                    for host in CustomDomain.objects.filter(
                            hostname__in=waiting, status=DomainStatus.ACTIVE).values_list(
                            "hostname", flat=True):
                        active[host] = time.time()
                for host in [h for h in active if h not in routed]:
                    edge._cache.clear()  # a cold container: no cached answer
                    answer = edge.handler(_event(host), None)
                    if "status" not in answer and answer.get("headers", {}).get("workspace-id"):
                        routed[host] = time.time()
                time.sleep(POLL)
            c2 = _calls(endpoint)
            time.sleep(sizes.quiet)
            c3 = _calls(endpoint)
    finally:
        edge._reset_for_tests()

    crowd_calls = _delta(c0, c1)
    for name, value in _delta(c2, c3).items():
        crowd_calls[name] = crowd_calls.get(name, 0) + value
    customer_calls = _delta(c1, c2)
    crowd_tenants = CustomDomain.objects.filter(pk__in=ids).exclude(
        hostname__in=list(customers)).exclude(cdn_resource_id="").count()
    to_active = [active[h] - set_at[h] for h in active if h in set_at]
    to_edge = [routed[h] - set_at[h] for h in routed if h in set_at]
    missing = sorted(set(customers) - set(routed))
    emulated = sizes.deploy_seconds + CERTIFICATE_ATTACH_SECONDS
    log(f"live: active {len(to_active)}/{len(customers)}, routed {len(to_edge)}; "
        f"crowd calls {crowd_calls}, customer calls {customer_calls}, "
        f"crowd tenants {crowd_tenants}")
    rows: list[Row] = []
    for label, seconds in (("active", to_active), ("edge routes (cold cache)", to_edge)):
        p50, p95 = percentile(seconds, 50), percentile(seconds, 95)
        ours50, ours95 = p50 - emulated, p95 - emulated
        ok = (len(seconds) == len(customers) and ours50 < P50_TARGET and ours95 < P95_TARGET)
        rows.append(Row(
            "live", f"CNAME set -> {label}, p50 / p95 of {len(customers)} customers among "
            f"{len(ids):,} pending (default AWS rate limits; emulated deploy "
            f"{sizes.deploy_seconds:g} s + certificate attach {CERTIFICATE_ATTACH_SECONDS:g} s)",
            f"{p50:.1f} / {p95:.1f} s",
            f"our own (minus the emulated {emulated:g} s): {ours50:.1f} / {ours95:.1f} s",
            "-", f"p50 < {P50_TARGET:.0f} s, p95 < {P95_TARGET:.0f} s of our own latency",
            verdict(ok),
            note=(f"max {max(seconds):.1f} s; " if seconds else "")
            + (f"{len(customers) - len(seconds)} never got there: {missing[:5]}; "
               if len(seconds) < len(customers) else "")
            + "the emulated delay counts once (tenant deploy + certificate attach; the "
              "deploy after the attach overlaps the fast checks' period). The DNS-ready "
              "sweep finds a new CNAME within a rotation over the crowd (2,000 names a 10 s "
              "tick).",
            data={"seconds": seconds, "emulated_seconds": emulated},
        ))
    spent = sum(crowd_calls.values())
    rows.append(Row(
        "live", f"AWS calls spent on the {len(ids) - len(customers):,} domains that never set "
        "DNS (crowd-only stretches), and tenants created for them",
        f"{spent} calls, {crowd_tenants} tenants", "-", "-", "0", verdict(spent == 0
                                                                            and crowd_tenants == 0),
        note=(f"Counted by the emulator over {2 * sizes.quiet:.0f} s with only the crowd "
              f"pending (the worker, beat and the DNS sweep running): {crowd_calls or 'none'}. "
              f"The {len(customers)} customers' CloudFront calls: "
              f"{sum(customer_calls.values())} ({sum(customer_calls.values()) / len(customers):.1f}"
              f" a domain: {', '.join(f'{k} {v}' for k, v in sorted(customer_calls.items()))})."),
        data={"crowd_calls": crowd_calls, "customer_calls": customer_calls,
              "crowd_tenants": crowd_tenants},
    ))
    return rows


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
