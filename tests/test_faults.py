"""Process faults with real processes: killed workers, a restarted Redis, an AWS outage, DNS.

Every test runs real Celery workers on a private Redis (tests/faults.RedisServer), talking
to moto through a TCP proxy it can cut or slow down (tests/faults.TcpProxy), and ends with
the same convergence check (tests/faults.convergence): every record in the right status,
every routed record in DynamoDB with its latest version, no removed hostname routed, one
CloudFront distribution per active alias and none for removed ones. The test process plays
Celery beat where a periodic pass is the recovery path, by sending the same tasks beat
sends (`domains_dispatch`, `edge_sync_pending`, `edge_reconcile`).

Each test prints one `FAULTS` line with its figures; bench/reliability.py collects them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from domains import queueing
from domains.integrations import acm, edge_store
from domains.integrations.errors import IntegrationError
from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind, Workspace
from domains.task_names import TaskName
from edge import sync as edge_sync
from tests.factories import WorkspaceFactory
from tests.faults import (
    RedisServer,
    TcpProxy,
    cloudfront_aliases,
    convergence,
    edge_state,
    kill_pool_children,
    use_broker,
)
from tests.infra import WorkerProcess
from tests.polling import wait_for
from workflow import certificates, checks, lifecycle, services

# The per-domain strategy (ACM certificates the engine requests, template clones).
pytestmark = [
    pytest.mark.integration, pytest.mark.worker, pytest.mark.django_db(transaction=True),
    pytest.mark.per_domain,
]

TARGET = "domain.ve.ai"
# CloudFront CreateDistribution and DynamoDB PutItem, as they appear on the wire.
# CreateDistributionWithTags: the app tags what it creates.
CREATE_DISTRIBUTION = b"POST /2020-05-31/distribution?WithTags HTTP"
PUT_ITEM = b"DynamoDB_20120810.PutItem"
LEASE_SECONDS = 3


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def proxy(aws_stack: dict[str, str], moto_server: Any) -> Iterator[TcpProxy]:
    """Workers reach moto through this; the test process talks to moto directly."""
    p = TcpProxy(("127.0.0.1", moto_server.port)).start()
    yield p
    p.stop()


@pytest.fixture
def broker(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A private Redis (append-only file on unless parametrized) as this test's broker."""
    server = RedisServer(tmp_path / "redis", appendonly=getattr(request, "param", True))
    server.start()
    with use_broker(server.url):
        yield server
    server.stop()


StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def start_worker(
    tmp_path: Path, broker: RedisServer, proxy: TcpProxy, dns_server: Any
) -> Iterator[StartWorker]:
    started: list[WorkerProcess] = []

    def start(name: str = "w", concurrency: int = 1, **env: str) -> WorkerProcess:
        worker = WorkerProcess(
            broker.url, tmp_path / f"{name}-{len(started)}.log", concurrency=concurrency,
            extra_env={
                "VEDOMAINS_AWS_ENDPOINT_URL": proxy.url,
                # A crashed check's lease expires quickly, so the dispatcher retries soon.
                "VEDOMAINS_CHECK_LEASE_SECONDS": str(LEASE_SECONDS),
                "VEDOMAINS_CLEANUP_RETRY_SECONDS": "1",
                **env,
            },
        )
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()


def logs(*workers: WorkerProcess) -> Callable[[], str]:
    return lambda: "\n".join(w.log_path.read_text()[-2500:] for w in workers)


# --- helpers ----------------------------------------------------------------------------------


def register_ready(workspace: Workspace, hosts: list[str], dns_server: Any) -> list[int]:
    """Pending domains whose DNS points at us and whose certificate is issued (in-process)."""
    ids = []
    for host in hosts:
        domain = services.domain_register(workspace=workspace, hostname=host, by=None)
        certificates.domain_request_certificate(domain_id=domain.pk)
        dns_server.store.set_record(host, "CNAME", TARGET)
        ids.append(domain.pk)
    arns = CustomDomain.objects.filter(pk__in=ids).values_list("certificate_arn", flat=True)
    wait_for(lambda: all(acm.describe_certificate(a).status == "ISSUED" for a in arns), 15,
             "moto to issue the certificates")
    return ids


