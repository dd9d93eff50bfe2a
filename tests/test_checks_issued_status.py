"""The DNS doctor's extra lookups for a pending domain stop once its certificate is issued,
whichever spelling the certificate's source uses (ACM `ISSUED`, CloudFront-managed `issued`).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from domains.integrations import dns
from domains.models import DomainStatus
from tests.factories import CustomDomainFactory
from workflow import checks

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("status", "asked"), [
    ("ISSUED", False), ("issued", False), ("PENDING_VALIDATION", True), ("pending", True),
])
def test_the_doctor_does_not_look_again_once_the_certificate_is_issued(
    monkeypatch: Any, status: str, asked: bool,
) -> None:
    domain = CustomDomainFactory(hostname="shop.client.com",
                                 status=DomainStatus.PENDING_VALIDATION,
                                 certificate_status=status)
    wanted: list[dict[str, Any]] = []

    def gather(names: dict[str, Any], cache: Any = None) -> dict[str, Any]:
        wanted.append(names)
        return {}

    monkeypatch.setattr(checks.dns, "gather_facts_many", gather)
    ok = dns.DnsResult(dns.RoutingCheck(domain.hostname, True, "points_to_target", ""))
    checks._dns_doctor([domain], {domain.hostname: ok}, now=timezone.now())
    assert bool(wanted) is asked
