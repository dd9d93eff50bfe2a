"""The executor's batch writes, for the one pass over the pending crowd: the plain waits of
a batch in one UPDATE that is still a compare-and-swap per row, and the DNS doctor's facts
kept per answer."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from domains.integrations import dns
from domains.models import CustomDomain, DomainStatus
from tests.factories import CustomDomainFactory
from workflow import check_decisions as cd
from workflow import checks

WRONG = "No record for {}."


def _wrong(host: str) -> dns.RoutingCheck:
    return dns.RoutingCheck(host, False, "nxdomain", WRONG.format(host))


@pytest.mark.django_db
def test_plain_waits_are_one_update_and_a_row_that_moved_on_is_not_overwritten() -> None:
    now = timezone.now()
    domains = [CustomDomainFactory(hostname=f"shop{i}.client.com",
                                   status=DomainStatus.PENDING_VALIDATION) for i in range(4)]
    waits = []
    for d in domains:
        record = cd.checks_of(d)
        record["dns"] = cd.dns_record(_wrong(d.hostname), now)
        waits.append((d, cd.pending_wait(d, _wrong(d.hostname), False, record, {},
                                         ownership_ok=True, now=now)))
    # Removed by its owner after the check read it: the check's results are not for it.
    moved = domains[1]
    CustomDomain.objects.filter(pk=moved.pk).update(status=DomainStatus.REMOVED)

    with CaptureQueriesContext(connection) as queries:
        outcomes = checks._save_waits(waits, now=now, source="test")
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 1

    by_id = {o.domain_id: o for o in outcomes}
    assert by_id[moved.pk].outcome == cd.Outcome.SKIPPED
    assert [by_id[d.pk].outcome for d in domains if d != moved] == [cd.Outcome.WAITING] * 3
    gone = CustomDomain.objects.get(pk=moved.pk)
    assert gone.status == DomainStatus.REMOVED and gone.last_checked_at is None
    for d in domains:
        if d == moved:
            continue
        row = CustomDomain.objects.get(pk=d.pk)
        assert row.last_checked_at == now and row.check_count == d.check_count + 1
        assert row.checks["dns"]["detail"] == WRONG.format(d.hostname)
        assert row.next_check_at == waits[domains.index(d)][1].updates["next_check_at"]


@pytest.mark.django_db
def test_the_doctor_looks_up_an_unchanged_answer_once(monkeypatch: Any) -> None:
    domain = CustomDomainFactory(hostname="shop.client.com",
                                 status=DomainStatus.PENDING_VALIDATION)
    asked: list[dict[str, Any]] = []

    def gather(names: dict[str, Any], cache: Any = None) -> dict[str, dns.DnsFacts]:
        asked.append(names)
        return {host: dns.DnsFacts(host, zone, nxdomain=True, negative_ttl=60)
                for host, (zone, _) in names.items()}

    monkeypatch.setattr(checks.dns, "gather_facts_many", gather)
    answer = {domain.hostname: dns.DnsResult(_wrong(domain.hostname))}
    first = checks._dns_doctor([domain], answer, now=timezone.now())
    again = checks._dns_doctor([domain], answer, now=timezone.now())
    assert len(asked) == 1
    assert first == again and first[domain.hostname]
    # A different answer is a new question.
    other = dns.RoutingCheck(domain.hostname, False, "wrong_target", "CNAME to elsewhere.",
                             (domain.hostname, "elsewhere.example"))
    checks._dns_doctor([domain], {domain.hostname: dns.DnsResult(other)}, now=timezone.now())
    assert len(asked) == 2
