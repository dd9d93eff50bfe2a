"""The edge projection: the DynamoDB table the Lambda@Edge function routes by, kept equal
to Django.

Django is the truth; each record carries `edge_version` (bumped by every routing change)
and `edge_synced_version` (what the table is known to hold). `edge_sync_hostname` pushes one
hostname with a conditional write (a higher version always wins), `edge_sync_pending`
catches pushes whose task was lost, `edge_backfill` bulk-loads a fresh table, and
`edge_reconcile` diffs the table against Django and repairs it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.db.models import F, Q
from django.utils import timezone

from domains import selectors
from domains.integrations import edge_store
from domains.integrations.edge_store import EdgeItem
from domains.models import CustomDomain, DomainStatus


def edge_sync_hostname(*, hostname: str) -> str:
    """Make the edge item for `hostname` reflect Django now (whatever the caller saw)."""
    truth = selectors.edge_truth_for_hostname(hostname)
    if truth is None:
        return "unknown"
    item = EdgeItem.from_plain(selectors.edge_item_for(truth))
    if item.status != "active" and truth.edge_version == 0:
        return "nothing_to_sync"  # never routed, never tombstoned: the edge has no item
    if edge_store.put_item(item):
        _mark_synced(truth, item.version)
        return "written"
    current = edge_store.get_item(hostname)
    if item.same_routing(current):
        _mark_synced(truth, item.version)
        return "already_current"
    assert current is not None
    if current.version >= item.version:
        # The table holds a higher version than Django knows (a repair wrote it, or an
        # older record's tombstone): move Django's version past it and write again.
        new_version = current.version + 1
        CustomDomain.objects.filter(pk=truth.pk, edge_version__lt=new_version).update(
            edge_version=new_version)
        return edge_sync_hostname(hostname=hostname)
    return "refused"


def _mark_synced(truth: CustomDomain, version: int) -> None:
    """Record that the edge holds `version`; older records of the hostname are superseded.

    Without the second update, a removed record whose hostname moved to another workspace
    would wait forever for a tombstone of its own that the edge no longer needs.
    """
    CustomDomain.objects.filter(pk=truth.pk, edge_synced_version__lt=version).update(
        edge_synced_version=version)
    CustomDomain.objects.filter(
        hostname=truth.hostname, edge_version__lte=version,
        edge_synced_version__lt=F("edge_version"),
    ).exclude(pk=truth.pk).update(edge_synced_version=F("edge_version"))


def edge_sync_pending(*, limit: int = 1000) -> int:
    """Sync every record whose edge version is ahead of what was pushed (lost tasks)."""
    hostnames = list(
        CustomDomain.objects.filter(edge_synced_version__lt=F("edge_version"))
        .order_by("updated_at").values_list("hostname", flat=True).distinct()[:limit]
    )
    for hostname in hostnames:
        edge_sync_hostname(hostname=hostname)
    return len(hostnames)


def _routed_truths(chunk_size: int = 2000) -> Iterator[CustomDomain]:
    return (
        CustomDomain.objects.select_related("workspace", "redirect_to")
        .filter(status__in=[DomainStatus.ACTIVE, DomainStatus.MISCONFIGURED])
        .order_by("pk")
        .iterator(chunk_size=chunk_size)
    )


def edge_backfill(*, dry_run: bool = False, window: int = 2000,
                  progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Push every active mapping with BatchWriteItem, then re-sync what changed meanwhile.

    BatchWriteItem cannot be conditional, so a record that changed while its batch was in
    flight is pushed again with the conditional single write, which always wins.
    """
    counts = {"active": 0, "written": 0, "resynced": 0}
    buffer: list[CustomDomain] = []

    def flush() -> None:
        items = [EdgeItem.from_plain(selectors.edge_item_for(d)) for d in buffer]
        counts["active"] += len(items)
        if not dry_run:
            counts["written"] += edge_store.batch_put(items)
            by_version: dict[int, list[int]] = defaultdict(list)
            for d in buffer:
                by_version[d.edge_version].append(d.pk)
            for version, ids in by_version.items():
                CustomDomain.objects.filter(pk__in=ids, edge_version=version,
                                            edge_synced_version__lt=version).update(
                    edge_synced_version=version)
            changed = CustomDomain.objects.filter(pk__in=[d.pk for d in buffer]).exclude(
                Q(edge_version__in=list(by_version)))
            for hostname in changed.values_list("hostname", flat=True):
                edge_sync_hostname(hostname=hostname)
                counts["resynced"] += 1
        if progress:
            progress(len(buffer))
        buffer.clear()

    for domain in _routed_truths():
        buffer.append(domain)
        if len(buffer) >= window:
            flush()
    if buffer:
        flush()
    return counts


