"""The edge function against moto's DynamoDB (server mode), with recorded CloudFront events."""

from __future__ import annotations

import json
import socket
import sys
import time
import tracemalloc
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from edge_lambda import handler as edge
from edge_lambda.build import replica_map
from edge_lambda.tests.conftest import (
    ConfigureEdge,
    FakeClock,
    LookupCounter,
    MappingTable,
    load_event,
    request_of,
    with_event_type,
)

pytestmark = pytest.mark.integration

HOST = "gallery.client.com"
SPOOF = "evil-workspace"


def header(request: dict[str, Any], name: str) -> str | None:
    values = request["headers"].get(name)
    return values[0]["value"] if values else None


def assert_routed(result: dict[str, Any], workspace: str) -> None:
    assert "status" not in result, result
    assert result["headers"]["workspace-id"] == [{"key": "workspace-id", "value": workspace}]


def assert_generated(result: dict[str, Any], status: str) -> None:
    assert result["status"] == status, result
    assert "workspace-id" not in result["headers"]
    assert result["bodyEncoding"] == "text" and result["body"]
    assert result["headers"]["content-type"][0] == {
        "key": "Content-Type",
        "value": "text/plain; charset=utf-8",
    }


# --------------------------------------------------------------------------- routing


def test_miss_then_hit(edge_fn: ModuleType, table: MappingTable, lookups: LookupCounter) -> None:
    table.put(HOST, "acme")

    first = edge_fn.handler(load_event("origin-request-custom", HOST), None)
    second = edge_fn.handler(load_event("origin-request-custom", HOST), None)

    assert_routed(first, "acme")
    assert_routed(second, "acme")
    assert lookups.calls == [HOST]  # the second request was a cache hit
    # By default the origin is asked for its own name (the one its TLS certificate holds),
    # with the viewer's host beside it; rewrite_origin is off.
    assert header(second, "host") == "origin.ve.ai"
    assert header(second, "x-forwarded-host") == HOST
    assert second["origin"]["custom"]["domainName"] == "origin.ve.ai"


def test_client_has_short_timeouts_and_few_attempts(
    edge_fn: ModuleType, table: MappingTable
) -> None:
    edge_fn.handler(load_event("origin-request-custom", HOST))
    config = edge_fn._client.meta.config
    assert config.connect_timeout == 0.3 and config.read_timeout == 0.5
    assert config.retries == {"total_max_attempts": 2, "mode": "standard"}
    client = edge_fn._client
    edge_fn.handler(load_event("origin-request-custom", "other.client.com"))
    assert edge_fn._client is client  # built once per container


def test_unnormalized_host_hits_the_same_entry(
    edge_fn: ModuleType, table: MappingTable, lookups: LookupCounter
) -> None:
    table.put(HOST, "acme")
    for raw in (HOST, "Gallery.Client.com", f"{HOST}:443", f"{HOST}."):
        assert_routed(edge_fn.handler(load_event("viewer-request", raw)), "acme")
    assert lookups.count == 1


def test_unicode_host_is_looked_up_as_punycode(
    edge_fn: ModuleType, table: MappingTable, lookups: LookupCounter
) -> None:
    table.put("xn--bcher-kva.de", "books")
    assert_routed(edge_fn.handler(load_event("viewer-request", "Bücher.de")), "books")
    assert lookups.calls == ["xn--bcher-kva.de"]


def test_unknown_host_gets_edge_404(
    edge_fn: ModuleType, table: MappingTable, lookups: LookupCounter
) -> None:
    result = edge_fn.handler(load_event("origin-request-custom", "nobody.example.com"))
    assert_generated(result, "404")
    assert result["statusDescription"] == "Not Found"
    assert result["headers"]["cache-control"][0]["value"] == "public, max-age=30"
    assert lookups.count == 1


def test_inactive_tombstone_gets_404(edge_fn: ModuleType, table: MappingTable) -> None:
    table.put(HOST, "acme", status="inactive", version=7)
    assert_generated(edge_fn.handler(load_event("origin-request-custom", HOST)), "404")


