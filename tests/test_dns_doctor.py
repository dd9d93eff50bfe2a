"""The DNS doctor against the real loopback DNS server: each test builds one mistake customers
really make (the codes of docs/dns-doctor.md), runs the check a domain gets,
and reads the diagnosis it stored: the words the API, the seed's `message`, the admin and
the emails show.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from domains import dns_doctor
from domains.dns_doctor import DiagnosisCode
from domains.integrations import dns
from domains.models import CustomDomain, DomainStatus, Role
from domains.task_names import TaskName
from staff import support
from tests.factories import CustomDomainFactory, MembershipFactory, UserFactory, WorkspaceFactory
from tests.notify_helpers import LOCMEM_EMAIL
from workflow import checks

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

TARGET = "domain.ve.ai"
NOW = datetime(2026, 12, 7, 13, 5, tzinfo=UTC)


def check(hostname: str, **fields: Any) -> list[dict[str, str]]:
    """Register `hostname` as a pending domain, run its check, return the stored diagnosis."""
    domain = CustomDomainFactory(hostname=hostname, **fields)
    # Ticking: a frozen clock would stop the resolver's own timeouts.
    with time_machine.travel(NOW, tick=True):
        checks.domain_check(domain_id=domain.pk, force=True)
    domain = CustomDomain.objects.get(pk=domain.pk)
    return list(domain.checks["dns"]["diagnosis"])


def codes(diagnosis: list[dict[str, str]]) -> list[str]:
    return [d["code"] for d in diagnosis]


def by_code(diagnosis: list[dict[str, str]], code: DiagnosisCode) -> dict[str, str]:
    found = [d for d in diagnosis if d["code"] == code]
    assert found, f"no {code} in {codes(diagnosis)}"
    return found[0]


# 1. The zone appended to a value without a trailing dot.
def test_zone_appended_to_the_value(dns_server: Any) -> None:
    dns_server.set_record("client.com", "NS", "ns1.registrar-servers.com")
    dns_server.set_record("gallery.client.com", "CNAME", "domain.ve.ai.client.com")
    diagnosis = check("gallery.client.com")
    found = by_code(diagnosis, DiagnosisCode.ZONE_APPENDED)
    assert "domain.ve.ai.client.com" in found["message"]
    assert "added client.com" in found["message"]
    assert "Namecheap" in found["fix"] and "domain.ve.ai." in found["fix"]
    assert DiagnosisCode.TYPO not in codes(diagnosis)


# 2. Proxied by the customer's CDN (Cloudflare's orange cloud; Fastly too).
@pytest.mark.parametrize(("address", "cdn"), [("104.16.132.229", "Cloudflare"),
                                              ("2606:4700::6810:84e5", "Cloudflare"),
                                              ("151.101.1.57", "Fastly")])
def test_proxied_by_the_customers_cdn(dns_server: Any, address: str, cdn: str) -> None:
    rtype = "AAAA" if ":" in address else "A"
    dns_server.set_record("gallery.client.com", rtype, address)
    found = by_code(check("gallery.client.com"), DiagnosisCode.CDN_PROXIED)
    assert cdn in found["message"] and address in found["message"]
    if cdn == "Cloudflare":
        assert "grey" in found["fix"]


def test_an_address_outside_every_cdn_is_not_called_proxied(dns_server: Any) -> None:
    dns_server.set_record("gallery.client.com", "A", "192.0.2.10")
    diagnosis = check("gallery.client.com")
    assert codes(diagnosis)[0] == DiagnosisCode.ADDRESS_INSTEAD_OF_CNAME
    assert DiagnosisCode.CDN_PROXIED not in codes(diagnosis)


# 3. Conflicting records.
@pytest.mark.parametrize("cname", [TARGET, "old-host.example.net"])
def test_leftover_address_beside_the_cname(dns_server: Any, cname: str) -> None:
    # A broken provider serves the old A record beside the CNAME (right or wrong).
    dns_server.set_record("gallery.client.com", "CNAME", cname)
    dns_server.set_record("gallery.client.com", "A", "192.0.2.10", conflict=True)
    assert dns.check_routing("gallery.client.com").ok is (cname == TARGET)
    found = by_code(check("gallery.client.com"), DiagnosisCode.ADDRESS_BESIDE_CNAME)
    assert "192.0.2.10" in found["message"] and "delete the A/AAAA records" in found["fix"]


def test_two_cnames(dns_server: Any) -> None:
    dns_server.add_record("gallery.client.com", "CNAME", "old-host.example.net")
    dns_server.add_record("gallery.client.com", "CNAME", TARGET, conflict=True)
    diagnosis = check("gallery.client.com")
    found = by_code(diagnosis, DiagnosisCode.TWO_CNAMES)
    assert "old-host.example.net" in found["message"] and TARGET in found["fix"]


@pytest.mark.parametrize(("rtype", "value", "words"), [
    ("MX", "10 mail.client.com", "MX records"), ("TXT", "v=spf1 -all", "TXT records")])
def test_mx_or_txt_at_the_name_blocks_a_cname(dns_server: Any, rtype: str, value: str,
                                              words: str) -> None:
    dns_server.set_record("gallery.client.com", rtype, value)
    found = by_code(check("gallery.client.com"), DiagnosisCode.RECORDS_BLOCK_CNAME)
    assert words in found["message"]


def test_a_wildcard_answers_for_the_name(dns_server: Any) -> None:
    dns_server.set_record("*.client.com", "CNAME", "parking.registrar.example")
    diagnosis = check("gallery.client.com")
    found = by_code(diagnosis, DiagnosisCode.WILDCARD)
    assert "*.client.com" in found["message"] and "parking.registrar.example" in found["message"]
    assert DiagnosisCode.WRONG_TARGET not in codes(diagnosis)


# 4. CAA that does not allow Amazon, on the name or a parent.
@pytest.mark.parametrize("level", ["client.com", "shop.client.com"])
def test_caa_that_does_not_allow_amazon(dns_server: Any, level: str) -> None:
    dns_server.set_record(level, "CAA", '0 issue "letsencrypt.org"')
    dns_server.set_record("gallery.shop.client.com", "CNAME", TARGET)  # routing is right
    diagnosis = check("gallery.shop.client.com")
    found = by_code(diagnosis, DiagnosisCode.CAA_FORBIDS_AMAZON)
    assert f'{level}. CAA 0 issue "amazon.com"' in found["fix"]
    assert f"at {level}" in found["fix"] and "letsencrypt.org" in found["message"]
    assert codes(diagnosis) == [DiagnosisCode.CAA_FORBIDS_AMAZON]


def test_caa_on_the_name_itself(dns_server: Any) -> None:
    # A name with its own CAA cannot hold a CNAME: both mistakes are named.
    dns_server.set_record("gallery.client.com", "CAA", '0 issue "digicert.com"')
    diagnosis = check("gallery.client.com")
    assert codes(diagnosis)[:2] == [DiagnosisCode.CAA_FORBIDS_AMAZON,
                                    DiagnosisCode.RECORDS_BLOCK_CNAME]
    assert 'gallery.client.com. CAA 0 issue "amazon.com"' in diagnosis[0]["fix"]


def test_caa_that_allows_amazon_is_no_diagnosis(dns_server: Any) -> None:
    dns_server.add_record("client.com", "CAA", '0 issue "letsencrypt.org"')
    dns_server.add_record("client.com", "CAA", '0 issue "amazon.com"')
    dns_server.set_record("gallery.client.com", "CNAME", TARGET)
    assert check("gallery.client.com") == []


# 5. DNSSEC broken: a DS at the registrar, no DNSKEY in the zone.
def test_dnssec_broken(dns_server: Any) -> None:
    dns_server.set_record("client.com", "DS", "12345 13 2 " + "ab" * 32)
    dns_server.set_record("gallery.client.com", "CNAME", TARGET)
    assert dns.check_routing("gallery.client.com").transient  # what resolvers see: SERVFAIL
    diagnosis = check("gallery.client.com")
    found = by_code(diagnosis, DiagnosisCode.DNSSEC_BROKEN)
    assert "DS record" in found["message"] and "no DNSKEY" in found["message"]
    assert "registrar" in found["fix"]
    assert any(q["cd"] for q in dns_server.queries())  # the retry with checking disabled


# 6. Apex: A records to our anycast addresses (apex support on).
def test_apex_names_the_anycast_addresses_and_the_providers_alias(dns_server: Any,
                                                                    settings: Any) -> None:
    settings.VEDOMAINS_CDN_APEX_IPS = ["203.0.113.1", "203.0.113.2"]
    settings.VEDOMAINS_CDN_STRATEGY = "saas-tenant"
    dns_server.set_record("client.com", "NS", "ns1.dnsimple.com")
    dns_server.set_record("client.com", "A", "192.0.2.10")
    found = by_code(check("client.com"), DiagnosisCode.APEX)
    assert "a CNAME cannot exist there" in found["message"] and "192.0.2.10" in found["message"]
    assert "203.0.113.1, 203.0.113.2" in found["fix"]
    assert "DNSimple offers ALIAS record" in found["fix"]


# 7. Typos.
@pytest.mark.parametrize("typo", ["domian.ve.ai", "domain.ve.ia", "domain.veai.com"])
def test_typo_in_the_target(dns_server: Any, typo: str) -> None:
    dns_server.set_record("gallery.client.com", "CNAME", typo)
    found = by_code(check("gallery.client.com"), DiagnosisCode.TYPO)
    assert f"Did you mean {TARGET}?" in found["message"] and typo in found["message"]


def test_another_host_is_not_a_typo(dns_server: Any) -> None:
    dns_server.set_record("gallery.client.com", "CNAME", "client.wixsite.com")
    assert codes(check("gallery.client.com"))[0] == DiagnosisCode.WRONG_TARGET


# 8. When the fix will be seen: the TTL of the answer resolvers cache, as a time.
@pytest.mark.parametrize(("rtype", "value", "ttl", "until"), [
    ("CNAME", "old-host.example.net", 3600, "14:05 UTC"),
    ("A", "192.0.2.10", 300, "13:10 UTC"),
])
def test_when_it_will_be_seen(dns_server: Any, rtype: str, value: str, ttl: int,
                              until: str) -> None:
    dns_server.set_record("gallery.client.com", rtype, value, ttl=ttl)
    found = by_code(check("gallery.client.com"), DiagnosisCode.OLD_ANSWER_CACHED)
    assert until in found["message"]


def test_when_a_missing_name_will_be_seen_uses_the_negative_ttl(dns_server: Any) -> None:
    diagnosis = check("gallery.client.com")
    assert codes(diagnosis) == [DiagnosisCode.NO_RECORD, DiagnosisCode.OLD_ANSWER_CACHED]
    # The local server's SOA caches "no such name" for 60 s.
    assert "13:06 UTC" in diagnosis[1]["message"] and "no such record" in diagnosis[1]["message"]


# 9. Which provider, from the zone's NS records.
@pytest.mark.parametrize(("nameserver", "provider", "url"), [
    ("ns-123.awsdns-45.com", "Amazon Route 53", "https://docs.aws.amazon.com/Route53/"),
    ("ns51.domaincontrol.com", "GoDaddy", "https://www.godaddy.com/help/"),
    ("kim.ns.cloudflare.com", "Cloudflare", "https://developers.cloudflare.com/dns/"),
    ("ns1.unknown-host.example", "", dns_doctor.GENERIC_HELP_URL),
])
def test_which_provider(dns_server: Any, nameserver: str, provider: str, url: str) -> None:
    dns_server.set_record("client.com", "NS", nameserver)
    found = by_code(check("gallery.client.com"), DiagnosisCode.NO_RECORD)
    assert found["docs_url"].startswith(url)
    assert found["fix"].startswith(f"At {provider}," if provider else "At your DNS provider,")
    assert "add a CNAME record with name gallery and value domain.ve.ai" in found["fix"]


# Right DNS, and the cost of the doctor.
def test_a_domain_pointing_at_us_has_no_diagnosis(dns_server: Any) -> None:
    dns_server.set_record("gallery.client.com", "CNAME", TARGET)
    assert check("gallery.client.com", status=DomainStatus.PENDING_VALIDATION) == []


def test_queries_per_diagnosis_stay_few_and_zone_answers_are_shared(dns_server: Any) -> None:
    """The doctor's cost, counted at the server: per name a handful, per zone a few more,
    asked once for all the zone's names in a batch."""
    names = [f"g{i}.client.com" for i in range(10)]
    for name in names:
        dns_server.set_record(name, "CNAME", "old-host.example.net")
    dns_server.set_record("client.com", "NS", "ns1.domaincontrol.com")
    dns_server.reset_queries()
    facts = dns.gather_facts_many({n: ("client.com", False) for n in names})
    queries = dns_server.queries()
    assert all(f.cnames == ("old-host.example.net",) for f in facts.values())
    per_zone = [q for q in queries if not q["name"].startswith("g")]
    per_name = [q for q in queries if q["name"] == "g0.client.com"]
    # CNAME, A, AAAA, CAA at the name; NS, CAA of client.com and com, one wildcard probe.
    assert len(per_name) == 4
    assert len(per_zone) == 4
    assert len(queries) == 4 * len(names) + 4
    print(f"DNS doctor: {len(queries)} queries for {len(names)} names of one zone "
          f"({len(queries) / len(names):.1f} per name)")


