"""The DNS doctor's decision as a table: facts in, codes out, no servers (the integration
tests in test_dns_doctor.py build each mistake in the real local DNS server)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domains import dns_doctor
from domains.dns_doctor import DiagnosisCode as C
from domains.integrations.dns import DnsFacts
from domains.integrations.dns_caa import CaaRecord, CaaResult

NOW = datetime(2026, 12, 7, 13, 5, tzinfo=UTC)
HOST, ZONE, TARGET = "gallery.client.com", "client.com", "domain.ve.ai"


def facts(**fields: Any) -> DnsFacts:
    return DnsFacts(HOST, ZONE, **fields)


def caa(level: str, *issuers: str) -> CaaResult:
    return CaaResult(HOST, found_at=level,
                     records=tuple(CaaRecord(0, "issue", i) for i in issuers))


@pytest.mark.parametrize(("given", "routing_ok", "expected"), [
    (facts(nxdomain=True), False, [C.NO_RECORD]),
    (facts(cnames=("domain.ve.ai.client.com",)), False, [C.ZONE_APPENDED]),
    (facts(cnames=("domian.ve.ai",)), False, [C.TYPO]),
    (facts(cnames=("old.host.net",)), False, [C.WRONG_TARGET]),
    (facts(cnames=("old.host.net", TARGET)), False, [C.TWO_CNAMES]),
    (facts(cnames=(TARGET, "old.host.net")), True, [C.TWO_CNAMES]),
    (facts(cnames=("old.host.net",), addresses=("192.0.2.1",)), False,
     [C.WRONG_TARGET, C.ADDRESS_BESIDE_CNAME]),
    (facts(addresses=("192.0.2.1",)), True, [C.ADDRESS_BESIDE_CNAME]),
    (facts(addresses=("104.16.0.1",)), False, [C.CDN_PROXIED]),
    (facts(addresses=("192.0.2.1",)), False, [C.ADDRESS_INSTEAD_OF_CNAME]),
    (facts(addresses=("192.0.2.1",), wildcard=("192.0.2.1",)), False, [C.WILDCARD]),
    (facts(cnames=("park.example",), wildcard=("park.example",)), False, [C.WILDCARD]),
    (facts(has_mx=True, txt=("v=spf1",)), False, [C.RECORDS_BLOCK_CNAME]),
    (facts(caa=caa(ZONE, "letsencrypt.org")), True, [C.CAA_FORBIDS_AMAZON]),
    # CAA met through a wrong CNAME is the old target's (e.g. cname.vercel-dns.com).
    (facts(cnames=("cname.vercel-dns.com",), caa=caa(HOST, "letsencrypt.org")), False,
     [C.WRONG_TARGET]),
    (facts(caa=caa(ZONE, "letsencrypt.org", "amazon.com")), True, []),
    (facts(caa=caa(ZONE, "amazontrust.com; account=1")), True, []),
    (facts(cnames=(TARGET,), dnssec_broken=True, ds_without_dnskey=True), False,
     [C.DNSSEC_BROKEN]),
    (facts(transient="timeout"), False, []),
    (facts(cnames=(TARGET,)), True, []),
])
def test_diagnose(given: DnsFacts, routing_ok: bool, expected: list[C]) -> None:
    found = dns_doctor.diagnose(given, target=TARGET, routing_ok=routing_ok, now=NOW)
    assert [d.code for d in found if d.code != C.OLD_ANSWER_CACHED] == expected
    for d in found:
        assert d.message and d.fix


@pytest.mark.parametrize(("addresses", "expected"), [
    (("203.0.113.1",), []),
    (("203.0.113.1", "192.0.2.9"), [C.APEX]),
    ((), [C.APEX]),
])
def test_apex(addresses: tuple[str, ...], expected: list[C]) -> None:
    given = DnsFacts(ZONE, ZONE, addresses=addresses)
    found = dns_doctor.diagnose(given, target=TARGET, routing_ok=False, apex=True,
                                apex_ips=("203.0.113.1",), now=NOW)
    assert [d.code for d in found if d.code != C.OLD_ANSWER_CACHED] == expected


@pytest.mark.parametrize(("value", "typo"), [
    ("domian.ve.ai", True), ("domain.ve.ia", True), ("domain.veai.com", True),
    ("domainve.ai", True), ("domain.ve.ai", False), ("client.wixsite.com", False),
    ("ghs.googlehosted.com", False), ("ve.ai", False),
])
def test_is_typo(value: str, typo: bool) -> None:
    assert dns_doctor.is_typo(value, TARGET) is typo


def test_every_code_has_words_and_is_documented() -> None:
    with open("docs/dns-doctor.md", encoding="utf-8") as doc:
        text = doc.read()
    for code in C:
        assert dns_doctor.short_words(code)
        assert f"| `{code.value}` |" in text


def test_data_files_name_their_source_and_date() -> None:
    assert len(dns_doctor.providers()) >= 20
    assert {c.name for c in dns_doctor.cdns()} >= {"Cloudflare", "Fastly"}
    for name in ("dns_providers.json", "cdn_ranges.json"):
        data = dns_doctor._load(name)
        for entry in data.get("providers", data.get("cdns")):
            assert entry["source"] and entry["retrieved"]