def test_item_with_unsafe_workspace_id_is_refused(edge_fn: ModuleType, table: MappingTable) -> None:
    table.put(HOST, "Acme/../x")
    assert_generated(edge_fn.handler(load_event("origin-request-custom", HOST)), "404")
    assert edge_fn._metrics.invalid_item == 1


@pytest.mark.parametrize("raw", ["", "127.0.0.1", "[::1]:443", "a..b", "x" * 300, "ß.de"])
def test_garbage_host_gets_404_without_lookup(
    edge_fn: ModuleType, lookups: LookupCounter, raw: str
) -> None:
    assert_generated(edge_fn.handler(load_event("viewer-request", raw)), "404")
    assert lookups.count == 0


def test_missing_host_header_gets_404(edge_fn: ModuleType) -> None:
    event = load_event("viewer-request")
    del request_of(event)["headers"]["host"]
    assert_generated(edge_fn.handler(event), "404")


@pytest.mark.parametrize(
    ("host", "workspace"),
    [
        ("acme.ve.ai", "acme"),
        ("ACME.ve.ai:443", "acme"),
        ("ve.ai", None),
        ("www.ve.ai", None),
        ("domain.ve.ai", None),
        ("origin.ve.ai", None),
        ("a.b.ve.ai", None),
    ],
)
def test_platform_subdomain_needs_no_dynamodb(
    configure_edge: ConfigureEdge,
    monkeypatch: pytest.MonkeyPatch,
    closed_port_endpoint: str,
    lookups: LookupCounter,
    host: str,
    workspace: str | None,
) -> None:
    # With DynamoDB unreachable, any lookup would turn into a 503: these must not look up.
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port_endpoint)
    fn = configure_edge(max_attempts=1)
    result = fn.handler(load_event("origin-request-custom", host))
    if workspace is None:
        assert_generated(result, "404")
    else:
        assert_routed(result, workspace)
    assert lookups.count == 0
    assert fn._client is None  # the boto3 client was never even built


def test_nearest_replica_region_is_read(
    configure_edge: ConfigureEdge, aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The function runs in London; with replicas only in Virginia and Ireland it must read
    # Ireland, the only region holding the table in this test.
    replica = MappingTable(region="eu-west-1")
    replica.put(HOST, "acme")
    monkeypatch.setenv("AWS_REGION", "eu-west-2")
    fn = configure_edge(replica_regions=replica_map(["us-east-1", "eu-west-1"]))
    assert_routed(fn.handler(load_event("origin-request-custom", HOST)), "acme")
    assert fn._client.meta.region_name == "eu-west-1"


# --------------------------------------------------------------------------- modes


def test_rewrite_origin_points_custom_origin_at_workspace(
    configure_edge: ConfigureEdge, table: MappingTable
) -> None:
    table.put(HOST, "acme")
    fn = configure_edge(rewrite_origin=True, origin_domain="origin.ve.ai")
    result = fn.handler(load_event("origin-request-custom", HOST + ":443"))

    assert_routed(result, "acme")
    assert result["origin"]["custom"]["domainName"] == "acme.origin.ve.ai"
    assert result["headers"]["host"] == [{"key": "Host", "value": "acme.origin.ve.ai"}]
    assert result["headers"]["x-forwarded-host"] == [{"key": "X-Forwarded-Host", "value": HOST}]
    # Everything else about the origin is CloudFront's and stays as it was.
    assert result["origin"]["custom"]["port"] == 443
    assert result["origin"]["custom"]["protocol"] == "https"


def test_rewrite_origin_also_applies_on_cache_hits_and_platform_hosts(
    configure_edge: ConfigureEdge, table: MappingTable
) -> None:
    table.put(HOST, "acme")
    fn = configure_edge(rewrite_origin=True)
    fn.handler(load_event("origin-request-custom", HOST))
    hit = fn.handler(load_event("origin-request-custom", HOST))
    platform = fn.handler(load_event("origin-request-custom", "beta.ve.ai"))
    assert hit["origin"]["custom"]["domainName"] == "acme.origin.ve.ai"
    assert platform["origin"]["custom"]["domainName"] == "beta.origin.ve.ai"
    assert header(platform, "x-forwarded-host") == "beta.ve.ai"


def test_rewrite_origin_leaves_s3_origin_alone(
    configure_edge: ConfigureEdge, table: MappingTable
) -> None:
    table.put(HOST, "acme")
    fn = configure_edge(rewrite_origin=True)
    event = load_event("origin-request-s3", HOST)
    before = json.loads(json.dumps(request_of(event)["origin"]))
    result = fn.handler(event)
    assert_routed(result, "acme")
    assert result["origin"] == before
    assert header(result, "host") == HOST


def test_viewer_request_mode(configure_edge: ConfigureEdge, table: MappingTable) -> None:
    table.put(HOST, "acme")
    fn = configure_edge(mode="viewer-request")
    result = fn.handler(load_event("viewer-request", HOST))
    assert_routed(result, "acme")
    # Host is read-only in viewer-request events; it must come back untouched.
    assert result["headers"]["host"] == [{"key": "Host", "value": HOST}]
    assert "origin" not in result


def test_response_trigger_is_refused(edge_fn: ModuleType) -> None:
    event = with_event_type(load_event("viewer-request", HOST), "origin-response")
    with pytest.raises(ValueError, match="origin-response"):
        edge_fn.handler(event)


# --------------------------------------------------------------------------- spoofing


@pytest.fixture
def dynamodb_down(monkeypatch: pytest.MonkeyPatch, closed_port_endpoint: str) -> Callable[[], None]:
    """Make every later lookup fail: drop the client and point boto3 at a closed port."""

    def down() -> None:
        monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port_endpoint)
        monkeypatch.setattr(edge, "_client", None)

    return down