def activate_in_process(workspace: Workspace, hosts: list[str], dns_server: Any) -> list[int]:
    """Active domains, attached to CloudFront by the real check path, edge not yet synced."""
    ids = register_ready(workspace, hosts, dns_server)
    outcomes = checks.domains_check_batch(domain_ids=ids, force=True)
    assert {o.outcome for o in outcomes} == {"activated"}, outcomes
    return ids


def broker_flush(broker: RedisServer) -> None:
    """Drop what setting up queued (certificate requests, pushes): only the test's work runs."""
    redis.Redis.from_url(broker.url).flushdb()


def beat(*names: TaskName) -> None:
    """What Celery beat does on its tick: send the periodic tasks to the workers."""
    for name in names:
        queueing.task_send(name)


def transitions() -> int:
    return DomainEvent.objects.filter(kind=EventKind.STATUS_CHANGED).count()


def assert_each_transition_once() -> None:
    # No scenario here takes a domain through the same step twice, so a repeat is a double.
    dupes = list(
        DomainEvent.objects.filter(kind=EventKind.STATUS_CHANGED)
        .values("domain", "from_status", "to_status").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert dupes == [], dupes


def report(name: str, **figures: object) -> None:
    print("FAULTS " + name + " " + " ".join(f"{k}={v}" for k, v in figures.items()))


def all_clean() -> bool:
    return not any(d.cleanup_pending for d in CustomDomain.objects.filter(
        status=DomainStatus.REMOVED))


# --- kill -9 ----------------------------------------------------------------------------------


def test_worker_killed_mid_check_after_cloudfront_created_the_distribution(
    start_worker: StartWorker, proxy: TcpProxy, broker: RedisServer, dns_server: Any
) -> None:
    """The worst moment: CloudFront has made the distribution, Django has not recorded it.

    The whole worker is SIGKILLed, so its message stays unacknowledged in Redis (until the
    visibility timeout, an hour). Recovery is the lease: the claimed domains fall due again
    after VEDOMAINS_CHECK_LEASE_SECONDS, the dispatcher sends them to a new worker, and the
    re-attach finds the distribution by its CallerReference instead of making a second.
    """
    workspace = WorkspaceFactory(plan="enterprise")
    hosts = [f"k{i}.kill-client.com" for i in range(6)]
    ids = register_ready(workspace, hosts, dns_server)
    broker_flush(broker)  # only the check under test in the queue
    proxy.hold(CREATE_DISTRIBUTION, 60)

    first = start_worker("first")
    CustomDomain.objects.filter(pk__in=ids).update(next_check_at=timezone.now())
    beat(TaskName.DOMAINS_DISPATCH)
    proxy.wait_seen(CREATE_DISTRIBUTION, 1, timeout=30)
    # CloudFront has made it (the response is what the proxy holds back)...
    wait_for(lambda: sum(cloudfront_aliases()[h] for h in hosts) == 1, 10,
             "the distribution to exist")
    leased = CustomDomain.objects.filter(pk__in=ids, next_check_at__gt=timezone.now()).count()
    first.kill()
    proxy.clear_holds()
    # ...and Django has no record of it.
    assert not CustomDomain.objects.filter(pk__in=ids).exclude(cdn_resource_id="").exists()
    assert CustomDomain.objects.filter(pk__in=ids, status=DomainStatus.ACTIVE).count() == 0

    second = start_worker("second")

    def all_active() -> bool:
        beat(TaskName.DOMAINS_DISPATCH)  # beat's tick; a no-op until the lease expires
        return CustomDomain.objects.filter(pk__in=ids, status=DomainStatus.ACTIVE).count() == 6

    wait_for(all_active, 40, "every domain to be activated by the second worker",
             logs(first, second), step=1.0)
    wait_for(lambda: not CustomDomain.objects.filter(pk__in=ids, edge_synced_version=0).exists(),
             20, "the edge pushes", logs(second))
    result = convergence(expect_status=dict.fromkeys(hosts, DomainStatus.ACTIVE))
    assert result.problems == []
    assert_each_transition_once()
    for pk in ids:
        assert DomainEvent.objects.filter(domain_id=pk, kind=EventKind.CDN_ATTACHED).count() == 1
    report("kill_mid_check", domains=len(ids), leased_at_kill=leased, kills=1,
           transitions=transitions(), lost_updates=result.lost_updates)


def test_pool_process_killed_mid_edge_sync_is_redelivered_and_a_dead_worker_caught_up(
    start_worker: StartWorker, proxy: TcpProxy, broker: RedisServer, dns_server: Any
) -> None:
    """Two crashes during DynamoDB writes that reached AWS but were never confirmed.

    1. The pool process dies (the worker survives): acks_late + reject_on_worker_lost put
       the message back and the redelivered task finds its write already there.
    2. The whole worker dies during a tombstone write: the message is stranded, and the
       `edge_sync_pending` pass (beat, every minute) pushes what was never confirmed.
    """
    workspace = WorkspaceFactory(plan="enterprise")
    hosts = [f"s{i}.sync-client.com" for i in range(5)]
    ids = activate_in_process(workspace, hosts, dns_server)
    broker_flush(broker)
    proxy.hold(PUT_ITEM, 60)
    worker = start_worker("sync", concurrency=1)
    for host in hosts:
        queueing.task_send(TaskName.EDGE_SYNC_HOSTNAME, host)
    proxy.wait_seen(PUT_ITEM, 1, timeout=30)
    killed = kill_pool_children(worker.proc.pid)
    proxy.clear_holds()
    wait_for(lambda: not CustomDomain.objects.filter(pk__in=ids, edge_synced_version=0).exists(),
             30, "every push to be confirmed", logs(worker))
    assert "WorkerLostError" in worker.log_path.read_text()
    phase1 = convergence(expect_status=dict.fromkeys(hosts, DomainStatus.ACTIVE))
    assert phase1.problems == []

    # 2. Remove one; kill the whole worker while its tombstone write is in flight.
    proxy.hold(PUT_ITEM, 60)
    seen = proxy.seen[PUT_ITEM]
    gone = CustomDomain.objects.get(hostname=hosts[0])
    services.domain_remove(domain=gone, by=None, source="test")
    proxy.wait_seen(PUT_ITEM, seen + 1, timeout=30)
    worker.kill()
    proxy.clear_holds()
    survivor = start_worker("after-crash", concurrency=1)

    def caught_up() -> bool:
        beat(TaskName.EDGE_SYNC_PENDING, TaskName.DOMAINS_DISPATCH)
        return all_clean()

    wait_for(caught_up, 40, "the periodic passes to finish the removal", logs(survivor),
             step=1.0)
    expect = {h: DomainStatus.ACTIVE for h in hosts[1:]} | {hosts[0]: DomainStatus.REMOVED}
    result = convergence(expect_status=expect)
    assert result.problems == []
    assert_each_transition_once()
    report("kill_mid_sync", domains=len(hosts), kills=1 + killed, transitions=transitions(),
           lost_updates=result.lost_updates)


# --- Redis restarts ------------------------------------------------------------------------------


@pytest.mark.parametrize("broker", [True, False], ids=["aof", "no-persistence"], indirect=True)
def test_redis_restarted_with_tasks_queued(
    broker: RedisServer, start_worker: StartWorker, dns_server: Any
) -> None:
    """Tasks queued when Redis dies: kept with an append-only file, re-derived without.

    Without persistence every queued message is gone, and so is one sent while Redis was
    down. Nothing is lost all the same: the state they were about is in the database, and
    the periodic passes (due checks, which request missing certificates and run pending
    cleanups, and the edge pass) redo the work.
    """
    workspace = WorkspaceFactory(plan="enterprise")
    routed = [f"r{i}.redis-client.com" for i in range(4)]
    for pk in activate_in_process(workspace, routed, dns_server):
        edge_sync.edge_sync_hostname(hostname=CustomDomain.objects.get(pk=pk).hostname)
    broker_flush(broker)
    # Queued with no worker running: 6 first checks (the certificate waits for the CNAME),
    # and per removal a cleanup and one edge push.
    fresh = [f"n{i}.redis-client.com" for i in range(6)]
    for host in fresh:
        services.domain_register(workspace=workspace, hostname=host, by=None)
    for host in routed[:2]:
        services.domain_remove(domain=CustomDomain.objects.get(hostname=host), by=None,
                               source="test")
    ours = broker.queued_tasks()
    assert (ours[TaskName.DOMAIN_CHECK], ours[TaskName.DOMAIN_CLEANUP],
            ours[TaskName.EDGE_SYNC_HOSTNAME]) == (6, 2, 2)
    queued = broker.queued()

    broker.kill()
    # Sent while Redis is down: the send fails (and is logged), the removal is committed.
    services.domain_remove(domain=CustomDomain.objects.get(hostname=routed[2]), by=None,
                           source="test")
    broker.start()
    survived = broker.queued()
    assert survived == (queued if broker.appendonly else 0)

    worker = start_worker("after-restart", concurrency=2)

    def certificates_requested() -> bool:
        # The first check of each fresh domain ran (it asks for the certificate once the
        # CNAME points at us; none does here).
        return not CustomDomain.objects.filter(hostname__in=fresh,
                                               last_checked_at__isnull=True).exists()

    def queued_work_done() -> bool:
        tombstoned = all(d.edge_in_sync for d in CustomDomain.objects.filter(
            hostname__in=routed[:2]))
        return certificates_requested() and tombstoned

    if broker.appendonly:
        # The surviving messages alone do their work, before any periodic pass (which
        # then finishes the CloudFront detach: that takes several steps by design).
        wait_for(queued_work_done, 30, "the queued tasks to run", logs(worker))

    def everything_done() -> bool:
        beat(TaskName.DOMAINS_DISPATCH, TaskName.EDGE_SYNC_PENDING)
        return certificates_requested() and all_clean()

    wait_for(everything_done, 45, "the periodic passes to redo the lost work", logs(worker),
             step=1.0)
    expect = ({h: DomainStatus.PENDING_VALIDATION for h in fresh}
              | {h: DomainStatus.REMOVED for h in routed[:3]}
              | {routed[3]: DomainStatus.ACTIVE})
    result = convergence(expect_status=expect)
    assert result.problems == []
    assert_each_transition_once()
    report(f"redis_restart_{'aof' if broker.appendonly else 'none'}",
           domains=len(routed) + len(fresh), queued=queued + 1, survived=survived, restarts=1,
           transitions=transitions(), lost_updates=result.lost_updates)


# --- AWS outage -----------------------------------------------------------------------------------


def test_aws_endpoint_cut_while_syncs_run(
    start_worker: StartWorker, proxy: TcpProxy, broker: RedisServer, dns_server: Any
) -> None:
    """The AWS endpoint goes away mid-way through a burst of edge pushes, and comes back.

    Pushes fail with connection errors (transient: retried with backoff); removals made
    during the outage bump versions; after restoring, every routed record lands with its
    latest version and no tombstone is overwritten by an older push.
    """
    workspace = WorkspaceFactory(plan="enterprise")
    hosts = [f"a{i}.outage-client.com" for i in range(12)]
    ids = activate_in_process(workspace, hosts, dns_server)
    # The activations queued 12 pushes; the worker starts on them now.
    # Slow each push a little so the cut lands with pushes in flight and others queued.
    proxy.hold(PUT_ITEM, 0.5)
    worker = start_worker("outage", concurrency=2)
    proxy.wait_seen(PUT_ITEM, 3, timeout=30)
    proxy.cut()
    cut_at = time.monotonic()
    # Changes during the outage: their pushes fail too.
    removed = hosts[:4]
    for host in removed:
        services.domain_remove(domain=CustomDomain.objects.get(hostname=host), by=None,
                               source="test")
    # Keep the endpoint cut until the worker has felt it (a push failed and was retried).
    wait_for(lambda: "retry: Retry in" in worker.log_path.read_text(), 30,
             "a push to fail on the cut endpoint", on_timeout=logs(worker))
    proxy.restore()
    outage = time.monotonic() - cut_at

    def landed() -> bool:
        beat(TaskName.EDGE_SYNC_PENDING, TaskName.DOMAINS_DISPATCH)
        return (not CustomDomain.objects.filter(pk__in=ids,
                                                edge_synced_version__lt=F("edge_version")).exists()
                and all_clean())

    wait_for(landed, 60, "every push to land after the outage", logs(worker), step=1.0)
    # The outage hit pushes in flight: they failed and were retried with backoff.
    retried = worker.log_path.read_text().count("retry: Retry in")
    assert retried > 0
    expect = ({h: DomainStatus.ACTIVE for h in hosts[4:]}
              | {h: DomainStatus.REMOVED for h in removed})
    result = convergence(expect_status=expect)
    assert result.problems == []
    assert_each_transition_once()
    report("aws_outage", domains=len(hosts), cuts=proxy.cuts, outage_s=round(outage, 1),
           retried_tasks=retried, transitions=transitions(), lost_updates=result.lost_updates)


def test_aws_endpoint_restarted_empty_and_the_edge_table_rebuilt_from_django(
    start_worker: StartWorker, proxy: TcpProxy, broker: RedisServer, dns_server: Any,
    moto_server: Any,
) -> None:
    """State loss is the point: the endpoint comes back with nothing in it.

    DynamoDB is a projection of the database, so the reconcile pass (beat, hourly) puts
    every routed mapping back with its latest version, and no removed hostname returns.
    """
    workspace = WorkspaceFactory(plan="enterprise")
    hosts = [f"m{i}.restart-client.com" for i in range(8)]
    activate_in_process(workspace, hosts, dns_server)
    for host in hosts:
        edge_sync.edge_sync_hostname(hostname=host)
    for host in hosts[:2]:
        services.domain_remove(domain=CustomDomain.objects.get(hostname=host), by=None,
                               source="test")
        edge_sync.edge_sync_hostname(hostname=host)
    broker_flush(broker)
    worker = start_worker("rebuild")

    moto_server.restart()
    with pytest.raises(IntegrationError, match="ResourceNotFound"):
        edge_store.get_item(hosts[2])  # the table is gone with everything else
    # The table itself comes from deploy/ (CloudFormation); recreate it as a deploy would.
    edge_store.create_table()
    beat(TaskName.EDGE_RECONCILE)

    def rebuilt() -> bool:
        items = edge_state()
        return all(h in items for h in hosts[2:])

    wait_for(rebuilt, 30, "reconcile to rebuild the table", logs(worker))
    result = convergence(check_cloudfront=False,
                         expect_status={h: DomainStatus.ACTIVE for h in hosts[2:]})
    assert result.problems == []
    assert not any(edge_state()[h].status == "active" for h in hosts[:2] if h in edge_state())
    report("aws_restart_empty", domains=len(hosts), restarts=1, rebuilt=len(edge_state()),
           transitions=transitions(), lost_updates=result.lost_updates)


# --- DNS faults -----------------------------------------------------------------------------------


def test_dns_timeouts_and_servfail_never_change_a_status(
    start_worker: StartWorker, broker: RedisServer, dns_server: Any, settings: Any
) -> None:
    """Timeout, SERVFAIL and REFUSED give no verdict, even on a domain at its deadline.

    The domains sit where a verdict would move them: pending past the pending window,
    misconfigured past the grace period, active with DNS gone. Under each fault, checks by
    a real worker change nothing; once DNS answers again, each gets its verdict.
    """
    workspace = WorkspaceFactory(plan="enterprise")
    hosts = {
        "fresh": "fresh.dns-client.com",          # pending, DNS fine: will activate
        "expired": "expired.dns-client.com",      # pending past the window, no DNS: fails
        "active": "active.dns-client.com",        # active, DNS fine: stays
        "gone": "gone.dns-client.com",            # active, DNS gone: misconfigured
        "grace": "grace.dns-client.com",          # misconfigured past grace: detached
    }
    register_ready(workspace, [hosts["fresh"], hosts["expired"]], dns_server)
    activate_in_process(workspace, [hosts["active"], hosts["gone"], hosts["grace"]], dns_server)
    for host in (hosts["active"], hosts["gone"], hosts["grace"]):
        edge_sync.edge_sync_hostname(hostname=host)
    now = timezone.now()
    long_ago = now - timedelta(
        seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS) - timedelta(hours=1)
    CustomDomain.objects.filter(hostname=hosts["expired"]).update(created_at=long_ago)
    grace_dom = CustomDomain.objects.get(hostname=hosts["grace"])
    with_transition(grace_dom, DomainStatus.MISCONFIGURED,
                     misconfigured_at=now - timedelta(
                         seconds=settings.VEDOMAINS_MISCONFIGURED_GRACE_SECONDS)
                     - timedelta(hours=1))
    for host in (hosts["expired"], hosts["gone"], hosts["grace"]):
        dns_server.store.delete(host)
    broker_flush(broker)
    before = {d.hostname: d.status for d in CustomDomain.objects.all()}
    events_before = transitions()

    worker = start_worker("dns", concurrency=2)
    rounds = 0
    for fault in ("timeout", "servfail", "refused"):
        dns_server.store.set_fault(fault)
        CustomDomain.objects.update(next_check_at=timezone.now() - timedelta(seconds=1))
        beat(TaskName.DOMAINS_DISPATCH)
        wait_for(lambda: all(d.checks.get("dns", {}).get("transient") for d in
                             CustomDomain.objects.all()),
                 30, f"a checked round under {fault}", logs(worker))
        rounds += 1
        assert {d.hostname: d.status for d in CustomDomain.objects.all()} == before, fault
        assert transitions() == events_before, fault
        CustomDomain.objects.update(checks={})
    dns_server.store.clear_faults()

    CustomDomain.objects.update(next_check_at=timezone.now() - timedelta(seconds=1))
    beat(TaskName.DOMAINS_DISPATCH)
    expect = {hosts["fresh"]: DomainStatus.ACTIVE, hosts["expired"]: DomainStatus.FAILED,
              hosts["active"]: DomainStatus.ACTIVE, hosts["gone"]: DomainStatus.MISCONFIGURED,
              hosts["grace"]: DomainStatus.REMOVED}

    def verdicts() -> bool:
        beat(TaskName.DOMAINS_DISPATCH, TaskName.EDGE_SYNC_PENDING)
        got = {d.hostname: d.status for d in CustomDomain.objects.all()}
        return got == expect and all_clean()

    wait_for(verdicts, 40, "the verdicts once DNS answers", logs(worker), step=1.0)
    result = convergence(expect_status=expect)
    assert result.problems == []
    assert_each_transition_once()
    report("dns_faults", domains=len(hosts), faults=rounds,
           transitions=transitions() - events_before, lost_updates=result.lost_updates)


def with_transition(domain: CustomDomain, to: str, **updates: Any) -> None:
    with transaction.atomic():
        assert lifecycle.domain_transition(domain=domain, to=to, allowed_from=[domain.status],
                                   source="test", updates=updates)
