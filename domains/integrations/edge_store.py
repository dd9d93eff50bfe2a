"""The DynamoDB table the edge reads: `domain-workspace-mappings`, key `domain` (S).

Single writes are conditional on `version`, so a late, older write never overwrites a newer
one. Bulk writes use BatchWriteItem (25 items a request, unprocessed items retried), which
cannot be conditional; callers re-sync anything that changed while a batch ran.
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from domains.integrations import aws
from domains.integrations.backoff import backoff_seconds
from domains.integrations.errors import IntegrationError

BATCH_SIZE = 25
MAX_BATCH_ROUNDS = 8
# Between rounds of a throttled BatchWriteItem: 50 ms doubling (at most 6.4 s by round 8).
BATCH_RETRY_BASE_SECONDS = 0.05
BATCH_RETRY_MAX_SECONDS = 10.0
# A Scan or BatchGetItem page that timed out or was throttled (after botocore's own four
# attempts) is read again this many times, 0.5 s doubling up to 10 s, before a backfill or
# reconcile gives up: one slow page must not cost a pass over 100,000 items.
PAGE_ATTEMPTS = 6
PAGE_RETRY_BASE_SECONDS = 0.5
PAGE_RETRY_MAX_SECONDS = 10.0


@dataclass(frozen=True)
class RetryDelays:
    """The backoff between our own retries (botocore's come first, inside each attempt)."""

    batch_base: float = BATCH_RETRY_BASE_SECONDS
    batch_cap: float = BATCH_RETRY_MAX_SECONDS
    page_base: float = PAGE_RETRY_BASE_SECONDS
    page_cap: float = PAGE_RETRY_MAX_SECONDS


# Read at every pause, so a test that is about what is retried, not how long the pause is,
# can replace it (`monkeypatch.setattr(edge_store, "RETRY_DELAYS", RetryDelays(0, 0, 0, 0))`).
RETRY_DELAYS = RetryDelays()

T = TypeVar("T")
log = logging.getLogger(__name__)


def item_timestamp(value: datetime | None) -> str:
    """A time as the table has always held it: UTC, whole seconds, `Z` (`2025-03-13T12:00:00Z`).

    The seed's functions wrote this form and readers other than our edge parse it, so the
    projection keeps it rather than Python's `+00:00` with microseconds.
    """
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class EdgeItem:
    domain: str
    workspace_id: str
    status: str  # "active" | "inactive"
    version: int
    created_at: str = ""
    verified_at: str = ""
    updated_at: str = ""
    # A redirect domain's target hostname and code (docs/redirects.md); empty / 0 otherwise.
    # Additive: a plain item keeps exactly the seed's attributes.
    redirect_to: str = ""
    redirect_code: int = 0

    def to_dynamo(self) -> dict[str, dict[str, str]]:
        item = {
            "domain": {"S": self.domain},
            "workspaceId": {"S": self.workspace_id},
            "status": {"S": self.status},
            "version": {"N": str(self.version)},
        }
        for key, value in (("createdAt", self.created_at), ("verifiedAt", self.verified_at),
                           ("updatedAt", self.updated_at)):
            if value:
                item[key] = {"S": value}
        if self.redirect_to:
            item["redirectTo"] = {"S": self.redirect_to}
            item["redirectCode"] = {"N": str(self.redirect_code)}
        return item

    @classmethod
    def from_dynamo(cls, raw: dict[str, dict[str, str]]) -> EdgeItem:
        return cls(
            domain=raw["domain"]["S"],
            workspace_id=raw.get("workspaceId", {}).get("S", ""),
            status=raw.get("status", {}).get("S", ""),
            version=int(raw.get("version", {}).get("N", "0")),
            created_at=raw.get("createdAt", {}).get("S", ""),
            verified_at=raw.get("verifiedAt", {}).get("S", ""),
            updated_at=raw.get("updatedAt", {}).get("S", ""),
            redirect_to=raw.get("redirectTo", {}).get("S", ""),
            redirect_code=int(raw.get("redirectCode", {}).get("N", "0")),
        )

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> EdgeItem:
        return cls(
            domain=data["domain"],
            workspace_id=data["workspaceId"],
            status=data["status"],
            version=int(data["version"]),
            created_at=data.get("createdAt", ""),
            verified_at=data.get("verifiedAt", ""),
            updated_at=data.get("updatedAt", ""),
            redirect_to=data.get("redirectTo", ""),
            redirect_code=int(data.get("redirectCode", 0)),
        )

    def same_routing(self, other: EdgeItem | None) -> bool:
        return (
            other is not None
            and other.status == self.status
            and (self.status != "active" or (
                other.workspace_id == self.workspace_id
                and (other.redirect_to, other.redirect_code)
                == (self.redirect_to, self.redirect_code)))
        )


def _ddb() -> Any:
    return aws.client("dynamodb")


def table_name() -> str:
    return settings.VEDOMAINS_EDGE_TABLE


def put_item(item: EdgeItem) -> bool:
    """Write if newer than what the table holds. False: a newer (or equal) version is stored."""
    try:
        _ddb().put_item(
            TableName=table_name(),
            Item=item.to_dynamo(),
            ConditionExpression="attribute_not_exists(#d) OR #v < :v",
            ExpressionAttributeNames={"#d": "domain", "#v": "version"},
            ExpressionAttributeValues={":v": {"N": str(item.version)}},
        )
    except ClientError as exc:
        if aws.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise aws.classify(exc, "dynamodb.PutItem") from exc
    except BotoCoreError as exc:
        raise aws.classify(exc, "dynamodb.PutItem") from exc
    return True


def get_item(domain: str) -> EdgeItem | None:
    try:
        resp = _ddb().get_item(TableName=table_name(), Key={"domain": {"S": domain}},
                               ConsistentRead=True)
    except (ClientError, BotoCoreError) as exc:
        raise aws.classify(exc, "dynamodb.GetItem") from exc
    raw = resp.get("Item")
    return EdgeItem.from_dynamo(raw) if raw else None


def existing_domains(domains: list[str]) -> set[str]:
    """Which of `domains` have an item (BatchGetItem, 100 keys a request)."""
    name = table_name()
    keys: list[dict[str, Any]] = [{"domain": {"S": d}} for d in domains]
    found: set[str] = set()
    unprocessed_rounds = 0
    while keys:
        request, keys = keys[:100], keys[100:]
        params = {name: {"Keys": request, "ProjectionExpression": "#d",
                         "ExpressionAttributeNames": {"#d": "domain"}}}

        def batch_get(params: dict[str, Any] = params) -> Any:
            return _ddb().batch_get_item(RequestItems=params)

        resp = with_retries("dynamodb.BatchGetItem", batch_get)
        found.update(raw["domain"]["S"] for raw in resp.get("Responses", {}).get(name, []))
        unprocessed = resp.get("UnprocessedKeys", {}).get(name, {}).get("Keys", [])
        if unprocessed:
            # Unprocessed keys mean the table is throttling us: back off before asking again.
            unprocessed_rounds += 1
            if unprocessed_rounds >= MAX_BATCH_ROUNDS:
                raise IntegrationError(
                    f"{len(unprocessed)} keys stayed unprocessed after retries",
                    permanent=False, code="UnprocessedKeys")
            _pause(unprocessed_rounds - 1)
            keys += unprocessed
    return found


def _chunks(items: Iterable[EdgeItem]) -> list[list[EdgeItem]]:
    chunks: list[list[EdgeItem]] = []
    chunk: list[EdgeItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == BATCH_SIZE:
            chunks.append(chunk)
            chunk = []
    if chunk:
        chunks.append(chunk)
    return chunks


def batch_put(items: Iterable[EdgeItem], *, workers: int = 8) -> int:
    """Write items 25 to a request, `workers` requests at a time; returns the count written."""
    chunks = _chunks(items)
    if not chunks:
        return 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return sum(pool.map(_write_batch, chunks))


def start_batch_put(items: Iterable[EdgeItem], pool: Executor) -> list[Future[int]]:
    """Queue the items' BatchWriteItem requests (25 items each) on `pool` and return at once.

    The caller overlaps its own work (reading the next window from Django) with the writes
    and collects the counts from the futures; the pool's size is the requests in flight.
    """
    return [pool.submit(_write_batch, chunk) for chunk in _chunks(items)]


def _pause(attempt: int, *, page: bool = False) -> None:
    # Full jitter, so the parallel writers or scan segments that failed together do not
    # retry together.
    delays = RETRY_DELAYS
    base, cap = ((delays.page_base, delays.page_cap) if page
                 else (delays.batch_base, delays.batch_cap))
    time.sleep(backoff_seconds(attempt, base=base, cap=cap))


def with_retries(action: str, call: Callable[[], T], *, attempts: int = PAGE_ATTEMPTS) -> T:
    """`call()`, retried with backoff on transient errors (timeouts, throttling, 5xx).

    A permanent error (a missing table, a bad request, denied access) is raised at once;
    a transient one after `attempts` tries, as the IntegrationError `aws.classify` makes.
    """
    for attempt in range(attempts):
        try:
            return call()
        except (ClientError, BotoCoreError) as exc:
            err = aws.classify(exc, action)
            if err.permanent or attempt == attempts - 1:
                raise err from exc
            log.warning("%s failed (%s); retry %d of %d", action, err, attempt + 1,
                        attempts - 1)
            _pause(attempt, page=True)
    raise AssertionError("unreachable")


def _write_batch(items: list[EdgeItem]) -> int:
    requests: list[dict[str, Any]] = [{"PutRequest": {"Item": i.to_dynamo()}} for i in items]
    name = table_name()
    for attempt in range(MAX_BATCH_ROUNDS):
        try:
            resp = _ddb().batch_write_item(RequestItems={name: requests})
        except (ClientError, BotoCoreError) as exc:
            err = aws.classify(exc, "dynamodb.BatchWriteItem")
            if err.permanent or attempt == MAX_BATCH_ROUNDS - 1:
                raise err from exc
            _pause(attempt)
            continue
        requests = resp.get("UnprocessedItems", {}).get(name, [])
        if not requests:
            return len(items)
        # Unprocessed items mean the table is throttling us: back off before resending.
        _pause(attempt)
    raise IntegrationError(f"{len(requests)} items stayed unprocessed after retries",
                           permanent=False, code="UnprocessedItems")


def scan(*, segments: int = 4, page_size: int = 1000) -> Iterator[EdgeItem]:
    """Every item, read by `segments` parallel scan workers, yielded page by page."""
    segments = max(1, segments)

    def read_segment(segment: int, start: dict[str, Any] | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "TableName": table_name(),
            "Segment": segment,
            "TotalSegments": segments,
            "Limit": page_size,
            "ProjectionExpression": "#d, workspaceId, #s, #v, redirectTo, redirectCode",
            "ExpressionAttributeNames": {"#d": "domain", "#s": "status", "#v": "version"},
        }
        if start:
            params["ExclusiveStartKey"] = start
        # The same page (same ExclusiveStartKey) is read again: a timeout costs one page.
        return dict(with_retries("dynamodb.Scan", lambda: _ddb().scan(**params)))

    # Each round fetches the next page of every unfinished segment in parallel, so memory
    # holds at most `segments` pages at a time however large the table is.
    cursors: dict[int, dict[str, Any] | None] = dict.fromkeys(range(segments))
    with ThreadPoolExecutor(max_workers=segments) as pool:
        while cursors:
            futures = {seg: pool.submit(read_segment, seg, start) for seg, start in cursors.items()}
            for seg, future in futures.items():
                page = future.result()
                for raw in page.get("Items", []):
                    yield EdgeItem.from_dynamo(raw)
                last = page.get("LastEvaluatedKey")
                if last:
                    cursors[seg] = last
                else:
                    cursors.pop(seg)


def create_table(*, name: str | None = None, wait: bool = True) -> bool:
    """Create the table as deploy/ defines it (on demand, key `domain`). False if it exists."""
    name = name or table_name()
    try:
        _ddb().create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "domain", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "domain", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            SSESpecification={"Enabled": True},
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
    except ClientError as exc:
        if aws.error_code(exc) == "ResourceInUseException":
            return False
        raise aws.classify(exc, "dynamodb.CreateTable") from exc
    except BotoCoreError as exc:
        raise aws.classify(exc, "dynamodb.CreateTable") from exc
    if wait:
        _ddb().get_waiter("table_exists").wait(TableName=name,
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return True