@pytest.mark.parametrize(
    "path", ["miss", "hit", "platform", "unknown", "inactive", "garbage", "stale", "down"]
)
def test_spoofed_workspace_header_is_removed_on_every_path(
    configure_edge: ConfigureEdge,
    table: MappingTable,
    clock: FakeClock,
    dynamodb_down: Callable[[], None],
    path: str,
) -> None:
    fn = configure_edge(max_attempts=1, rewrite_origin=path == "hit")
    table.put(HOST, "acme")
    table.put("old.client.com", "acme", status="inactive")
    host = {
        "platform": "acme.ve.ai",
        "unknown": "nobody.example.com",
        "inactive": "old.client.com",
        "garbage": "[::1]",
        "down": "other.client.com",
    }.get(path, HOST)
    if path in ("hit", "stale"):
        fn.handler(load_event("origin-request-custom", HOST))
    if path == "stale":
        clock.advance(301)
    if path in ("stale", "down"):
        dynamodb_down()

    event = load_event(
        "origin-request-custom", host, workspace_id=SPOOF, x_forwarded_host="evil.example"
    )
    result = fn.handler(event)

    request = request_of(event)  # the request object CloudFront gave us, as left behind
    assert header(request, "workspace-id") in (None, "acme")
    assert header(request, "x-forwarded-host") in (None, host)  # ours, never the viewer's
    if path in ("miss", "hit", "platform", "stale"):
        assert_routed(result, "acme")
    else:
        assert_generated(result, "503" if path == "down" else "404")


def test_spoofed_header_in_any_case_is_removed(edge_fn: ModuleType) -> None:
    # CloudFront lowercases header keys; the original spelling lives in "key".
    event = load_event("viewer-request", "acme.ve.ai")
    request_of(event)["headers"]["workspace-id"] = [
        {"key": "WORKSPACE-ID", "value": SPOOF},
        {"key": "Workspace-Id", "value": SPOOF},
    ]
    result = edge_fn.handler(event)
    assert result["headers"]["workspace-id"] == [{"key": "workspace-id", "value": "acme"}]


# --------------------------------------------------------------------------- failures


def test_dynamodb_down_without_stale_entry_gets_503(
    configure_edge: ConfigureEdge, dynamodb_down: Callable[[], None]
) -> None:
    fn = configure_edge(max_attempts=1)
    dynamodb_down()
    result = fn.handler(load_event("origin-request-custom", HOST))
    assert_generated(result, "503")
    assert result["headers"]["retry-after"] == [{"key": "Retry-After", "value": "5"}]
    assert result["headers"]["cache-control"][0]["value"] == "no-store"
    assert fn._metrics.error == 1 and fn._metrics.unavailable == 1


