"""Backfill and reconcile edge cases, against moto in server mode (tests/test_edge_sync.py
has the main paths)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import F
from django.utils import timezone

from domains import selectors
from domains.integrations import edge_store
from domains.integrations.edge_store import EdgeItem
from domains.integrations.errors import IntegrationError
from domains.models import CustomDomain, DomainStatus
from edge import sync as edge_sync
from tests.factories import CustomDomainFactory, WorkspaceFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def routed(n: int, *, status: str = DomainStatus.ACTIVE, version: int = 1,
           prefix: str = "site") -> list[CustomDomain]:
    workspace = WorkspaceFactory(slug=f"ws-{prefix}", plan="enterprise")
    now = timezone.now()
    return [CustomDomainFactory(workspace=workspace, hostname=f"{prefix}{i}.client.com",
                                status=status, edge_version=version, verified_at=now,
                                activated_at=now) for i in range(n)]


def table() -> dict[str, EdgeItem]:
    return {item.domain: item for item in edge_store.scan()}


# --- backfill ---------------------------------------------------------------------------------


def test_backfill_of_nothing_writes_nothing(aws_stack: Any) -> None:
    CustomDomainFactory(hostname="pending.client.com")  # never routed
    assert edge_sync.edge_backfill() == {"active": 0, "written": 0, "resynced": 0}
    assert table() == {}


def test_backfill_dry_run_counts_but_writes_and_records_nothing(aws_stack: Any) -> None:
    domains = routed(3)
    assert edge_sync.edge_backfill(dry_run=True) == {"active": 3, "written": 0, "resynced": 0}
    assert table() == {}
    assert not CustomDomain.objects.filter(pk__in=[d.pk for d in domains],
                                           edge_synced_version__gt=0).exists()


def test_backfill_includes_misconfigured_domains_in_windows(aws_stack: Any) -> None:
    """Misconfigured domains still route (grace period); windows smaller than the fleet."""
    domains = routed(3) + routed(2, status=DomainStatus.MISCONFIGURED, prefix="grace")
    sizes: list[int] = []
    counts = edge_sync.edge_backfill(window=2, progress=sizes.append)
    assert counts == {"active": 5, "written": 5, "resynced": 0}
    assert sizes == [2, 2, 1]
    assert {h: i.status for h, i in table().items()} == {d.hostname: "active" for d in domains}
    assert CustomDomain.objects.filter(edge_synced_version=1).count() == 5


def test_backfill_resyncs_a_record_that_changed_during_its_batch(
    aws_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    domains = routed(3)
    moved = domains[1]
    real_start_batch_put = edge_store.start_batch_put

    def batch_put_while_a_record_changes(items: Any, pool: Any) -> Any:
        # The customer's domain changes between the read and the write of its batch.
        CustomDomain.objects.filter(pk=moved.pk).update(edge_version=F("edge_version") + 1)
        return real_start_batch_put(items, pool)

    monkeypatch.setattr(edge_store, "start_batch_put", batch_put_while_a_record_changes)
    counts = edge_sync.edge_backfill()
    assert counts == {"active": 3, "written": 3, "resynced": 1}
    # The table holds the newer version, and Django knows it does.
    assert table()[moved.hostname].version == 2
    moved.refresh_from_db()
    assert (moved.edge_version, moved.edge_synced_version) == (2, 2)


def test_backfill_marks_only_the_windows_whose_writes_succeeded(
    aws_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows are written while the next is read: a failed write stops the backfill, and
    neither its window nor any later one is recorded as synced (a re-run writes them)."""
    domains = routed(6)
    failing = domains[3].hostname
    real_write_batch = edge_store._write_batch

    def write_batch(items: list[EdgeItem]) -> int:
        if any(i.domain == failing for i in items):
            raise IntegrationError("the table refused the batch", permanent=True,
                                   code="ValidationException")
        return real_write_batch(items)

    monkeypatch.setattr(edge_store, "_write_batch", write_batch)
    with pytest.raises(IntegrationError):
        edge_sync.edge_backfill(window=2)
    synced = set(CustomDomain.objects.filter(edge_synced_version=1)
                 .values_list("hostname", flat=True))
    assert synced == {d.hostname for d in domains[:2]}
    assert set(table()) >= synced

    monkeypatch.setattr(edge_store, "_write_batch", real_write_batch)
    assert edge_sync.edge_backfill(window=2)["written"] == 6
    assert CustomDomain.objects.filter(edge_synced_version=1).count() == 6


# --- reconcile --------------------------------------------------------------------------------


def test_reconcile_of_an_empty_table_and_no_domains_reports_nothing(aws_stack: Any) -> None:
    assert edge_sync.edge_reconcile().counts() == {
        "scanned": 0, "checked": 0, "missing": 0, "stale": 0, "extra": 0, "repaired": 0}


def test_tombstones_are_not_drift(aws_stack: Any) -> None:
    """An inactive item, whether its record was removed or never existed here, is fine."""
    [removed] = routed(1, status=DomainStatus.REMOVED, version=2, prefix="gone")
    edge_store.put_item(EdgeItem(removed.hostname, "ws-gone", "inactive", 2))
    edge_store.put_item(EdgeItem("stranger.client.com", "other", "inactive", 4))
    report = edge_sync.edge_reconcile(repair=True)
    assert report.counts() == {
        "scanned": 2, "checked": 0, "missing": 0, "stale": 0, "extra": 0, "repaired": 0}
    assert table()["stranger.client.com"].version == 4  # left alone


def test_same_routing_at_an_older_version_only_moves_the_bookkeeping(aws_stack: Any) -> None:
    [domain] = routed(1, version=3)
    edge_store.put_item(EdgeItem.from_plain({**selectors.edge_item_for(domain), "version": 2}))
    report = edge_sync.edge_reconcile(repair=True)
    assert report.counts()["repaired"] == 0
    assert (report.missing, report.stale, report.extra) == ([], [], [])
    domain.refresh_from_db()
    assert domain.edge_synced_version == 2  # what the table is known to hold
    assert table()[domain.hostname].version == 2  # nothing rewritten


def test_a_removed_record_still_routed_at_the_edge_is_extra(aws_stack: Any) -> None:
    [domain] = routed(1, status=DomainStatus.REMOVED, version=2, prefix="late")
    edge_store.put_item(EdgeItem(domain.hostname, "ws-late", "active", 1))
    report = edge_sync.edge_reconcile(repair=True)
    assert report.extra == [domain.hostname] and report.repaired == 1
    item = table()[domain.hostname]
    assert (item.status, item.version) == ("inactive", 2)


def test_samples_stop_at_the_limit_while_the_counts_go_on() -> None:
    report = edge_sync.ReconcileReport(sample_limit=2)
    for i in range(5):
        report.note("missing", f"lost{i}.client.com")
    report.note("stale", "old.client.com")
    assert report.missing == ["lost0.client.com", "lost1.client.com"]
    assert (report.counts()["missing"], report.counts()["stale"]) == (5, 1)


def test_reconcile_reads_the_table_a_page_at_a_time(aws_stack: Any) -> None:
    routed(5, prefix="paged")
    pages: list[int] = []
    report = edge_sync.edge_reconcile(repair=True, page=2, progress=pages.append)
    assert pages == []  # the table was empty: no page to read
    assert report.counts()["missing"] == 5 and report.repaired == 5
    report = edge_sync.edge_reconcile(repair=False, page=2, progress=pages.append)
    assert pages == [2, 2, 1]
    assert report.counts() == {
        "scanned": 5, "checked": 5, "missing": 0, "stale": 0, "extra": 0, "repaired": 0}