def test_the_pure_function_returns_nothing_when_routing_is_right_and_no_caa() -> None:
    facts = dns.DnsFacts("gallery.client.com", "client.com", cnames=(TARGET,))
    assert dns_doctor.diagnose(facts, target=TARGET, routing_ok=True, now=NOW) == []
    later = dns_doctor.diagnose(dns.DnsFacts("gallery.client.com", "client.com", nxdomain=True,
                                             negative_ttl=7200),
                                target=TARGET, routing_ok=False, now=NOW)
    assert "15:05 UTC" in later[-1].message and "2 hours" in later[-1].message


# Shown where the customer looks: the seed's `message`, the API's `diagnosis`.
def test_seed_verify_message_and_api_diagnosis_carry_the_doctor_s_words(
    dns_server: Any, api: Any, workspace: Any
) -> None:
    dns_server.set_record("client.com", "NS", "ns1.registrar-servers.com")
    dns_server.set_record("gallery.client.com", "CNAME", "domain.ve.ai.client.com", ttl=3600)
    check("gallery.client.com", workspace=workspace)
    body = api.get("/api/domains/verify/gallery.client.com").json()
    assert body["status"] == "invalid_cname"
    assert "your DNS provider added client.com" in body["message"]
    assert "At Namecheap, edit the CNAME for gallery" in body["message"]
    assert "until 14:05 UTC" in body["message"]
    detail = api.get("/api/domains/gallery.client.com/").json()
    assert codes(detail["diagnosis"]) == [DiagnosisCode.ZONE_APPENDED,
                                          DiagnosisCode.OLD_ANSWER_CACHED]


