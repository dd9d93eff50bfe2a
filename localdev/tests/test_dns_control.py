"""The HTTP control API and its client program the running DNS server."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

import dns.resolver
import pytest

from localdev.dns_control import DNSControl, DNSControlError
from localdev.dns_server import LocalDNSServer

pytestmark = pytest.mark.integration


def _raw(
    server: LocalDNSServer, method: str, path: str, body: bytes | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(f"{server.control_url}{path}", data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_round_trip_through_the_client(
    dns_server: LocalDNSServer, control: DNSControl, resolver: dns.resolver.Resolver
) -> None:
    assert control.health() == {
        "status": "ok",
        "dns": {"host": "127.0.0.1", "port": dns_server.port},
    }

    assert control.set("shop.example", "A", "192.0.2.1", ttl=30) == [
        {"name": "shop.example", "type": "A", "value": "192.0.2.1", "ttl": 30}
    ]
    control.add("_vedomains-challenge.shop.example", "TXT", "one")
    assert len(control.add("_vedomains-challenge.shop.example", "TXT", "two")) == 2
    assert len(control.records()) == 3

    assert [str(r) for r in resolver.resolve("shop.example", "A")] == ["192.0.2.1"]
    txt = resolver.resolve("_vedomains-challenge.shop.example", "TXT")
    assert sorted(b"".join(r.strings).decode() for r in txt) == ["one", "two"]

    assert control.delete("_vedomains-challenge.shop.example", "TXT") == 2
    assert control.delete("nothing.example") == 0
    assert control.clear() == 1
    assert control.records() == []


def test_conflict_and_query_log_through_the_client(
    dns_server: LocalDNSServer, control: DNSControl, resolver: dns.resolver.Resolver
) -> None:
    control.set("shop.example", "CNAME", "domain.ve.ai")
    with pytest.raises(DNSControlError, match="can coexist"):
        control.add("shop.example", "A", "192.0.2.1")
    assert control.add("shop.example", "A", "192.0.2.1", conflict=True)[0]["value"] == "192.0.2.1"
    assert len(control.add("shop.example", "CNAME", "old.example", conflict=True)) == 2
    control.reset_queries()
    assert [str(r) for r in resolver.resolve("shop.example", "A")] == ["192.0.2.1"]
    assert control.queries() == [{"name": "shop.example", "type": "A", "cd": False}]
    status, payload = _raw(dns_server, "PUT", "/records",
                           b'{"name": "a.example", "type": "A", "value": "192.0.2.1", '
                           b'"conflict": "yes"}')
    assert status == 400 and "conflict" in payload["error"]


def test_faults_through_the_client(
    dns_server: LocalDNSServer, control: DNSControl, resolver: dns.resolver.Resolver
) -> None:
    control.set("shop.example", "A", "192.0.2.1")

    assert control.fault("servfail", name="shop.example") == {
        "global": None,
        "names": {"shop.example": "servfail"},
    }
    with pytest.raises(dns.resolver.NoNameservers, match="SERVFAIL"):
        resolver.resolve("shop.example", "A")

    control.fault(None, name="shop.example")
    control.fault("refused")
    assert control.faults() == {"global": "refused", "names": {}}
    with pytest.raises(dns.resolver.NoNameservers, match="REFUSED"):
        resolver.resolve("shop.example", "A")
    control.fault(None)
    assert [str(r) for r in resolver.resolve("shop.example", "A")] == ["192.0.2.1"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/records", b"{not json"),
        ("PUT", "/records", b"[1, 2]"),
        ("PUT", "/records", b""),
        ("PUT", "/records", b'{"name": "shop.example", "type": "A"}'),
        ("PUT", "/records", b'{"name": "shop.example", "type": "A", "value": "x"}'),
        ("PUT", "/records", b'{"name": "shop.example", "type": "SRV", "value": "0 0 1 m.ex"}'),
        ("POST", "/records", b'{"name": 5, "type": "A", "value": "192.0.2.1"}'),
        (
            "POST",
            "/records",
            b'{"name": "a.example", "type": "A", "value": "192.0.2.1", "ttl": "60"}',
        ),
        ("POST", "/records", b'{"name": "a.example", "type": "A", "value": "192.0.2.1", "tll": 6}'),
        ("PUT", "/fault", b'{"mode": "slow"}'),
        ("PUT", "/fault", b'{"mode": ["timeout"]}'),
        ("PUT", "/fault", b'{"name": "shop.example"}'),
        ("DELETE", "/records", None),
        ("DELETE", "/records?name=bad%20name", None),
        ("DELETE", "/records?name=shop.example&type=SRV", None),
    ],
)
def test_bad_input_is_a_400_json_error(
    dns_server: LocalDNSServer, method: str, path: str, body: bytes | None
) -> None:
    status, payload = _raw(dns_server, method, path, body)

    assert status == 400
    assert isinstance(payload["error"], str) and payload["error"]
    assert dns_server.records() == []
    assert dns_server.faults() == {"global": None, "names": {}}


def test_unknown_endpoint_and_method(dns_server: LocalDNSServer) -> None:
    assert _raw(dns_server, "GET", "/nope")[0] == 404
    assert _raw(dns_server, "POST", "/health", b"{}")[0] == 405


def test_client_errors_carry_the_server_message(control: DNSControl) -> None:
    with pytest.raises(DNSControlError, match="not supported") as excinfo:
        control.set("shop.example", "SRV", "0 0 443 mail.example")
    assert excinfo.value.status == 400


def test_client_says_when_the_server_is_not_running() -> None:
    # A port that was free a moment ago: nothing listens on it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with pytest.raises(
        DNSControlError, match="not reachable.*is the local DNS server running"
    ) as excinfo:
        DNSControl(f"http://127.0.0.1:{port}", timeout=1).records()
    assert excinfo.value.status is None
