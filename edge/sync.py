"""The edge projection: the DynamoDB table the Lambda@Edge function routes by, kept equal
to Django.

Django is the truth; each record carries `edge_version` (bumped by every routing change)
and `edge_synced_version` (what the table is known to hold). `edge_sync_hostname` pushes one
hostname with a conditional write (a higher version always wins), `edge_sync_pending`
catches pushes whose task was lost, `edge_backfill` bulk-loads a fresh table, and
`edge_reconcile` diffs the table against Django and repairs it.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from django.db.models import F
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


BACKFILL_REQUESTS_IN_FLIGHT = 16
BACKFILL_WINDOWS_IN_FLIGHT = 2


@dataclass
class _Window:
    domains: list[CustomDomain]
    writes: list[Future[int]]


def edge_backfill(*, dry_run: bool = False, window: int = 2000,
                  progress: Callable[[int], None] | None = None,
                  requests_in_flight: int = BACKFILL_REQUESTS_IN_FLIGHT) -> dict[str, int]:
    """Push every active mapping with BatchWriteItem, then re-sync what changed meanwhile.

    A pipeline, so a round trip to DynamoDB is never waited for alone: while a window's
    writes are in flight (25 items a request, `requests_in_flight` requests at a time on a
    thread pool) this thread reads and serializes the next window from Django, and only then
    collects the older window and marks it synced (one UPDATE per edge version in it). Only
    this thread touches the database; the pool only talks to DynamoDB.

    BatchWriteItem cannot be conditional, so a record that changed while its batch was in
    flight is pushed again with the conditional single write, which always wins.
    """
    counts = {"active": 0, "written": 0, "resynced": 0}
    in_flight: deque[_Window] = deque()

    def finish(done: _Window) -> None:
        # Wait for every request before raising the first failure, so no write is still
        # running when the error reaches the caller.
        wait(done.writes)
        counts["written"] += sum(future.result() for future in done.writes)
        if not dry_run:
            _mark_backfilled(done.domains, counts)
        if progress:
            progress(len(done.domains))

    with ThreadPoolExecutor(max_workers=max(1, requests_in_flight),
                            thread_name_prefix="edge-backfill") as pool:
        for domains in _windows(window):
            items = [EdgeItem.from_plain(selectors.edge_item_for(d)) for d in domains]
            counts["active"] += len(items)
            writes = [] if dry_run else edge_store.start_batch_put(items, pool)
            in_flight.append(_Window(domains, writes))
            if len(in_flight) >= BACKFILL_WINDOWS_IN_FLIGHT:
                finish(in_flight.popleft())
        while in_flight:
            finish(in_flight.popleft())
    return counts


def _windows(size: int) -> Iterator[list[CustomDomain]]:
    buffer: list[CustomDomain] = []
    for domain in _routed_truths():
        buffer.append(domain)
        if len(buffer) >= size:
            yield buffer
            buffer = []
    if buffer:
        yield buffer


def _mark_backfilled(domains: list[CustomDomain], counts: dict[str, int]) -> None:
    """Record what the window's writes put in the table: one UPDATE per edge version (a
    fresh fleet has one or two), then one read to find the rows whose version moved while
    their batch was in flight, which get the conditional single write."""
    by_version: dict[int, list[int]] = defaultdict(list)
    written = {d.pk: d.edge_version for d in domains}
    for pk, version in written.items():
        by_version[version].append(pk)
    for version, ids in by_version.items():
        CustomDomain.objects.filter(pk__in=ids, edge_version=version,
                                    edge_synced_version__lt=version).update(
            edge_synced_version=version)
    now = CustomDomain.objects.filter(pk__in=list(written)).values_list(
        "pk", "edge_version", "hostname")
    for hostname in sorted({h for pk, v, h in now if v != written[pk]}):
        edge_sync_hostname(hostname=hostname)
        counts["resynced"] += 1


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