def test_dynamodb_down_serves_stale_entry_and_backs_off(
    configure_edge: ConfigureEdge,
    table: MappingTable,
    clock: FakeClock,
    dynamodb_down: Callable[[], None],
    lookups: LookupCounter,
) -> None:
    fn = configure_edge(max_attempts=1, metrics_flush_seconds=3600)
    table.put(HOST, "acme")
    fn.handler(load_event("origin-request-custom", HOST))
    clock.advance(10 * 60)  # long expired
    dynamodb_down()

    stale = fn.handler(load_event("origin-request-custom", HOST))
    again = fn.handler(load_event("origin-request-custom", HOST))  # within error_retry_seconds
    clock.advance(6)
    retried = fn.handler(load_event("origin-request-custom", HOST))

    for result in (stale, again, retried):
        assert_routed(result, "acme")
    assert lookups.count == 3  # first miss, the failed refresh, the retry after 5 s
    assert fn._metrics.stale == 2 and fn._metrics.error == 2


def test_stale_negative_entry_stays_404_when_dynamodb_is_down(
    configure_edge: ConfigureEdge,
    table: MappingTable,
    clock: FakeClock,
    dynamodb_down: Callable[[], None],
) -> None:
    fn = configure_edge(max_attempts=1)
    fn.handler(load_event("origin-request-custom", "nobody.example.com"))
    clock.advance(31)
    dynamodb_down()
    assert_generated(fn.handler(load_event("origin-request-custom", "nobody.example.com")), "404")


