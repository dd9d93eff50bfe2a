"""The local edge proxy runs the real edge function against moto and fronts the demo origin."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from edge_lambda import handler as edge_handler
from edge_lambda.build import default_config
from localdev.demo_origin import REQUEST_LOG_PATH, DemoOriginServer
from localdev.edge_proxy import EdgeProxyServer, build_event
from localdev.moto_server import MotoHandle, aws_env

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[2] / "edge_lambda" / "tests" / "events"


def _serve(server: Any) -> threading.Thread:
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    return thread


@pytest.fixture
def table(moto: MotoHandle, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in aws_env(moto.endpoint_url).items():
        monkeypatch.setenv(key, value)
    # The function picks its replica from AWS_REGION; moto only has the home region.
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    name = f"mappings-{uuid.uuid4().hex[:8]}"
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "domain", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "domain", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for domain, workspace, status in (
        ("gallery.client.com", "acme", "active"),
        ("old.client.com", "acme", "inactive"),
    ):
        ddb.put_item(
            TableName=name,
            Item={
                "domain": {"S": domain},
                "workspaceId": {"S": workspace},
                "status": {"S": status},
                "version": {"N": "1"},
            },
        )
    return name


@pytest.fixture
def origin() -> Iterator[DemoOriginServer]:
    server = DemoOriginServer(("127.0.0.1", 0))
    thread = _serve(server)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def start_proxy(origin: DemoOriginServer, **config: Any) -> EdgeProxyServer:
    proxy = EdgeProxyServer(
        ("127.0.0.1", 0), origin=f"http://127.0.0.1:{origin.port}", config=default_config(**config)
    )
    _serve(proxy)
    return proxy


@pytest.fixture
def proxy(origin: DemoOriginServer, table: str) -> Iterator[EdgeProxyServer]:
    server = start_proxy(origin, table_name=table)
    yield server
    server.shutdown()
    server.server_close()
    edge_handler._reset_for_tests()  # leave no config behind for other tests


def get(url: str, headers: dict[str, str], data: bytes | None = None) -> tuple[int, str, Any]:
    request = urllib.request.Request(url, headers=headers, data=data)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers


def origin_paths(origin: DemoOriginServer) -> list[str]:
    return [r["path"] for r in origin.requests_seen()]


def test_event_has_the_documented_origin_request_shape() -> None:
    documented = json.loads((EVENTS / "origin-request-custom.json").read_text())
    doc_cf = documented["Records"][0]["cf"]
    event = build_event(
        method="GET",
        target="/a/b?x=1&y=2",
        header_pairs=[
            ("Host", "Gallery.Client.com"),
            ("Connection", "close"),
            ("Accept", "a"),
            ("accept", "b"),
        ],
        client_ip="203.0.113.9",
        config=default_config(),
    )
    cf = event["Records"][0]["cf"]
    assert set(cf) == set(doc_cf)
    assert set(cf["config"]) == set(doc_cf["config"])
    assert set(cf["request"]) == set(doc_cf["request"])
    assert set(cf["request"]["origin"]["custom"]) == set(doc_cf["request"]["origin"]["custom"])
    assert cf["config"]["eventType"] == "origin-request"
    request = cf["request"]
    assert (request["uri"], request["querystring"], request["clientIp"]) == (
        "/a/b",
        "x=1&y=2",
        "203.0.113.9",
    )
    # Lowercase keys, original case kept in `key`, repeated headers grouped, hop-by-hop gone.
    assert request["headers"]["host"] == [{"key": "Host", "value": "Gallery.Client.com"}]
    assert request["headers"]["accept"] == [
        {"key": "Accept", "value": "a"},
        {"key": "accept", "value": "b"},
    ]
    assert "connection" not in request["headers"]
    assert request["headers"]["x-forwarded-for"][0]["value"] == "203.0.113.9"


def test_viewer_request_mode_has_no_origin() -> None:
    event = build_event(
        method="GET",
        target="/",
        header_pairs=[("Host", "a.example.com")],
        client_ip="127.0.0.1",
        config=default_config(mode="viewer-request"),
    )
    request = event["Records"][0]["cf"]["request"]
    assert event["Records"][0]["cf"]["config"]["eventType"] == "viewer-request"
    assert "origin" not in request


def test_active_host_reaches_origin_with_its_workspace(
    proxy: EdgeProxyServer, origin: DemoOriginServer
) -> None:
    status, body, headers = get(
        f"http://127.0.0.1:{proxy.port}/photos?format=json",
        {"Host": "gallery.client.com", "workspace-id": "evil", "X-Forwarded-Host": "evil.com"},
    )
    assert status == 200, body
    seen = json.loads(body)
    # The viewer's spoofed headers are gone; the function's are what the origin sees.
    assert seen["workspace"] == "acme"
    assert seen["host"] == "gallery.client.com"
    assert seen["forwarded_host"] == "gallery.client.com"  # the edge's, not the viewer's
    assert (seen["path"], seen["query"]) == ("/photos", "format=json")
    assert headers["X-Cache"] == "Miss from local-edge"


def test_post_body_is_forwarded(proxy: EdgeProxyServer, origin: DemoOriginServer) -> None:
    status, body, _ = get(
        f"http://127.0.0.1:{proxy.port}/upload?format=json",
        {"Host": "gallery.client.com"},
        data=b"x" * 1000,
    )
    assert status == 200
    assert json.loads(body)["method"] == "POST"


def test_platform_subdomain_needs_no_lookup(proxy: EdgeProxyServer) -> None:
    status, body, _ = get(f"http://127.0.0.1:{proxy.port}/?format=json", {"Host": "studio.ve.ai"})
    assert status == 200 and json.loads(body)["workspace"] == "studio"


@pytest.mark.parametrize("host", ["unknown.client.com", "old.client.com", "not a host"])
def test_unknown_or_inactive_host_is_404_at_the_edge(
    proxy: EdgeProxyServer, origin: DemoOriginServer, host: str
) -> None:
    marker = f"/spoof-{uuid.uuid4().hex}"
    status, body, headers = get(
        f"http://127.0.0.1:{proxy.port}{marker}", {"Host": host, "workspace-id": "acme"}
    )
    assert status == 404
    assert "not connected to a workspace" in body
    assert headers["X-Cache"] == "LambdaGeneratedResponse from local-edge"
    assert marker not in origin_paths(origin), "a refused request reached the origin"


def test_dynamodb_failure_without_cache_is_503(origin: DemoOriginServer, table: str) -> None:
    proxy = start_proxy(origin, table_name="no-such-table", max_attempts=1)
    try:
        status, _, headers = get(f"http://127.0.0.1:{proxy.port}/", {"Host": "gallery.client.com"})
    finally:
        proxy.shutdown()
        proxy.server_close()
        edge_handler._reset_for_tests()
    assert status == 503 and headers["Retry-After"] == "5"


def test_function_error_is_cloudfronts_503(
    proxy: EdgeProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(event: dict[str, Any], context: object = None) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(edge_handler, "handler", broken)
    status, body, _ = get(f"http://127.0.0.1:{proxy.port}/", {"Host": "gallery.client.com"})
    assert status == 503 and "LambdaExecutionError" in body


def test_origin_request_log_is_only_readable_directly(
    origin: DemoOriginServer, proxy: EdgeProxyServer
) -> None:
    # Through the edge the path is an ordinary page of the workspace, not the log.
    status, body, _ = get(
        f"http://127.0.0.1:{proxy.port}{REQUEST_LOG_PATH}?format=json",
        {"Host": "gallery.client.com"},
    )
    assert status == 200 and json.loads(body)["workspace"] == "acme"
    status, body, _ = get(f"http://127.0.0.1:{origin.port}{REQUEST_LOG_PATH}", {})
    assert status == 200 and REQUEST_LOG_PATH in [r["path"] for r in json.loads(body)["requests"]]


def test_direct_origin_request_without_workspace_is_refused(origin: DemoOriginServer) -> None:
    status, body, _ = get(f"http://127.0.0.1:{origin.port}/", {"Host": "gallery.client.com"})
    assert status == 400 and "did not come through the edge" in body


def test_redirect_domain_is_answered_by_the_edge_without_the_origin(
    proxy: EdgeProxyServer, origin: DemoOriginServer, table: str
) -> None:
    """docs/redirects.md: the redirect item's answer, as the local stack shows it."""
    import http.client

    boto3.client("dynamodb", region_name="us-east-1").put_item(TableName=table, Item={
        "domain": {"S": "client.com"}, "workspaceId": {"S": "acme"}, "status": {"S": "active"},
        "version": {"N": "2"}, "redirectTo": {"S": "gallery.client.com"},
        "redirectCode": {"N": "301"}})
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        # The raw request-target, encoded characters and all (urllib would follow it).
        conn.request("GET", "/albums/caf%C3%A9/?page=2&q=a%20b", headers={"Host": "client.com"})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 301
    assert response.getheader("Location") == (
        "https://gallery.client.com/albums/caf%C3%A9/?page=2&q=a%20b")
    assert "/albums/caf%C3%A9/" not in origin_paths(origin)
    # The target itself is served as before.
    status, body, _ = get(f"http://127.0.0.1:{proxy.port}/?format=json",
                          {"Host": "gallery.client.com"})
    assert status == 200 and json.loads(body)["workspace"] == "acme"
