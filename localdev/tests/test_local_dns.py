"""`manage.py local_dns` through call_command, against a real LocalDNSServer and its API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from domains.integrations import dns
from localdev.dns_server import LocalDNSServer

pytestmark = pytest.mark.integration


@pytest.fixture
def local_dns(settings: Any) -> Iterator[LocalDNSServer]:
    with LocalDNSServer(port=0, control_port=0) as server:
        settings.VEDOMAINS_LOCAL_DNS_CONTROL_URL = server.control_url
        settings.VEDOMAINS_DNS_NAMESERVERS = [server.nameserver]
        settings.VEDOMAINS_DNS_TIMEOUT_SECONDS = 1.0
        yield server


def run(*args: str, **options: Any) -> str:
    from io import StringIO

    out = StringIO()
    call_command("local_dns", *args, stdout=out, **options)
    return out.getvalue()


def test_set_makes_the_app_see_the_cname(local_dns: LocalDNSServer) -> None:
    out = run("set", "Gallery.Example.com.", "cname", "domain.ve.ai")
    assert out.strip() == "gallery.example.com  60  CNAME  domain.ve.ai"
    # What the walkthrough relies on: the app's own resolver now finds the routing CNAME.
    routing = dns.check_routing("gallery.example.com")
    assert routing.ok, routing.detail


def test_add_list_delete_and_clear(local_dns: LocalDNSServer) -> None:
    run("add", "_vedomains-challenge.example.com", "TXT", "one", ttl="30")
    run("add", "_vedomains-challenge.example.com", "TXT", "two")
    run("set", "www.example.com", "A", "192.0.2.1")
    listed = run("list").splitlines()
    assert listed == [
        "_vedomains-challenge.example.com  30  TXT  one",
        "_vedomains-challenge.example.com  60  TXT  two",
        "www.example.com  60  A  192.0.2.1",
    ]
    assert run("delete", "www.example.com", "a").strip() == (
        "deleted 1 record(s) at www.example.com A"
    )
    assert run("delete", "_vedomains-challenge.example.com").startswith("deleted 2 record(s)")
    run("set", "x.example.com", "TXT", "x")
    assert run("clear").strip() == "deleted 1 record(s)"
    assert run("list").strip() == "no records"


def test_fault_on_and_off(local_dns: LocalDNSServer) -> None:
    out = run("fault", "servfail", "--name", "gallery.example.com")
    assert "gallery.example.com=servfail" in out
    assert local_dns.faults()["names"] == {"gallery.example.com": "servfail"}
    run("fault", "timeout")
    assert local_dns.faults()["global"] == "timeout"
    # Off for one name leaves the rest; off without a name clears every fault (per-name
    # faults used to stay behind and keep failing lookups).
    run("fault", "refused", "--name", "shop.example.com")
    run("fault", "off", fault_name="shop.example.com")
    assert local_dns.faults()["names"] == {"gallery.example.com": "servfail"}
    out = run("fault", "off")
    assert local_dns.faults() == {"global": None, "names": {}}
    assert "per name: none" in out
    assert dns.check_routing("gallery.example.com").reason == "nxdomain"  # no SERVFAIL left


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (("set", "gallery.example.com", "SRV", "0 0 443 x.example.com"), {}, "not supported"),
        (("set", "gallery.example.com", "A", "not-an-ip"), {}, "invalid A value"),
        (("set", "a.*.example.com", "CNAME", "domain.ve.ai"), {}, "wildcard"),
        (("set", "gallery.example.com", "CNAME", "domain.ve.ai"), {"ttl": "soon"}, "--ttl"),
        (("set", "gallery.example.com", "CNAME", "domain.ve.ai"), {"ttl": "-1"}, "--ttl"),
        (("fault", "explode"), {}, "not one of"),
    ],
)
def test_bad_input_is_a_command_error(
    local_dns: LocalDNSServer, args: tuple[str, ...], options: dict[str, str], message: str
) -> None:
    with pytest.raises(CommandError, match=message) as info:
        run(*args, **options)
    assert "\n" not in str(info.value)
    assert local_dns.records() == []


def test_cname_conflict_is_reported(local_dns: LocalDNSServer) -> None:
    run("set", "gallery.example.com", "TXT", "hello")
    with pytest.raises(CommandError, match="cannot coexist"):
        run("set", "gallery.example.com", "CNAME", "domain.ve.ai")


def test_server_not_running_is_one_clear_line(settings: Any) -> None:
    server = LocalDNSServer(port=0, control_port=0).start()
    url = server.control_url
    server.stop()  # nothing listens on that port any more
    settings.VEDOMAINS_LOCAL_DNS_CONTROL_URL = url
    with pytest.raises(CommandError) as info:
        run("list")
    message = str(info.value)
    assert message.startswith(f"the local DNS server is not answering at {url}")
    assert "./dev run" in message and "\n" not in message