def test_slow_dynamodb_times_out_quickly(
    configure_edge: ConfigureEdge, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A listener that never answers: the connect succeeds, the read must time out.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        fn = configure_edge(max_attempts=1, connect_timeout=0.2, read_timeout=0.2)
        started = time.monotonic()
        result = fn.handler(load_event("origin-request-custom", HOST))
        elapsed = time.monotonic() - started
    assert_generated(result, "503")
    assert elapsed < 2.0  # botocore defaults would wait 60 s


# --------------------------------------------------------------------------- cache


def test_positive_entry_expires_after_ttl(
    edge_fn: ModuleType, table: MappingTable, clock: FakeClock, lookups: LookupCounter
) -> None:
    table.put(HOST, "acme")
    assert_routed(edge_fn.handler(load_event("origin-request-custom", HOST)), "acme")
    table.put(HOST, "globex", version=2)  # moved to another workspace

    clock.advance(299)
    assert_routed(edge_fn.handler(load_event("origin-request-custom", HOST)), "acme")
    clock.advance(2)
    assert_routed(edge_fn.handler(load_event("origin-request-custom", HOST)), "globex")
    assert lookups.count == 2


def test_negative_entry_is_cached_briefly(
    edge_fn: ModuleType, table: MappingTable, clock: FakeClock, lookups: LookupCounter
) -> None:
    assert_generated(edge_fn.handler(load_event("origin-request-custom", HOST)), "404")
    table.put(HOST, "acme")  # the domain becomes active

    clock.advance(29)
    assert_generated(edge_fn.handler(load_event("origin-request-custom", HOST)), "404")
    assert lookups.count == 1
    clock.advance(2)
    assert_routed(edge_fn.handler(load_event("origin-request-custom", HOST)), "acme")
    assert lookups.count == 2


def test_tombstone_takes_effect_after_positive_ttl(
    edge_fn: ModuleType, table: MappingTable, clock: FakeClock
) -> None:
    table.put(HOST, "acme")
    edge_fn.handler(load_event("origin-request-custom", HOST))
    table.put(HOST, "acme", status="inactive", version=2)
    clock.advance(301)
    assert_generated(edge_fn.handler(load_event("origin-request-custom", HOST)), "404")


def test_cache_is_bounded_and_evicts_least_recently_used(
    configure_edge: ConfigureEdge, table: MappingTable, lookups: LookupCounter
) -> None:
    fn = configure_edge(max_cache_entries=3)
    hosts = [f"site{i}.client.com" for i in range(4)]
    for i, host in enumerate(hosts):
        table.put(host, f"ws{i}")
    for host in hosts[:3]:
        fn.handler(load_event("viewer-request", host))
    fn.handler(load_event("viewer-request", hosts[0]))  # site0 is now the most recent
    fn.handler(load_event("viewer-request", hosts[3]))  # evicts site1

    assert list(fn._cache) == [hosts[2], hosts[0], hosts[3]]
    fn.handler(load_event("viewer-request", hosts[1]))
    assert lookups.calls == [*hosts[:3], hosts[3], hosts[1]]
    assert len(fn._cache) == 3


def test_cache_of_100k_hosts_stays_small(edge_fn: ModuleType) -> None:
    # The whole function gets 128 MB at the edge; the Python runtime plus boto3 take about
    # 60-70 MB, so a full cache must stay far below the rest.
    workspaces = [f"workspace-{i}" for i in range(2_000)]
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        for i in range(100_000):
            host = f"gallery-{i:06d}.photographer-{i % 997}.example.com"
            ws = sys.intern(workspaces[i % 2_000]) if i % 10 else None
            edge_fn._store(host, ws, 1e9, 100_000)
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(edge_fn._cache) == 100_000
    assert (used - baseline) < 30 * 1024 * 1024, f"{(used - baseline) / 2**20:.1f} MiB"


# --------------------------------------------------------------------------- metrics


def test_metrics_are_one_emf_line_per_window(
    configure_edge: ConfigureEdge,
    table: MappingTable,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fn = configure_edge(metrics_flush_invocations=4)
    table.put(HOST, "acme")
    for host in (HOST, HOST, "acme.ve.ai"):
        fn.handler(load_event("origin-request-custom", host))
    assert capsys.readouterr().out == ""  # nothing is logged per request

    fn.handler(load_event("origin-request-custom", "nobody.example.com"))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])

    meta = doc["_aws"]
    assert isinstance(meta["Timestamp"], int)
    assert abs(meta["Timestamp"] - time.time() * 1000) < 60_000
    directive, seed = meta["CloudWatchMetrics"]
    assert directive["Namespace"] == "vedomains/Edge"
    # The seed's dashboards: CacheHit (and CacheMiss) in CustomDomain/Cache, no dimensions.
    assert seed == {
        "Namespace": "CustomDomain/Cache",
        "Dimensions": [[]],
        "Metrics": [{"Name": "CacheHit", "Unit": "Count"}, {"Name": "CacheMiss", "Unit": "Count"}],
    }
    assert directive["Dimensions"] == [["Region"]]
    names = [m["Name"] for m in directive["Metrics"]]
    for definition in directive["Metrics"]:
        assert definition["Unit"] in ("Count", "Milliseconds")
        assert definition["Name"] in doc  # EMF: every declared metric has a root value
    assert doc["Region"] == "us-east-1"
    assert {k: doc[k] for k in ("Requests", "CacheHit", "CacheMiss", "PlatformHost")} == {
        "Requests": 4,
        "CacheHit": 1,
        "CacheMiss": 2,
        "PlatformHost": 1,
    }
    assert doc["NotFound"] == 1 and doc["LookupError"] == 0 and doc["CacheSize"] == 2
    assert "LookupLatency" in names
    assert len(doc["LookupLatency"]) == 2 and all(v >= 0 for v in doc["LookupLatency"])

    fn.handler(load_event("origin-request-custom", HOST))
    assert capsys.readouterr().out == ""  # a new window has started


def test_metrics_flush_on_time_too(
    configure_edge: ConfigureEdge, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    fn = configure_edge(metrics_flush_seconds=60)
    fn.handler(load_event("viewer-request", "acme.ve.ai"))
    clock.advance(61)
    fn.handler(load_event("viewer-request", "acme.ve.ai"))
    (line,) = capsys.readouterr().out.splitlines()
    doc = json.loads(line)
    assert doc["Requests"] == 2 and doc["PlatformHost"] == 2
    assert "LookupLatency" not in doc  # no lookups: the metric is left out, not empty
    assert all(m["Name"] != "LookupLatency" for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"])
