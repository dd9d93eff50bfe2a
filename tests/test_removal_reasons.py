"""The `removal` reason on removed domains: the same answer in a list as for one domain,
at a cost that does not grow with the number of removed domains listed."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from domains import selectors
from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind, Role
from tests.factories import CustomDomainFactory, MembershipFactory

pytestmark = pytest.mark.django_db

# (source of the removal, status before it, plan detached first?) -> the code the API gives.
CASES = [
    ("system:plan", DomainStatus.ACTIVE, False, "plan_limit"),
    ("system:check", DomainStatus.ACTIVE, True, "plan_limit"),
    ("service:sync", DomainStatus.ACTIVE, False, "workspace_deleted"),
    ("system:check", DomainStatus.MISCONFIGURED, False, "dns_not_pointing"),
    ("api", DomainStatus.ACTIVE, False, "removed_by_member"),
    ("admin", DomainStatus.ACTIVE, False, "removed_by_staff"),
    ("command:remove", DomainStatus.ACTIVE, False, "removed_by_staff"),
    ("somewhere", DomainStatus.ACTIVE, False, "removed"),
]


def _removed(workspace: object, n: int, source: str, before: str, detached: bool
             ) -> CustomDomain:
    domain = CustomDomainFactory(workspace=workspace, hostname=f"r{n}.client.com",
                                 status=DomainStatus.REMOVED)
    DomainEvent.objects.create(domain=domain, kind=EventKind.STATUS_CHANGED, source=source,
                               from_status=before, to_status=DomainStatus.REMOVED,
                               message=f"removed #{n}")
    if detached:  # recorded after the removal it explains, as veai.plans does
        DomainEvent.objects.create(domain=domain, kind=EventKind.PLAN_DETACHED, source=source)
    return domain


def _list_removed(client: APIClient) -> tuple[dict[str, dict[str, str]], int]:
    with CaptureQueriesContext(connection) as queries:
        r = client.get("/api/domains/?workspace=acme&status=removed&page_size=100")
    assert r.status_code == 200, r.content
    return {d["hostname"]: d["removal"] for d in r.json()["results"]}, len(queries)


def test_a_list_of_removed_domains_gives_each_reason_without_a_query_per_domain() -> None:
    membership = MembershipFactory(workspace__slug="acme", role=Role.OWNER)
    client = APIClient()
    client.force_authenticate(membership.user)
    first = [_removed(membership.workspace, n, *case[:3]) for n, case in enumerate(CASES[:2])]
    _, few = _list_removed(client)
    rest = [_removed(membership.workspace, n, *case[:3])
            for n, case in enumerate(CASES[2:], start=2)]
    listed, many = _list_removed(client)

    assert many == few, f"{few} queries for 2 removed domains, {many} for {len(CASES)}"
    for n, (domain, (*_, code)) in enumerate(zip(first + rest, CASES, strict=True)):
        alone = selectors.domain_removal(CustomDomain.objects.get(pk=domain.pk))
        assert listed[domain.hostname] == alone == {"code": code, "message": f"removed #{n}"}


def test_a_removed_domain_without_its_event_still_has_a_reason() -> None:
    domain = CustomDomainFactory(status=DomainStatus.REMOVED)
    assert selectors.domain_removal(domain) == {"code": "removed", "message": ""}
    assert selectors.domain_removal(CustomDomainFactory()) is None
