"""DNS checks against the real loopback DNS server: verdicts versus transient failures."""

from __future__ import annotations

import pytest

from domains.integrations import dns
from domains.integrations.errors import IntegrationError

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("entry", "host", "port"),
    [("127.0.0.1:5353", "127.0.0.1", 5353), ("10.0.0.2", "10.0.0.2", 53),
     ("::1", "::1", 53), ("[::1]:5300", "::1", 5300)],
)
def test_parse_nameserver(entry: str, host: str, port: int) -> None:
    ns = dns.parse_nameserver(entry)
    assert (ns.address, ns.port) == (host, port)


def test_direct_cname_reaches_the_target(dns_server) -> None:
    dns_server.store.set_record("gallery.client.com", "CNAME", "domain.ve.ai")
    check = dns.check_routing("gallery.client.com")
    assert (check.ok, check.reason) == (True, "points_to_target")


def test_chain_through_a_provider_alias_reaches_the_target(dns_server) -> None:
    dns_server.store.set_record("www.client.com", "CNAME", "alias.provider.net")
    dns_server.store.set_record("alias.provider.net", "CNAME", "domain.ve.ai")
    check = dns.check_routing("www.client.com")
    assert check.ok and check.chain == ("www.client.com", "alias.provider.net", "domain.ve.ai")


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        ([], "nxdomain"),
        ([("shop.client.com", "A", "192.0.2.10")], "no_cname"),
        ([("shop.client.com", "CNAME", "other.cdn.net")], "wrong_target"),
    ],
)
def test_customer_dns_verdicts(dns_server, records, reason) -> None:
    for name, rtype, value in records:
        dns_server.store.set_record(name, rtype, value)
    check = dns.check_routing("shop.client.com")
    assert (check.ok, check.reason, check.transient) == (False, reason, False)


@pytest.mark.parametrize("fault", ["timeout", "servfail", "refused"])
def test_server_faults_are_transient_never_a_verdict(dns_server, fault) -> None:
    dns_server.store.set_record("gallery.client.com", "CNAME", "domain.ve.ai")
    dns_server.store.set_fault(fault)
    check = dns.check_routing("gallery.client.com")
    assert check.reason == "transient" and check.transient and not check.ok
    with pytest.raises(IntegrationError) as caught:
        dns.lookup_txt("_vedomains-challenge.gallery.client.com")
    assert caught.value.permanent is False


def test_txt_values_and_many_hosts_concurrently(dns_server) -> None:
    long_value = "vedomains-verification=" + "a" * 300  # split into 255-byte strings
    dns_server.store.add_record("_vedomains-challenge.a.client.com", "TXT", "other=1")
    dns_server.store.add_record("_vedomains-challenge.a.client.com", "TXT", long_value)
    hosts = [f"h{i}.client.com" for i in range(50)]
    for host in hosts[:25]:
        dns_server.store.set_record(host, "CNAME", "domain.ve.ai")
    results = dns.check_many([*hosts, "a.client.com"], txt_for=["a.client.com"])
    assert sum(r.routing.ok for r in results.values()) == 25
    assert set(results["a.client.com"].txt.values) == {"other=1", long_value}
    assert dns.lookup_txt("_vedomains-challenge.nothing.client.com") == []
