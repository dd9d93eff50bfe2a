"""Two beats and several workers over many domains: every transition happens exactly once.

Real processes on a private Redis: workers with an embedded beat each (two beats, sending
`domains_dispatch` every half second, so their dispatches overlap all the time), plus
plain workers, over N domains driven through several check cycles:

1. all pending -> active (CloudFront attach, edge push);
2. R rounds of: DNS leaves half -> misconfigured; DNS back -> active again;
3. DNS leaves a quarter -> misconfigured; their grace runs out -> removed (detach, cleanup).

Afterwards each domain's audit trail is exactly the expected sequence (no transition or
DomainEvent twice, none missing), and tests/faults.convergence holds.

Sizes come from the environment so bench/reliability.py can run the full version (2,000
domains, four workers, more rounds) with this same code: VEDOMAINS_REL_DOMAINS (default
120), VEDOMAINS_REL_WORKERS (3, two of them with a beat), VEDOMAINS_REL_ROUNDS (1).

PostgreSQL only: the claim is `SELECT ... FOR UPDATE SKIP LOCKED`, which SQLite lacks
(it serializes writers instead), so on SQLite this test would not exercise the claim.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db.models import F
from django.utils import timezone

from domains.integrations import acm
from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind
from tests.factories import WorkspaceFactory
from tests.faults import RedisServer, TcpProxy, convergence, use_broker
from tests.infra import WorkerProcess
from tests.needs import need_postgresql
from tests.polling import wait_for
from workflow import certificates, services

# What is under test is the claim and the exactly-once transitions, which do not depend on
# the CDN strategy; the per-domain stack attaches in one call, so 120 domains (2,000 in
# bench/reliability.py) settle within the cycle's deadline. The default path's engine runs
# with a real worker in tests/e2e and tests/veai/test_journey.py.
pytestmark = [pytest.mark.integration, pytest.mark.worker, pytest.mark.slow,
              pytest.mark.django_db(transaction=True), pytest.mark.per_domain]

N = int(os.environ.get("VEDOMAINS_REL_DOMAINS", "120"))
WORKERS = max(2, int(os.environ.get("VEDOMAINS_REL_WORKERS", "3")))
ROUNDS = int(os.environ.get("VEDOMAINS_REL_ROUNDS", "1"))
TARGET = "domain.ve.ai"
A, S, M, R = (DomainStatus.ACTIVE, DomainStatus.PENDING_VALIDATION, DomainStatus.MISCONFIGURED,
              DomainStatus.REMOVED)


@pytest.fixture
def fleet(tmp_path: Path, aws_stack: Any, moto_server: Any, dns_server: Any
          ) -> Iterator[list[WorkerProcess]]:
    need_postgresql("the claim under test is SELECT FOR UPDATE SKIP LOCKED")
    broker = RedisServer(tmp_path / "redis", appendonly=False).start()
    proxy = TcpProxy(("127.0.0.1", moto_server.port)).start()
    workers = [
        WorkerProcess(broker.url, tmp_path / f"worker{i}.log", concurrency=1, beat=i < 2,
                      extra_env={
                          "VEDOMAINS_AWS_ENDPOINT_URL": proxy.url,
                          "VEDOMAINS_DISPATCH_INTERVAL_SECONDS": "0.5",
                          "VEDOMAINS_CLEANUP_RETRY_SECONDS": "1",
                          "VEDOMAINS_DISPATCH_CHUNK": "10",
                      })
        for i in range(WORKERS)
    ]
    with use_broker(broker.url):
        try:
            yield workers
        finally:
            for worker in workers:
                worker.stop()
            proxy.stop()
            broker.stop()


def make_due(**filters: Any) -> None:
    CustomDomain.objects.exclude(status=R).filter(**filters).update(
        next_check_at=timezone.now())


def settled(expected: Counter[str], *, clean: bool = False) -> bool:
    statuses = Counter(CustomDomain.objects.values_list("status", flat=True))
    if statuses != expected:
        return False
    due = CustomDomain.objects.exclude(status=R).filter(next_check_at__lte=timezone.now())
    if due.exists():
        return False
    return not clean or not any(d.cleanup_pending for d in CustomDomain.objects.filter(status=R))


def test_two_beats_and_several_workers_apply_each_transition_once(
    fleet: list[WorkerProcess], dns_server: Any, settings: Any
) -> None:
    workspace = WorkspaceFactory(plan="enterprise")
    settings.VEDOMAINS_PLAN_LIMITS = {**settings.VEDOMAINS_PLAN_LIMITS, "enterprise": N}
    # Certificate quotas are tests/test_abuse_limits.py's business; here all N are pending.
    settings.VEDOMAINS_ACM_MAX_PENDING = N + 1
    settings.VEDOMAINS_ACM_MAX_PENDING_PER_WORKSPACE = 0
    started = time.monotonic()
    hosts = [f"c{i}.cycle-client.com" for i in range(N)]
    for host in hosts:
        domain = services.domain_register(workspace=workspace, hostname=host, by=None)
        certificates.domain_request_certificate(domain_id=domain.pk)
        dns_server.store.set_record(host, "CNAME", TARGET)
    CustomDomain.objects.update(next_check_at=None)  # nothing due until the fleet is up
    setup_s = time.monotonic() - started
    # moto issues certificates a second after the request (the per-domain strategy's
    # certificates; the default strategy's are CloudFront's): the fleet starts on them issued.
    pending = set(CustomDomain.objects.exclude(certificate_arn="")
                  .values_list("certificate_arn", flat=True))

    def all_issued() -> bool:
        pending.difference_update([arn for arn in list(pending)
                                   if acm.describe_certificate(arn).issued])
        return not pending

    wait_for(all_issued, 15, "moto to issue every certificate")
    for worker in fleet:
        worker.start()

    def logs() -> str:
        return "\n".join(w.log_path.read_text()[-1500:] for w in fleet)

    half, quarter = hosts[: N // 2], hosts[: N // 4]
    expected: dict[str, list[tuple[str, str]]] = {h: [(S, A)] for h in hosts}
    cycles: list[tuple[str, float]] = []

    def cycle(name: str, counts: Counter[str], *, clean: bool = False) -> None:
        begun = time.monotonic()
        make_due()
        wait_for(lambda: settled(counts, clean=clean), max(60, N / 5), name, logs, step=0.5)
        cycles.append((name, time.monotonic() - begun))

    cycle("activate", Counter({A: N}))
    for r in range(ROUNDS):
        for host in half:
            dns_server.store.set_record(host, "CNAME", "elsewhere.example.net")
            expected[host].append((A, M))
        cycle(f"break-{r}", Counter({A: N - len(half), M: len(half)}))
        for host in half:
            dns_server.store.set_record(host, "CNAME", TARGET)
            expected[host].append((M, A))
        cycle(f"fix-{r}", Counter({A: N}))
    for host in quarter:
        dns_server.store.delete(host)
        expected[host] += [(A, M), (M, R)]
    cycle("break-last", Counter({A: N - len(quarter), M: len(quarter)}))
    long_ago = timezone.now() - timedelta(
        seconds=settings.VEDOMAINS_MISCONFIGURED_GRACE_SECONDS) - timedelta(hours=1)
    CustomDomain.objects.filter(status=M).update(misconfigured_at=long_ago)
    cycle("detach", Counter({A: N - len(quarter), R: len(quarter)}), clean=True)

    # Exactly the expected audit trail per domain: nothing twice, nothing missing.
    trail: dict[str, list[tuple[str, str]]] = {h: [] for h in hosts}
    for host, old, new in (DomainEvent.objects.filter(kind=EventKind.STATUS_CHANGED)
                           .order_by("created_at", "id")
                           .values_list("domain__hostname", "from_status", "to_status")):
        trail[host].append((old, new))
    wrong = {h: (trail[h], expected[h]) for h in hosts if trail[h] != expected[h]}
    assert wrong == {}
    kinds = Counter(DomainEvent.objects.values_list("kind", flat=True))
    assert kinds[EventKind.CDN_ATTACHED] == N
    assert kinds[EventKind.CDN_DETACHED] == len(quarter)
    assert kinds[EventKind.CERTIFICATE_DELETED] == len(quarter)
    assert kinds[EventKind.REGISTERED] == N

    # Let the last pushes land (removals push a tombstone), then compare the three stores.
    # (Every transition queued a push behind the checks; at 2,000 domains that takes a while.)
    drain_started = time.monotonic()
    wait_for(lambda: not CustomDomain.objects.filter(
        edge_synced_version__lt=F("edge_version")).exists(), max(60, N / 5),
        "the last edge pushes", logs, step=1.0)
    cycles.append(("edge-drain", time.monotonic() - drain_started))
    result = convergence()
    assert result.problems == []

    text = "\n".join(w.log_path.read_text() for w in fleet)
    dispatched = sum(int(n) for n in re.findall(r"domains_dispatch\[[^\]]+\] succeeded "
                                                r"in [\d.]+s: (\d+)", text))
    checked = sum(int(n) for n in re.findall(r"domains_check_batch\[[^\]]+\] succeeded "
                                             r"in [\d.]+s: (\d+)", text))
    transitions = kinds[EventKind.STATUS_CHANGED]
    assert transitions == sum(len(v) for v in expected.values())
    print(f"\nCYCLES domains={N} workers={WORKERS} beats=2 rounds={ROUNDS} "
          f"setup_s={setup_s:.1f} "
          + " ".join(f"{name}_s={secs:.1f}" for name, secs in cycles)
          + f" transitions={transitions} events={sum(kinds.values())} "
          f"ids_dispatched={dispatched} checks_run={checked} "
          f"duplicate_dispatches_absorbed={max(0, dispatched - checked)} "
          f"lost_updates={result.lost_updates}")
