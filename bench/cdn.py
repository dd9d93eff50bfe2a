"""The default CDN path (CloudFront SaaS Manager) in the emulator.

1. Throughput: N domains (1,000; --quick 100) registered, their one CNAME in the DNS server
   (its own process), then checked in batches as `check_domains` does until every one is
   active, with the emulator's default quotas (tenants per account 10,000, adjustable on
   AWS). Reports failures (must be 0), CloudFront calls per domain (counted by the
   emulator) and the time of the pass.
2. DNS first: 5 domains registered with no DNS record, checked 5 times: the AWS resources
   made for them (tenants, certificates; goal 0).
3. Latency: register -> active for 5 domains whose CNAME already exists, with the emulated
   deploy delay at the local default (3 s, certificate attached 1 s after it issues) and at
   30 s, under the local stack's schedule (fast checks every 3 s, deploying re-checked every
   5 s, the dispatcher ticking every second here): the engine's scheduling in-process, the
   managed certificate validated by an HTTP GET through the DNS server and the edge proxy.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from bench.common import (
    BenchDatabase,
    Row,
    django_aws,
    dns_server,
    log,
    moto,
    verdict,
)

EDGE_IP: Final = "127.0.0.1"
BATCH: Final = 200
LATENCY_SAMPLES: Final = 5
DISPATCH_TICK: Final = 1.0


def _configure(endpoint: str, **changes: Any) -> None:
    request = urllib.request.Request(f"{endpoint}/_localdev/cloudfront/config", method="POST",
                                     data=json.dumps(changes).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _calls(endpoint: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{endpoint}/_localdev/cloudfront/calls", timeout=10) as r:
        return dict(json.loads(r.read()))


@contextmanager
def _edge_proxy() -> Iterator[Any]:
    from django.conf import settings

    from edge_lambda.build import default_config
    from localdev.edge_proxy import EdgeProxyServer

    proxy = EdgeProxyServer(("127.0.0.1", 0), origin="http://127.0.0.1:9",
                            config=default_config(table_name=settings.VEDOMAINS_EDGE_TABLE))
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


def _workspace(slug: str) -> Any:
    from domains.models import Workspace

    return Workspace.objects.create(slug=slug, name=slug, plan="enterprise")


def run(quick: bool, database: BenchDatabase) -> list[Row]:
    from django.conf import settings

    from domains.integrations import edge_store
    from localdev import saas_resources

    count = 100 if quick else 1000
    settings.VEDOMAINS_CDN_STRATEGY = "saas-tenant"
    settings.VEDOMAINS_PLAN_LIMITS = {**settings.VEDOMAINS_PLAN_LIMITS, "enterprise": count + 50}
    settings.VEDOMAINS_ACM_MAX_PENDING_PER_WORKSPACE = 0
    settings.VEDOMAINS_FAST_CHECK_SECONDS = 3
    settings.VEDOMAINS_CDN_DEPLOY_CHECK_SECONDS = 5
    # The fleet-wide AWS rate limiter stays off: it paces calls to real AWS, and with it on
    # the pass measures the limiter (cloudfront.* at 8 calls/s: 3 calls a domain is >= 375 s
    # for 1,000 domains), not the path. The note on the time row gives that floor.
    settings.VEDOMAINS_AWS_RATE_LIMITS = {}
    # Managed certificates count against the daily certificate budget (50 a day platform-
    # wide by default): the pass measures the path, not the budget.
    settings.VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY = 0
    settings.VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY = 0
    rows: list[Row] = []
    with moto() as aws_endpoint, django_aws(aws_endpoint.endpoint_url):
        endpoint = aws_endpoint.endpoint_url
        edge_store.create_table()
        settings.VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID = (
            saas_resources.create_multi_tenant_distribution(origin_domain="origin.ve.test"))
        group_id, routing = saas_resources.create_connection_group()
        settings.VEDOMAINS_CDN_CONNECTION_GROUP_ID = group_id
        hosts = [f"www.saas-bench-{i}.com" for i in range(count)]
        late = [f"late-{i}.saas-bench.com" for i in range(3 * LATENCY_SAMPLES)]
        records = [(routing, "A", EDGE_IP), (settings.VEDOMAINS_CNAME_TARGET, "CNAME", routing)]
        records += [(h, "CNAME", settings.VEDOMAINS_CNAME_TARGET) for h in hosts]
        with dns_server(records) as dns, _edge_proxy() as proxy:
            nameserver, control = dns.nameserver, dns.control
            settings.VEDOMAINS_DNS_NAMESERVERS = [nameserver]
            _configure(endpoint, dns_server=nameserver, edge_ips=[EDGE_IP],
                       edge_proxy=f"127.0.0.1:{proxy.port}", deploy_seconds=0)
            rows += _throughput(endpoint, hosts)
            rows += _dns_first(endpoint, late[:LATENCY_SAMPLES])
            rows += _latency(endpoint, late[LATENCY_SAMPLES:], control)
    return rows


def _throughput(endpoint: str, hosts: list[str]) -> list[Row]:
    from domains.models import CustomDomain, DomainStatus
    from workflow import checks, services

    workspace = _workspace("saas-bench")
    started = time.perf_counter()
    ids = [services.domain_register(workspace=workspace, hostname=h, by=None).pk for h in hosts]
    registered = time.perf_counter() - started
    before = sum(_calls(endpoint).values())
    log(f"cdn: {len(ids)} registered in {registered:.1f} s; checking")
    t0 = time.perf_counter()
    passes = 0
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        pending = list(CustomDomain.objects.filter(
            pk__in=ids, status__in=[DomainStatus.PENDING_VALIDATION, DomainStatus.DEPLOYING])
            .values_list("pk", flat=True))
        if not pending:
            break
        passes += 1
        for i in range(0, len(pending), BATCH):
            checks.domains_check_batch(domain_ids=pending[i:i + BATCH], source="bench",
                                       force=True)
    elapsed = time.perf_counter() - t0
    statuses = list(CustomDomain.objects.filter(pk__in=ids).values_list("status", flat=True))
    active = statuses.count(DomainStatus.ACTIVE)
    failed = statuses.count(DomainStatus.FAILED)
    calls = _calls(endpoint)
    total_calls = sum(calls.values()) - before
    per_domain = total_calls / len(ids)
    return [
        Row("cdn", f"{len(ids)} domains, default path: active / failed", f"{active} / {failed}",
            target=f"{len(ids)} / 0", result=verdict(active == len(ids) and failed == 0),
            note=f"{passes} check pass(es) over the batch; registration took {registered:.1f} s "
                 "(untimed). Quotas: the emulator's defaults (10,000 tenants per account)."),
        Row("cdn", "CloudFront calls per domain", f"{per_domain:.2f}",
            note=", ".join(f"{k} {v}" for k, v in sorted(calls.items())) +
                 "; no ACM call on the default path (CloudFront manages the certificate).",
            data={"calls": calls, "domains": len(ids)}),
        Row("cdn", f"time of the pass ({len(ids)} domains)", f"{elapsed:.1f} s",
            note="AWS rate limiter off (emulator). On AWS the default cloudfront.* limit (8 "
                 f"calls/s) makes it at least {total_calls / 8:.0f} s.",
            data={"seconds": elapsed, "domains": len(ids)}),
    ]


def _dns_first(endpoint: str, hosts: list[str]) -> list[Row]:
    """No DNS record: five checks of each domain create nothing in AWS."""
    from domains.integrations import aws
    from workflow import checks, services

    workspace = _workspace("saas-no-dns")
    before = _calls(endpoint)
    ids = [services.domain_register(workspace=workspace, hostname=h, by=None).pk
           for h in hosts]
    for _ in range(5):
        checks.domains_check_batch(domain_ids=ids, source="bench", force=True)
    after = _calls(endpoint)
    creates = after.get("CreateDistributionTenant", 0) - before.get("CreateDistributionTenant", 0)
    tenants = [t for t in aws.client("cloudfront", "us-east-1").list_distribution_tenants()[
        "DistributionTenantList"] if any(d["Domain"] in hosts for d in t.get("Domains", []))]
    certificates = [c for c in aws.client("acm", "us-east-1").list_certificates()[
        "CertificateSummaryList"] if c.get("DomainName") in hosts]
    made = len(tenants) + len(certificates) + creates
    return [Row("cdn", f"AWS resources for {len(ids)} registered domains after 5 checks, no DNS",
                str(made), target="0", result=verdict(made == 0),
                note=f"tenants {len(tenants)}, ACM certificates {len(certificates)}, "
                     f"CreateDistributionTenant calls {creates}")]


def _latency(endpoint: str, hosts: list[str], control_url: str) -> list[Row]:
    from django.conf import settings
    from django.utils import timezone

    from domains.models import CustomDomain, DomainStatus
    from localdev.dns_control import DNSControl
    from localdev.saas_manager import DEFAULT_CERTIFICATE_ATTACH_SECONDS, DEFAULT_DEPLOY_SECONDS
    from workflow import checks, schedule, services

    rows: list[Row] = []
    workspace = _workspace("saas-latency")
    for delay, group in ((DEFAULT_DEPLOY_SECONDS, hosts[:LATENCY_SAMPLES]),
                         (30, hosts[LATENCY_SAMPLES:])):
        _configure(endpoint, deploy_seconds=delay,
                   certificate_attach_seconds=DEFAULT_CERTIFICATE_ATTACH_SECONDS)
        # The customer created the CNAME (as `local_dns set` would), then registers.
        control = DNSControl(control_url)
        for host in group:
            control.set(host, "CNAME", settings.VEDOMAINS_CNAME_TARGET)
        set_at = time.monotonic()
        ids = [services.domain_register(workspace=workspace, hostname=h, by=None).pk
               for h in group]
        done: dict[int, float] = {}
        deadline = time.monotonic() + 300
        while len(done) < len(ids) and time.monotonic() < deadline:
            due = schedule.domains_due(now=timezone.now())
            mine = [pk for pk in due if pk in ids]
            if mine:
                checks.domains_check_batch(domain_ids=mine, source="bench")
            for pk, status in CustomDomain.objects.filter(pk__in=ids).values_list("pk",
                                                                                  "status"):
                if status == DomainStatus.ACTIVE and pk not in done:
                    done[pk] = time.monotonic() - set_at
            time.sleep(DISPATCH_TICK)
        seconds = sorted(done.values())
        median = statistics.median(seconds) if len(seconds) == len(ids) else float("nan")
        rows.append(Row(
            "cdn", f"register (CNAME in place) -> active, median of {len(ids)}, deploy delay "
                   f"{delay} s",
            f"{median:.1f} s", result="info",
            note=f"all: {', '.join(f'{s:.1f}' for s in seconds)} s; local-stack schedule "
                 "(fast checks 3 s, deploying re-checked every 5 s).",
            data={"seconds": seconds, "deploy_delay": delay}))
    return rows
