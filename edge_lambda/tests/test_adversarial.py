"""Attacks on the edge function, one test per attack, named for it.

The headers a viewer sends are checked the way an origin server reads them: through the
CGI/WSGI environ (HTTP_<NAME> with "-" and "_" both turned into "_", as wsgiref, gunicorn
and mod_wsgi do) and through the host-header overrides web frameworks honour.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from edge_lambda import handler as edge
from edge_lambda.headers import STRIPPED_HEADERS
from edge_lambda.tests.conftest import (
    ConfigureEdge,
    FakeClock,
    LookupCounter,
    MappingTable,
    load_event,
    request_of,
)

pytestmark = pytest.mark.integration

HOST = "gallery.client.com"
EVIL = "evil-workspace"


def wsgi_environ(result: dict[str, Any]) -> dict[str, str]:
    """The origin's view of the headers, as a WSGI server builds it (PEP 3333)."""
    environ: dict[str, str] = {}
    for name, values in result["headers"].items():
        key = "HTTP_" + name.upper().replace("-", "_")
        for value in values:  # repeated headers are joined, as servers do
            environ[key] = f"{environ[key]},{value['value']}" if key in environ else value["value"]
    return environ


def send(fn: ModuleType, headers: dict[str, str], host: str = HOST) -> dict[str, Any]:
    event = load_event("origin-request-custom", host)
    for name, value in headers.items():
        request_of(event)["headers"][name] = [{"key": name, "value": value}]
    return fn.handler(event)


def assert_only_ours(result: dict[str, Any], workspace: str = "acme") -> None:
    environ = wsgi_environ(result)
    assert environ["HTTP_WORKSPACE_ID"] == workspace
    assert environ.get("HTTP_X_FORWARDED_HOST") == HOST  # the edge's own, never the viewer's
    for key in (
        "HTTP_X_WORKSPACE_ID",
        "HTTP_WORKSPACEID",
        "HTTP_X_ORIGINAL_HOST",
        "HTTP_X_HOST",
        "HTTP_FORWARDED",
        "HTTP_X_FORWARDED_SERVER",
        "HTTP_X_HTTP_HOST_OVERRIDE",
        "HTTP_XFORWARDEDHOST",
    ):
        assert key not in environ, key
    assert EVIL not in str(result["headers"])


@pytest.fixture
def fn(configure_edge: ConfigureEdge, table: MappingTable) -> ModuleType:
    table.put(HOST, "acme")
    return configure_edge()


# --------------------------------------------------------------------------- header spoofing


def test_attack_underscore_workspace_id_reads_as_workspace_id_in_wsgi(fn: ModuleType) -> None:
    # "workspace_id" and "workspace-id" are both HTTP_WORKSPACE_ID to a WSGI app; a server
    # that keeps the last one would see the viewer's.
    assert_only_ours(send(fn, {"workspace_id": EVIL}))


@pytest.mark.parametrize(
    "name", ["x-workspace-id", "x_workspace_id", "x-workspace_id", "workspaceid", "x-workspaceid"]
)
def test_attack_workspace_id_spelled_another_way(fn: ModuleType, name: str) -> None:
    assert_only_ours(send(fn, {name: EVIL}))


@pytest.mark.parametrize("name", ["x-original-host", "x_original_host", "x-originalhost"])
def test_attack_x_original_host_overrides_the_host(fn: ModuleType, name: str) -> None:
    # IIS/ASP.NET and some proxies take the request's host from X-Original-Host.
    assert_only_ours(send(fn, {name: f"{EVIL}.ve.ai"}))


@pytest.mark.parametrize("name", ["x-host", "x_host"])
def test_attack_x_host_overrides_the_host(fn: ModuleType, name: str) -> None:
    assert_only_ours(send(fn, {name: f"{EVIL}.ve.ai"}))


def test_attack_forwarded_header_host_parameter(fn: ModuleType) -> None:
    # RFC 7239: frameworks with proxy support read the host from Forwarded: host=...
    assert_only_ours(send(fn, {"forwarded": f"for=1.2.3.4;host={EVIL}.ve.ai;proto=https"}))


