"""The local DNS server answers real queries the way a resolver would relay them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from localdev.dns_server import LocalDNSServer
from localdev.tests.conftest import make_resolver

pytestmark = pytest.mark.integration


def _query(
    server: LocalDNSServer, name: str, rtype: str, *, tcp: bool = False
) -> dns.message.Message:
    message = dns.message.make_query(name, rtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(message, "127.0.0.1", port=server.port, timeout=2)


def _texts(answer: dns.resolver.Answer) -> list[str]:
    return sorted(str(rdata) for rdata in answer)


def test_a_record_resolves(dns_server: LocalDNSServer, resolver: dns.resolver.Resolver) -> None:
    dns_server.set_record("app.example.com", "A", "192.0.2.10", ttl=120)

    answer = resolver.resolve("app.example.com", "A")

    assert _texts(answer) == ["192.0.2.10"]
    assert answer.rrset is not None and answer.rrset.ttl == 120
    assert answer.response.flags & dns.flags.AA


def test_query_over_tcp_on_the_same_port(dns_server: LocalDNSServer) -> None:
    dns_server.set_record("app.example.com", "AAAA", "2001:db8::1")

    response = _query(dns_server, "app.example.com", "AAAA", tcp=True)

    assert [str(rdata) for rdata in response.answer[0]] == ["2001:db8::1"]


def test_resolver_tcp_mode(dns_server: LocalDNSServer, resolver: dns.resolver.Resolver) -> None:
    dns_server.set_record("app.example.com", "A", "192.0.2.10")

    assert _texts(resolver.resolve("app.example.com", "A", tcp=True)) == ["192.0.2.10"]


def test_names_are_case_insensitive_and_trailing_dot_optional(
    dns_server: LocalDNSServer, resolver: dns.resolver.Resolver
) -> None:
    dns_server.set_record("Shop.Example.COM.", "A", "192.0.2.1")

    assert _texts(resolver.resolve("shop.example.com", "A")) == ["192.0.2.1"]
    assert _texts(resolver.resolve("SHOP.EXAMPLE.COM.", "A")) == ["192.0.2.1"]
    assert dns_server.records() == [
        {"name": "shop.example.com", "type": "A", "value": "192.0.2.1", "ttl": 60}
    ]


def test_cname_chain_is_followed_when_targets_are_known(
    dns_server: LocalDNSServer, resolver: dns.resolver.Resolver
) -> None:
    dns_server.set_record("www.shop.example", "CNAME", "edge.ve.ai")
    dns_server.set_record("edge.ve.ai", "CNAME", "d111.cloudfront.net.")
    dns_server.set_record("d111.cloudfront.net", "A", "198.51.100.7")

    answer = resolver.resolve("www.shop.example", "A")

    assert _texts(answer) == ["198.51.100.7"]
    assert answer.canonical_name.to_text() == "d111.cloudfront.net."
    chain = [
        (rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype))
        for rrset in answer.response.answer
    ]
    assert chain == [
        ("www.shop.example.", "CNAME"),
        ("edge.ve.ai.", "CNAME"),
        ("d111.cloudfront.net.", "A"),
    ]


def test_cname_answers_any_type_and_cname_query_is_not_followed(
    dns_server: LocalDNSServer, resolver: dns.resolver.Resolver
) -> None:
    dns_server.set_record("www.shop.example", "CNAME", "edge.ve.ai")
    dns_server.set_record("edge.ve.ai", "A", "198.51.100.7")

    assert _texts(resolver.resolve("www.shop.example", "CNAME")) == ["edge.ve.ai."]
    txt_response = _query(dns_server, "www.shop.example", "TXT")
    assert [dns.rdatatype.to_text(r.rdtype) for r in txt_response.answer] == ["CNAME"]


def test_cname_to_unknown_target_returns_just_the_cname(dns_server: LocalDNSServer) -> None:
    # Like an authoritative server whose zone does not hold the target.
    dns_server.set_record("www.shop.example", "CNAME", "d111.cloudfront.net")

    response = _query(dns_server, "www.shop.example", "A")

    assert response.rcode() == dns.rcode.NOERROR
    assert [str(rdata) for rrset in response.answer for rdata in rrset] == ["d111.cloudfront.net."]


def test_cname_loop_is_servfail(
    dns_server: LocalDNSServer, resolver: dns.resolver.Resolver
) -> None:
    dns_server.set_record("a.loop.example", "CNAME", "b.loop.example")
    dns_server.set_record("b.loop.example", "CNAME", "a.loop.example")

    assert _query(dns_server, "a.loop.example", "A").rcode() == dns.rcode.SERVFAIL
    with pytest.raises(dns.resolver.NoNameservers):
        resolver.resolve("a.loop.example", "A")


def test_multiple_txt_values(dns_server: LocalDNSServer, resolver: dns.resolver.Resolver) -> None:
    dns_server.add_record("_vedomains-challenge.shop.example", "TXT", "token-one")
    dns_server.add_record("_vedomains-challenge.shop.example", "TXT", "token-two")
    dns_server.add_record("_vedomains-challenge.shop.example", "TXT", "token-two")  # a set

    answer = resolver.resolve("_vedomains-challenge.shop.example", "TXT")

    assert sorted(b"".join(rdata.strings).decode() for rdata in answer) == [
        "token-one",
        "token-two",
    ]


def test_long_txt_is_split_into_255_byte_strings(
    dns_server: LocalDNSServer, resolver: dns.resolver.Resolver
) -> None:
    value = "v=spf1 " + "x" * 600
    dns_server.set_record("shop.example", "TXT", value)

    (rdata,) = resolver.resolve("shop.example", "TXT")

    assert [len(s) for s in rdata.strings] == [255, 255, 97]
    assert b"".join(rdata.strings).decode() == value


def test_large_answer_sets_tc_over_udp_and_completes_over_tcp(
    dns_server: LocalDNSServer, resolver: dns.resolver.Resolver
) -> None:
    for index in range(12):
        dns_server.add_record("big.example", "TXT", f"{index:02d}" + "y" * 200)

    udp = _query(dns_server, "big.example", "TXT")
    assert udp.flags & dns.flags.TC and not udp.answer
    # The resolver retries over TCP on TC, as a real stub would.
    assert len(resolver.resolve("big.example", "TXT")) == 12


def test_nxdomain_for_unknown_names(
    dns_server: LocalDNSServer, resolver: dns.resolver.Resolver
) -> None:
    dns_server.set_record("shop.example", "A", "192.0.2.1")

    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("missing.example", "A")
    response = _query(dns_server, "missing.example", "A")
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert [dns.rdatatype.to_text(r.rdtype) for r in response.authority] == ["SOA"]


def test_nodata_when_name_exists_with_other_types(
    dns_server: LocalDNSServer, resolver: dns.resolver.Resolver
) -> None:
    dns_server.set_record("shop.example", "A", "192.0.2.1")

    with pytest.raises(dns.resolver.NoAnswer):
        resolver.resolve("shop.example", "AAAA")
    response = _query(dns_server, "shop.example", "TXT")
    assert response.rcode() == dns.rcode.NOERROR and not response.answer
    assert [dns.rdatatype.to_text(r.rdtype) for r in response.authority] == ["SOA"]


def test_empty_non_terminal_is_nodata_not_nxdomain(
    dns_server: LocalDNSServer, resolver: dns.resolver.Resolver
) -> None:
    dns_server.set_record("_acme-challenge.www.shop.example", "TXT", "token")

    with pytest.raises(dns.resolver.NoAnswer):
        resolver.resolve("www.shop.example", "A")
    with pytest.raises(dns.resolver.NoAnswer):
        resolver.resolve("shop.example", "A")
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("other.shop.example", "A")


def test_caa_and_ns_records(dns_server: LocalDNSServer, resolver: dns.resolver.Resolver) -> None:
    dns_server.add_record("shop.example", "CAA", '0 issue "amazon.com"')
    dns_server.add_record("shop.example", "CAA", "0 issuewild amazontrust.com")
    dns_server.add_record("shop.example", "NS", "ns1.dns-host.example")

    assert _texts(resolver.resolve("shop.example", "CAA")) == [
        '0 issue "amazon.com"',
        '0 issuewild "amazontrust.com"',
    ]
    assert _texts(resolver.resolve("shop.example", "NS")) == ["ns1.dns-host.example."]


def test_set_replaces_add_appends_delete_and_clear(dns_server: LocalDNSServer) -> None:
    dns_server.add_record("shop.example", "A", "192.0.2.1")
    dns_server.add_record("shop.example", "A", "192.0.2.2")
    dns_server.set_record("shop.example", "TXT", "hello")
    dns_server.set_record("shop.example", "A", "192.0.2.3")

    assert [(r["type"], r["value"]) for r in dns_server.records()] == [
        ("A", "192.0.2.3"),
        ("TXT", "hello"),
    ]
    assert dns_server.delete("SHOP.example.", "txt") == 1
    assert dns_server.delete("shop.example", "TXT") == 0
    dns_server.set_record("other.example", "A", "192.0.2.4")
    assert dns_server.delete("shop.example") == 1
    assert dns_server.clear() == 1
    assert dns_server.records() == []


def test_cname_cannot_coexist_with_other_data(dns_server: LocalDNSServer) -> None:
    dns_server.set_record("shop.example", "A", "192.0.2.1")
    with pytest.raises(ValueError, match="CNAME"):
        dns_server.set_record("shop.example", "CNAME", "edge.ve.ai")

    dns_server.set_record("www.shop.example", "CNAME", "edge.ve.ai")
    with pytest.raises(ValueError, match="CNAME"):
        dns_server.add_record("www.shop.example", "TXT", "x")
    with pytest.raises(ValueError, match="only one"):
        dns_server.add_record("www.shop.example", "CNAME", "other.ve.ai")
    dns_server.set_record("www.shop.example", "CNAME", "other.ve.ai")  # replacing is fine


@pytest.mark.parametrize(
    ("name", "rtype", "value", "ttl"),
    [
        ("", "A", "192.0.2.1", 60),
        ("bad name.example", "A", "192.0.2.1", 60),
        ("a.*.shop.example", "A", "192.0.2.1", 60),
        ("bücher.example", "A", "192.0.2.1", 60),
        ("shop.example", "SRV", "0 0 443 mail.example", 60),
        ("shop.example", "A", "2001:db8::1", 60),
        ("shop.example", "AAAA", "192.0.2.1", 60),
        ("shop.example", "CAA", "issue amazon.com", 60),
        ("shop.example", "A", "192.0.2.1", -1),
        ("shop.example", "A", "192.0.2.1", True),
    ],
)
def test_invalid_records_are_rejected(
    dns_server: LocalDNSServer, name: str, rtype: str, value: str, ttl: int
) -> None:
    with pytest.raises(ValueError):
        dns_server.set_record(name, rtype, value, ttl)
    assert dns_server.records() == []


def test_timeout_fault_never_answers(dns_server: LocalDNSServer) -> None:
    dns_server.set_record("shop.example", "A", "192.0.2.1")
    dns_server.set_fault("timeout")
    resolver = make_resolver(dns_server.port, lifetime=0.5)

    started = time.monotonic()
    with pytest.raises(dns.resolver.LifetimeTimeout):
        resolver.resolve("shop.example", "A")
    assert time.monotonic() - started < 1.5
    with pytest.raises(dns.exception.Timeout):
        _query_with_timeout(dns_server, "shop.example", tcp=True, timeout=0.5)


def _query_with_timeout(server: LocalDNSServer, name: str, *, tcp: bool, timeout: float) -> None:
    message = dns.message.make_query(name, "A")
    send = dns.query.tcp if tcp else dns.query.udp
    send(message, "127.0.0.1", port=server.port, timeout=timeout)


def test_servfail_fault(dns_server: LocalDNSServer, resolver: dns.resolver.Resolver) -> None:
    dns_server.set_record("shop.example", "A", "192.0.2.1")
    dns_server.set_fault("servfail")

    with pytest.raises(dns.resolver.NoNameservers, match="SERVFAIL"):
        resolver.resolve("shop.example", "A")


def test_refused_fault(dns_server: LocalDNSServer, resolver: dns.resolver.Resolver) -> None:
    dns_server.set_fault("refused")

    with pytest.raises(dns.resolver.NoNameservers, match="REFUSED"):
        resolver.resolve("shop.example", "A")


def test_per_name_fault_overrides_global_and_clears(
    dns_server: LocalDNSServer, resolver: dns.resolver.Resolver
) -> None:
    dns_server.set_record("shop.example", "A", "192.0.2.1")
    dns_server.set_record("other.example", "A", "192.0.2.2")
    dns_server.set_fault("servfail", name="Shop.Example.")

    with pytest.raises(dns.resolver.NoNameservers, match="SERVFAIL"):
        resolver.resolve("shop.example", "A")
    assert _texts(resolver.resolve("other.example", "A")) == ["192.0.2.2"]

    dns_server.set_fault("refused")
    with pytest.raises(dns.resolver.NoNameservers, match="SERVFAIL"):
        resolver.resolve("shop.example", "A")
    with pytest.raises(dns.resolver.NoNameservers, match="REFUSED"):
        resolver.resolve("other.example", "A")

    dns_server.set_fault(None, name="shop.example")
    dns_server.set_fault(None)
    assert dns_server.faults() == {"global": None, "names": {}}
    assert _texts(resolver.resolve("shop.example", "A")) == ["192.0.2.1"]


def test_invalid_fault_mode_is_rejected(dns_server: LocalDNSServer) -> None:
    with pytest.raises(ValueError, match="fault mode"):
        dns_server.set_fault("slow")


def test_stop_then_start_rebinds_the_same_port(dns_server: LocalDNSServer) -> None:
    dns_server.set_record("shop.example", "A", "192.0.2.1")
    port = dns_server.port
    dns_server.stop()

    with pytest.raises(dns.resolver.NoNameservers):  # connection refused over TCP
        make_resolver(port, lifetime=1).resolve("shop.example", "A", tcp=True)

    dns_server.start()
    assert dns_server.port == port
    assert _texts(make_resolver(port).resolve("shop.example", "A")) == ["192.0.2.1"]


def test_stop_is_prompt_even_with_a_held_tcp_query(dns_server: LocalDNSServer) -> None:
    dns_server.set_fault("timeout")
    with pytest.raises(dns.exception.Timeout):
        _query_with_timeout(dns_server, "shop.example", tcp=True, timeout=0.2)

    started = time.monotonic()
    dns_server.stop()
    assert time.monotonic() - started < 2


def test_two_servers_get_distinct_ports() -> None:
    with LocalDNSServer() as first, LocalDNSServer() as second:
        assert first.port != second.port
        assert first.nameserver == f"127.0.0.1:{first.port}"


def test_busy_port_is_a_clear_error(dns_server: LocalDNSServer) -> None:
    with pytest.raises(OSError, match="could not bind"):
        LocalDNSServer(port=dns_server.port).start()


def test_non_loopback_host_is_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LocalDNSServer(host="0.0.0.0")


def test_state_file_persists_records_across_restarts(tmp_path: Path) -> None:
    state_file = tmp_path / "var" / "dns.json"
    with LocalDNSServer(state_file=state_file) as server:
        server.set_record("shop.example", "A", "192.0.2.1")
        server.add_record("shop.example", "TXT", "one")
        server.add_record("shop.example", "TXT", "two")
        server.set_fault("servfail")

    saved = json.loads(state_file.read_text())
    assert saved["version"] == 1 and len(saved["records"]) == 3

    with LocalDNSServer(state_file=state_file) as restarted:
        assert len(restarted.records()) == 3
        # Faults are not persisted: a restarted server starts healthy.
        resolver = make_resolver(restarted.port)
        assert _texts(resolver.resolve("shop.example", "A")) == ["192.0.2.1"]
        restarted.clear()
    assert json.loads(state_file.read_text())["records"] == []


def test_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    state_file = tmp_path / "dns.json"
    state_file.write_text("{not json")

    with pytest.raises(ValueError, match="cannot load DNS state"):
        LocalDNSServer(state_file=state_file)


def test_cli_runs_until_sigterm(tmp_path: Path) -> None:
    state_file = tmp_path / "dns.json"
    state_file.write_text(
        json.dumps(
            {"version": 1, "records": [{"name": "shop.example", "type": "A", "value": "192.0.2.1"}]}
        )
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "localdev.dns_server",
            "--port",
            "0",
            "--control-port",
            "0",
            "--state-file",
            str(state_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"udp\+tcp 127\.0\.0\.1:(\d+), control http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        resolver = make_resolver(int(match.group(1)))
        assert _texts(resolver.resolve("shop.example", "A")) == ["192.0.2.1"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


# --- the mistakes customers make (the DNS doctor's tests build them) ------------------------


def test_mx_ds_and_dnskey_records(dns_server: LocalDNSServer,
                                  resolver: dns.resolver.Resolver) -> None:
    dns_server.set_record("shop.example", "MX", "10 Mail.Example.")
    dns_server.set_record("shop.example", "DNSKEY", "257 3 13 " + "QUJD" * 16)
    dns_server.set_record("shop.example", "DS", "12345 13 2 " + "ab" * 32)
    assert _texts(resolver.resolve("shop.example", "MX")) == ["10 mail.example."]
    assert _texts(resolver.resolve("shop.example", "DS"))[0].startswith("12345 13 2 abab")
    assert len(resolver.resolve("shop.example", "DNSKEY")) == 1
    with pytest.raises(ValueError, match="64 hex digits"):
        dns_server.set_record("shop.example", "DS", "12345 13 2 abcd")


def test_wildcard_answers_names_that_do_not_exist(dns_server: LocalDNSServer,
                                                  resolver: dns.resolver.Resolver) -> None:
    dns_server.set_record("*.shop.example", "CNAME", "parking.example")
    dns_server.set_record("www.shop.example", "A", "192.0.2.1")
    dns_server.set_record("x.deep.shop.example", "A", "192.0.2.2")
    answer = resolver.resolve("anything.shop.example", "CNAME")
    assert answer.rrset is not None and str(answer.rrset.name) == "anything.shop.example."
    assert _texts(answer) == ["parking.example."]
    # A name that exists, and an empty non-terminal (the closest encloser), are not expanded.
    assert _texts(resolver.resolve("www.shop.example", "A")) == ["192.0.2.1"]
    assert resolver.resolve("deep.shop.example", "A", raise_on_no_answer=False).rrset is None
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("a.b.example", "A")


def test_conflict_serves_a_cname_beside_other_data_and_two_cnames(
    dns_server: LocalDNSServer,
) -> None:
    dns_server.set_record("shop.example", "CNAME", "domain.ve.ai")
    with pytest.raises(ValueError, match="can coexist"):
        dns_server.set_record("shop.example", "A", "192.0.2.1")
    dns_server.set_record("shop.example", "A", "192.0.2.1", conflict=True)
    dns_server.add_record("shop.example", "CNAME", "old.example", conflict=True)
    # Each type from its own RRset, as the broken provider answers.
    assert [str(r) for rrset in _query(dns_server, "shop.example", "A").answer
            for r in rrset] == ["192.0.2.1"]
    message = dns.message.make_query("shop.example", "CNAME")
    reply = dns.query.udp(message, "127.0.0.1", port=dns_server.port, timeout=2,
                          one_rr_per_rrset=True)
    assert sorted(str(rrset[0]) for rrset in reply.answer) == ["domain.ve.ai.", "old.example."]


def test_ds_without_dnskey_is_servfail_unless_checking_is_disabled(
    dns_server: LocalDNSServer,
) -> None:
    dns_server.set_record("shop.example", "DS", "12345 13 2 " + "ab" * 32)
    dns_server.set_record("www.shop.example", "CNAME", "domain.ve.ai")
    query = dns.message.make_query("www.shop.example", "CNAME")
    reply = dns.query.udp(query, "127.0.0.1", port=dns_server.port, timeout=2)
    assert reply.rcode() == dns.rcode.SERVFAIL
    query.flags |= dns.flags.CD
    reply = dns.query.udp(query, "127.0.0.1", port=dns_server.port, timeout=2)
    assert reply.rcode() == dns.rcode.NOERROR and str(reply.answer[0][0]) == "domain.ve.ai."
    # The DS itself comes from the parent zone, which validates; a DNSKEY mends the chain.
    assert _query(dns_server, "shop.example", "DS").rcode() == dns.rcode.NOERROR
    dns_server.set_record("shop.example", "DNSKEY", "257 3 13 " + "QUJD" * 16)
    query.flags &= ~dns.flags.CD
    assert dns.query.udp(query, "127.0.0.1", port=dns_server.port,
                         timeout=2).rcode() == dns.rcode.NOERROR


def test_query_log_counts_what_was_asked(dns_server: LocalDNSServer) -> None:
    dns_server.reset_queries()
    _query(dns_server, "a.example", "A")
    _query(dns_server, "b.example", "CAA", tcp=True)
    assert dns_server.queries() == [{"name": "a.example", "type": "A", "cd": False},
                                    {"name": "b.example", "type": "CAA", "cd": False}]
    dns_server.reset_queries()
    assert dns_server.queries() == []