def test_seed_verify_explains_a_dnssec_servfail(dns_server: Any, api: Any,
                                                workspace: Any) -> None:
    dns_server.set_record("client.com", "DS", "12345 13 2 " + "ab" * 32)
    dns_server.set_record("gallery.client.com", "CNAME", TARGET)
    check("gallery.client.com", workspace=workspace)
    body = api.get("/api/domains/verify/gallery.client.com").json()
    assert body["status"] == "error" and "DNSSEC" in body["message"]


def test_misconfigured_email_carries_the_diagnosis(
    dns_server: Any, queued_tasks: Any, settings: Any, django_capture_on_commit_callbacks: Any,
) -> None:
    settings.EMAIL_BACKEND = LOCMEM_EMAIL
    workspace = WorkspaceFactory(slug="acme")
    MembershipFactory(workspace=workspace, role=Role.OWNER,
                      user=UserFactory(email="owner@acme.test"))
    now = timezone.now()
    domain = CustomDomainFactory(workspace=workspace, hostname="gallery.client.com",
                                 status=DomainStatus.ACTIVE, activated_at=now, verified_at=now,
                                 next_check_at=now, edge_version=1, edge_synced_version=1)
    dns_server.set_record("client.com", "NS", "kim.ns.cloudflare.com")
    dns_server.set_record("gallery.client.com", "A", "104.16.132.229")  # orange cloud on
    with django_capture_on_commit_callbacks(execute=True):
        assert checks.domain_check(domain_id=domain.pk, force=True).outcome == "misconfigured"
    assert queued_tasks.run(TaskName.NOTIFICATION_SEND) == ["sent"]
    message = mail.outbox[0]
    html = message.alternatives[0][0]
    for body in (message.body, html):
        assert "proxied by Cloudflare" in body
        assert "turn off the proxy for this record" in body
        assert "https://developers.cloudflare.com/dns/proxy-status/" in body


