"""Backfill and reconcile survive a page that times out; a permanent error still stops them.

The app reaches moto in server mode through tests/faults.TcpProxy, which holds the response
to chosen requests past the client's read timeout. Each fault lasts four requests, which is
botocore's own four attempts: only our retry of the page (edge_store.with_retries) can get
the pass through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from domains.integrations import aws, edge_store
from domains.integrations.edge_store import EdgeItem, RetryDelays
from domains.integrations.errors import IntegrationError
from domains.models import CustomDomain, DomainStatus
from edge import sync as edge_sync
from tests.factories import WorkspaceFactory
from tests.faults import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

# Generous, so that on a loaded machine only the held responses time out.
READ_TIMEOUT = 2.0
# Longer than the read timeout: the client gives up on the held response.
HOLD = READ_TIMEOUT + 2.0
# `retries={"max_attempts": 3}` in aws.client: three retries, four attempts in all.
BOTOCORE_ATTEMPTS = 4
SCAN = b"DynamoDB_20120810.Scan"
CONTINUATION = b"ExclusiveStartKey"


@pytest.fixture(autouse=True)
def _no_retry_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests are about what is retried; the held responses' read timeouts are the
    # waiting they need, not our backoff between page retries.
    monkeypatch.setattr(edge_store, "RETRY_DELAYS", RetryDelays(0, 0, 0, 0))


@pytest.fixture
def proxy(aws_stack: dict[str, str], moto_server: Any, settings: Any) -> Iterator[TcpProxy]:
    p = TcpProxy(("127.0.0.1", moto_server.port)).start()
    settings.VEDOMAINS_AWS_ENDPOINT_URL = p.url
    settings.VEDOMAINS_AWS_READ_TIMEOUT_SECONDS = READ_TIMEOUT
    aws.reset_clients()
    yield p
    aws.reset_clients()
    p.stop()


def _items(n: int) -> list[EdgeItem]:
    return [EdgeItem(f"page{i}.client.com", "ws", "active", 1) for i in range(n)]


def _active(n: int) -> list[CustomDomain]:
    workspace = WorkspaceFactory(slug="acme", plan="enterprise")
    now = timezone.now()
    return CustomDomain.objects.bulk_create([
        CustomDomain(hostname=f"site{i}.client.com", workspace=workspace,
                     status=DomainStatus.ACTIVE, ownership_token="t", edge_version=1,
                     verified_at=now, activated_at=now)
        for i in range(n)])


def test_scan_reads_a_timed_out_page_again_and_returns_every_item(proxy: TcpProxy) -> None:
    edge_store.batch_put(_items(45))
    proxy.watch(CONTINUATION)
    # The second page (the first request that carries a start key) times out four times.
    proxy.hold(CONTINUATION, HOLD, times=BOTOCORE_ATTEMPTS)

    found = [item.domain for item in edge_store.scan(segments=1, page_size=10)]

    assert sorted(found) == sorted(i.domain for i in _items(45))
    # Pages 2-5, plus the attempts that timed out.
    assert proxy.seen[CONTINUATION] >= 4 + BOTOCORE_ATTEMPTS


def test_backfill_and_reconcile_complete_despite_failing_requests(proxy: TcpProxy) -> None:
    domains = _active(30)
    proxy.hold(b"DynamoDB_20120810.BatchWriteItem", HOLD, times=BOTOCORE_ATTEMPTS)
    counts = edge_sync.edge_backfill()
    assert counts["written"] == 30
    assert edge_store.get_item(domains[0].hostname) is not None

    # Drift for the reconcile to find: one mapping gone from the table.
    aws.client("dynamodb").delete_item(TableName=edge_store.table_name(),
                                       Key={"domain": {"S": domains[7].hostname}})
    # One of the four scan segments times out four times, and so does the BatchGetItem
    # that looks for Django's mappings in the table.
    proxy.hold(b'"Segment": 2,', HOLD, times=BOTOCORE_ATTEMPTS)
    proxy.hold(b"DynamoDB_20120810.BatchGetItem", HOLD, times=BOTOCORE_ATTEMPTS)

    report = edge_sync.edge_reconcile(repair=True)

    assert report.counts() == {"scanned": 29, "checked": 30, "missing": 1, "stale": 0,
                               "extra": 0, "repaired": 1}
    assert proxy.seen[b'"Segment": 2,'] > BOTOCORE_ATTEMPTS
    assert proxy.seen[b"DynamoDB_20120810.BatchGetItem"] > BOTOCORE_ATTEMPTS
    assert edge_store.get_item(domains[7].hostname) is not None


def test_a_permanent_error_stops_the_pass_at_once(proxy: TcpProxy, settings: Any) -> None:
    _active(3)
    proxy.watch(SCAN)
    settings.VEDOMAINS_EDGE_TABLE = "no-such-table"

    with pytest.raises(IntegrationError) as raised:
        list(edge_store.scan(segments=1))
    assert raised.value.permanent
    assert raised.value.code == "ResourceNotFoundException"
    assert proxy.seen[SCAN] == 1  # not retried

    with pytest.raises(IntegrationError) as raised:
        edge_sync.edge_reconcile(repair=True)
    assert raised.value.permanent
