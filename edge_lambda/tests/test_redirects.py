"""Redirect domains at the edge: the item carries the target, the edge answers the redirect.

Against moto's DynamoDB (server mode) with recorded CloudFront events, like test_handler.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from edge_lambda.tests.conftest import (
    LookupCounter,
    MappingTable,
    event_for,
    load_event,
)

pytestmark = pytest.mark.integration

APEX = "client.com"
WWW = "www.client.com"
EVENTS = ("origin-request-custom", "viewer-request", "viewer-request-redirect")


def put_redirect(table: MappingTable, host: str, workspace: str, target: Any,
                 code: Any = "308", status: str = "active") -> None:
    """A redirect item as the Django side projects it (raw values allowed, for bad items)."""
    item: dict[str, Any] = {
        "domain": {"S": host}, "workspaceId": {"S": workspace}, "status": {"S": status},
        "version": {"N": "3"}, "updatedAt": {"S": "2026-01-01T00:00:00Z"},
    }
    if target is not None:
        item["redirectTo"] = {"S": target}
    if code is not None:
        item["redirectCode"] = {"N": str(code)}
    table.client.put_item(TableName=table.name, Item=item)


def location(result: dict[str, Any]) -> str:
    assert "workspace-id" not in result["headers"], result
    (value,) = result["headers"]["location"]
    assert value["key"] == "Location"
    return str(value["value"])


def assert_served(result: dict[str, Any], workspace: str) -> None:
    assert "status" not in result, result
    assert result["headers"]["workspace-id"] == [{"key": "workspace-id", "value": workspace}]


@pytest.mark.parametrize("event_name", EVENTS)
@pytest.mark.parametrize("code", [301, 308])
def test_edge_answers_the_redirect_itself_on_both_triggers(
    edge_fn: ModuleType, table: MappingTable, event_name: str, code: int
) -> None:
    table.put(WWW, "acme")
    put_redirect(table, APEX, "acme", WWW, code)

    result = edge_fn.handler(event_for(event_name, APEX, "/", ""))

    # A generated response: CloudFront never contacts the origin for it.
    assert result["status"] == str(code)
    assert result["statusDescription"] == {301: "Moved Permanently",
                                           308: "Permanent Redirect"}[code]
    assert location(result) == "https://www.client.com/"
    assert result["headers"]["cache-control"][0]["value"] == "public, max-age=300"
    assert "uri" not in result and "origin" not in result
    assert edge_fn._metrics.redirect == 1


def test_recorded_event_keeps_encoded_path_and_query(
    edge_fn: ModuleType, table: MappingTable
) -> None:
    table.put(WWW, "acme")
    put_redirect(table, APEX, "acme", WWW, 301)
    result = edge_fn.handler(load_event("viewer-request-redirect"))
    assert result["status"] == "301"
    assert location(result) == (
        "https://www.client.com/gallery/caf%C3%A9/photo%201.jpg?size=LARGE&color=r%C3%B6d")


@pytest.mark.parametrize(
    ("uri", "query", "expected"),
    [
        ("/", "", "https://www.client.com/"),
        ("/gallery", "", "https://www.client.com/gallery"),
        ("/gallery/", "", "https://www.client.com/gallery/"),  # trailing slash kept
        ("/a/b/c.jpg", "w=100&h=50", "https://www.client.com/a/b/c.jpg?w=100&h=50"),
        ("/search", "q=a%20b&q=c%2Bd&empty=", "https://www.client.com/search?q=a%20b&q=c%2Bd&empty="),
        ("/x%2Fy/%3F%23", "next=%2Fhome%3Fa%3D1", "https://www.client.com/x%2Fy/%3F%23?next=%2Fhome%3Fa%3D1"),
        ("/query-with-question", "a=?b", "https://www.client.com/query-with-question?a=?b"),
        ("//evil.example/path", "", "https://www.client.com//evil.example/path"),
        # Raw characters a Location may not carry are escaped; nothing ends the header.
        ("/é space", "q=ü", "https://www.client.com/%C3%A9%20space?q=%C3%BC"),
        ("/a\r\nSet-Cookie: x=1", "b=1#frag", "https://www.client.com/a%0D%0ASet-Cookie:%20x=1?b=1%23frag"),
        ("/back\\slash", "", "https://www.client.com/back%5Cslash"),
        ("no-leading-slash", "", "https://www.client.com/no-leading-slash"),
    ],
)
def test_location_keeps_every_path_shape(
    edge_fn: ModuleType, table: MappingTable, uri: str, query: str, expected: str
) -> None:
    table.put(WWW, "acme")
    put_redirect(table, APEX, "acme", WWW)
    for name in ("origin-request-custom", "viewer-request"):
        assert location(edge_fn.handler(event_for(name, APEX, uri, query))) == expected


def test_unicode_host_redirects_to_its_punycode_target(
    edge_fn: ModuleType, table: MappingTable, lookups: LookupCounter
) -> None:
    table.put("www.xn--bcher-kva.de", "books")
    put_redirect(table, "xn--bcher-kva.de", "books", "www.xn--bcher-kva.de", 301)
    for raw in ("Bücher.de", "xn--bcher-kva.de", "BÜCHER.de.:443"):
        result = edge_fn.handler(event_for("viewer-request", raw, "/bilder/", "seite=2"))
        assert result["status"] == "301"
        assert location(result) == "https://www.xn--bcher-kva.de/bilder/?seite=2"
    # One read of the redirect host and one of its target, then cache hits.
    assert lookups.calls == ["xn--bcher-kva.de", "www.xn--bcher-kva.de"]


def test_target_read_with_the_redirect_is_cached_for_the_next_request(
    edge_fn: ModuleType, table: MappingTable, lookups: LookupCounter
) -> None:
    table.put(WWW, "acme")
    put_redirect(table, APEX, "acme", WWW)
    assert edge_fn.handler(event_for("origin-request-custom", APEX))["status"] == "308"
    # The browser follows the redirect: the target is already known to this container.
    assert_served(edge_fn.handler(event_for("origin-request-custom", WWW)), "acme")
    assert edge_fn.handler(event_for("origin-request-custom", APEX))["status"] == "308"
    assert lookups.calls == [APEX, WWW]


def test_viewer_cannot_steer_the_redirect_with_headers(
    edge_fn: ModuleType, table: MappingTable
) -> None:
    table.put(WWW, "acme")
    put_redirect(table, APEX, "acme", WWW)
    event = load_event("viewer-request", APEX, x_forwarded_host="evil.example",
                       workspace_id="other", forwarded="host=evil.example")
    result = edge_fn.handler(event)
    assert location(result) == "https://www.client.com/"
    assert edge_fn._metrics.spoofed == 1


@pytest.mark.parametrize(
    ("case", "target", "code"),
    [
        ("another workspace's domain", "other.example.com", "308"),
        ("unknown target", "nowhere.example.com", "308"),
        ("inactive target", "gone.example.com", "308"),
        ("itself", APEX, "308"),
        ("a URL, not a host", "https://evil.example/", "308"),
        ("a host with a path", "evil.example/x", "308"),
        ("uppercase host", "WWW.CLIENT.COM", "308"),
        ("platform host", "acme.ve.ai", "308"),
        ("an IP literal", "203.0.113.9", "308"),
        ("a code that is not a permanent redirect", WWW, "302"),
        ("no code", WWW, None),
        ("a code of the wrong type", WWW, "abc"),
    ],
)
def test_a_redirect_the_item_cannot_vouch_for_serves_the_workspace(
    edge_fn: ModuleType, table: MappingTable, case: str, target: str, code: str | None
) -> None:
    table.put(WWW, "acme")
    table.put("other.example.com", "someone-else")
    table.put("gone.example.com", "acme", status="inactive")
    if code == "abc":
        item_code: Any = None
        put_redirect(table, APEX, "acme", target, None)
        table.client.update_item(
            TableName=table.name, Key={"domain": {"S": APEX}},
            UpdateExpression="SET redirectCode = :c",
            ExpressionAttributeValues={":c": {"S": "308"}})
    else:
        item_code = code
        put_redirect(table, APEX, "acme", target, item_code)

    result = edge_fn.handler(event_for("origin-request-custom", APEX, "/x", "y=1"))

    # Never an open redirect: the host is served as the plain mapping it also is.
    assert_served(result, "acme")
    assert edge_fn._metrics.invalid_item == 1
    assert edge_fn._metrics.redirect == 0


def test_chains_and_loops_are_not_followed(
    edge_fn: ModuleType, table: MappingTable, lookups: LookupCounter
) -> None:
    put_redirect(table, "a.client.com", "acme", "b.client.com")
    put_redirect(table, "b.client.com", "acme", "a.client.com")
    put_redirect(table, "c.client.com", "acme", "a.client.com")

    for host in ("a.client.com", "b.client.com", "c.client.com"):
        assert_served(edge_fn.handler(event_for("viewer-request", host)), "acme")
    assert edge_fn._metrics.redirect == 0


def test_tombstoned_redirect_host_gets_404(edge_fn: ModuleType, table: MappingTable) -> None:
    table.put(WWW, "acme")
    put_redirect(table, APEX, "acme", WWW, status="inactive")
    assert edge_fn.handler(event_for("viewer-request", APEX))["status"] == "404"


def test_target_lookup_failure_is_a_503_never_an_unchecked_redirect(
    edge_fn: ModuleType, table: MappingTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    table.put(WWW, "acme")
    put_redirect(table, APEX, "acme", WWW)
    real = edge_fn._lookup

    def failing_for_target(host: str, settings: Any) -> Any:
        if host == WWW:
            raise OSError("timed out")
        return real(host, settings)

    monkeypatch.setattr(edge_fn, "_lookup", failing_for_target)
    assert edge_fn.handler(event_for("viewer-request", APEX))["status"] == "503"