@pytest.mark.parametrize("name", ["x-forwarded-host", "x_forwarded_host", "x-forwarded_host"])
def test_attack_viewer_x_forwarded_host_is_replaced_by_the_edges(fn: ModuleType, name: str) -> None:
    # Django (USE_X_FORWARDED_HOST), Rails and Express trust X-Forwarded-Host.
    assert_only_ours(send(fn, {name: f"{EVIL}.ve.ai"}))


@pytest.mark.parametrize("name", ["x-forwarded-server", "x-http-host-override"])
def test_attack_other_host_overrides(fn: ModuleType, name: str) -> None:
    assert_only_ours(send(fn, {name: f"{EVIL}.ve.ai"}))


def test_attack_spoofed_headers_on_a_404_reach_nothing(fn: ModuleType) -> None:
    """An unknown host gets the edge's 404; the request, left behind, holds no spoof."""
    event = load_event("origin-request-custom", "nobody.example.com")
    for name in ("workspace_id", "x-original-host", "forwarded"):
        request_of(event)["headers"][name] = [{"key": name, "value": EVIL}]
    result = fn.handler(event)
    assert result["status"] == "404"
    assert EVIL not in str(request_of(event)["headers"])


def test_attack_every_spelling_is_stripped(fn: ModuleType) -> None:
    """All the names at once, against the full list the function strips."""
    headers = {name: EVIL for name in STRIPPED_HEADERS}
    assert "workspace_id" in headers and "forwarded" in headers
    result = send(fn, headers)
    assert_only_ours(result)
    assert fn._metrics.spoofed == 1  # counted: a stripped header is an attack signal


# --------------------------------------------------------------------------- stale entries


@pytest.fixture
def dynamodb_down(monkeypatch: pytest.MonkeyPatch, closed_port_endpoint: str) -> Callable[[], None]:
    def down() -> None:
        monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port_endpoint)
        monkeypatch.setattr(edge, "_client", None)

    return down


def test_attack_removed_domain_keeps_routing_through_a_long_outage(
    configure_edge: ConfigureEdge,
    table: MappingTable,
    clock: FakeClock,
    dynamodb_down: Callable[[], None],
    lookups: LookupCounter,
) -> None:
    """The domain is removed (tombstoned) and DynamoDB goes down at the same moment; a
    request every 10 s for 20 minutes. Each failed refresh used to re-arm the stale entry,
    so it routed for the whole outage; now it stops positive_ttl + max_stale_seconds after
    the last successful read, however many failures happen in between."""
    fn = configure_edge(max_attempts=1, metrics_flush_seconds=3600)
    table.put(HOST, "acme")
    read_at = clock.now
    assert fn.handler(load_event("origin-request-custom", HOST))["headers"]["workspace-id"]
    table.put(HOST, "acme", status="inactive", version=2)
    dynamodb_down()

    routed_until = read_at
    outcomes = []
    for _ in range(120):
        clock.advance(10)
        result = fn.handler(load_event("origin-request-custom", HOST))
        routed = "status" not in result
        outcomes.append(result.get("status", "routed"))
        if routed:
            routed_until = clock.now
    bound = 300 + 600  # positive_ttl_seconds + max_stale_seconds (the defaults)
    assert read_at + bound - 10 <= routed_until < read_at + bound
    # Afterwards: 503, never the origin, for the rest of the outage.
    assert set(outcomes[-30:]) == {"503"}
    assert lookups.count > 30  # it kept trying DynamoDB, every error_retry_seconds at most


def test_attack_outage_does_not_extend_a_negative_entry_forever(
    configure_edge: ConfigureEdge,
    clock: FakeClock,
    dynamodb_down: Callable[[], None],
    table: MappingTable,
) -> None:
    fn = configure_edge(max_attempts=1, max_stale_seconds=60)
    assert fn.handler(load_event("origin-request-custom", "nobody.example.com"))["status"] == "404"
    dynamodb_down()
    clock.advance(30 + 59)  # negative TTL + just under max_stale
    assert fn.handler(load_event("origin-request-custom", "nobody.example.com"))["status"] == "404"
    clock.advance(2)
    assert fn.handler(load_event("origin-request-custom", "nobody.example.com"))["status"] == "503"
    assert fn._metrics.stale_expired == 1