@dataclass
class ReconcileReport:
    scanned: int = 0
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    repaired: int = 0
    sample_limit: int = 100

    def note(self, kind: str, hostname: str) -> None:
        bucket: list[str] = getattr(self, kind)
        self._counts[kind] = self._counts.get(kind, 0) + 1
        if len(bucket) < self.sample_limit:
            bucket.append(hostname)

    def __post_init__(self) -> None:
        self._counts: dict[str, int] = {}

    def counts(self) -> dict[str, int]:
        return {
            "scanned": self.scanned, "checked": self.checked,
            "missing": self._counts.get("missing", 0), "stale": self._counts.get("stale", 0),
            "extra": self._counts.get("extra", 0), "repaired": self.repaired,
        }


def edge_reconcile(*, repair: bool = True, page: int = 1000,
                   progress: Callable[[int], None] | None = None) -> ReconcileReport:
    """Diff Django against the table and (unless told not to) repair the differences.

    Memory stays bounded: the table is read a page at a time and each page is compared with
    one Django query; Django's routed records are then checked against the table in chunks.
    """
    report = ReconcileReport()

    # 1. Items in the table: extra (routed at the edge, not in Django) and stale ones.
    batch: list[EdgeItem] = []
    for item in edge_store.scan():
        batch.append(item)
        if len(batch) >= page:
            _reconcile_page(batch, report, repair=repair)
            batch = []
            if progress:
                progress(page)
    if batch:
        _reconcile_page(batch, report, repair=repair)
        if progress:
            progress(len(batch))

    # 2. Routed records missing from the table.
    chunk: list[CustomDomain] = []
    for domain in _routed_truths():
        chunk.append(domain)
        if len(chunk) >= 100:
            _reconcile_missing(chunk, report, repair=repair)
            chunk = []
    if chunk:
        _reconcile_missing(chunk, report, repair=repair)
    return report


def _reconcile_page(items: list[EdgeItem], report: ReconcileReport, *, repair: bool) -> None:
    report.scanned += len(items)
    truths: dict[str, CustomDomain] = {}
    for d in (CustomDomain.objects.select_related("workspace", "redirect_to")
              .filter(hostname__in=[i.domain for i in items])):
        # The edge follows the live record, else the newest one (see edge_truth_for_hostname).
        best = truths.get(d.hostname)
        if best is None or _truth_rank(d) > _truth_rank(best):
            truths[d.hostname] = d
    for item in items:
        truth = truths.get(item.domain)
        if truth is None:
            if item.status == "active":
                report.note("extra", item.domain)
                if repair:
                    edge_store.put_item(EdgeItem(
                        item.domain, item.workspace_id, "inactive", item.version + 1,
                        updated_at=edge_store.item_timestamp(timezone.now())))
                    report.repaired += 1
            continue
        expected = EdgeItem.from_plain(selectors.edge_item_for(truth))
        if expected.same_routing(item) and item.version >= expected.version:
            continue
        if expected.same_routing(item):
            # Same routing, older version: only the bookkeeping is behind.
            _mark_synced(truth, item.version)
            continue
        report.note("extra" if item.status == "active" and expected.status != "active"
                    else "stale", item.domain)
        if repair:
            edge_sync_hostname(hostname=item.domain)
            report.repaired += 1


def _truth_rank(domain: CustomDomain) -> tuple[int, int, int]:
    return (int(domain.status != DomainStatus.REMOVED), domain.edge_version, domain.pk)


def _reconcile_missing(domains: list[CustomDomain], report: ReconcileReport, *,
                       repair: bool) -> None:
    report.checked += len(domains)
    found = edge_store.existing_domains([d.hostname for d in domains])
    for domain in domains:
        if domain.hostname not in found:
            report.note("missing", domain.hostname)
            if repair:
                edge_sync_hostname(hostname=domain.hostname)
                report.repaired += 1