def test_admin_page_shows_the_diagnosis_instead_of_missing(dns_server: Any,
                                                            staff_user: Any) -> None:
    dns_server.set_record("gallery.client.com", "CNAME", "domian.ve.ai")
    check("gallery.client.com")
    domain = CustomDomain.objects.get(hostname="gallery.client.com")
    client = Client()
    client.force_login(staff_user)
    html = client.get(f"/admin/domains/customdomain/{domain.pk}/change/").content.decode()
    assert '<span class="vd-missing">typo in the value</span>' in html
    assert '<span class="vd-missing">missing</span>' not in html
    assert "Did you mean domain.ve.ai?" in html and 'id="vd-diagnosis"' in html


def test_admin_list_and_summary_say_the_mistake(dns_server: Any, staff_user: Any) -> None:
    dns_server.set_record("gallery.client.com", "CNAME", "domain.ve.ai.client.com")
    check("gallery.client.com")
    domain = CustomDomain.objects.get(hostname="gallery.client.com")
    problem = support.domain_problem(domain)
    assert problem.startswith("The CNAME of gallery.client.com points to domain.ve.ai.client.com")
    assert support.domain_summary(domain=domain).reason == problem


def test_a_dns_timeout_costs_no_extra_query(dns_server: Any) -> None:
    dns_server.set_fault("timeout", name="gallery.client.com")
    dns_server.reset_queries()
    assert check("gallery.client.com") == []
    asked = {(q["name"], q["type"]) for q in dns_server.queries()}
    assert asked == {("gallery.client.com", "CNAME")}  # the routing check's own


def test_a_pending_domain_pointing_at_us_costs_the_light_queries(dns_server: Any) -> None:
    dns_server.set_record("gallery.client.com", "CNAME", TARGET)
    dns_server.reset_queries()
    assert check("gallery.client.com") == []
    doctor = [(q["name"], q["type"]) for q in dns_server.queries()][1:]  # after the routing's
    light = [("gallery.client.com", "CAA"), ("client.com", "CAA"), ("com", "CAA"),
             ("gallery.client.com", "CNAME"), ("gallery.client.com", "A"),
             ("gallery.client.com", "AAAA")]
    # The check that first sees the CNAME also reads CAA before asking for a certificate
    # (DNS first, docs/cdn.md): the name and its parents once more, at that one transition.
    gate = [("gallery.client.com", "CAA"), ("client.com", "CAA"), ("com", "CAA")]
    assert sorted(doctor) == sorted(light + gate)
