"""Abuse limits: rate limits per user and per workspace, and bounded certificate requests.

tests/test_api.py has the basic 429 of each limit; this file adds what an abuser would try:
spreading a flood over users, workspaces or the seed paths, and starving other workspaces
of the account's ACM quota. Every 429 carries Retry-After.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from domains.errors import Throttled
from domains.models import CustomDomain, DomainStatus, Role
from tests.factories import CustomDomainFactory, MembershipFactory, WorkspaceFactory
from tests.needs import need_postgresql
from workflow import services

pytestmark = pytest.mark.django_db


pytestmark = pytest.mark.usefixtures("queued_tasks")


def set_rates(settings: Any, **rates: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **{k: "100000/minute" for k in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]},
            **rates,
        },
    }


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def register(client: APIClient, host: str, slug: str, *, legacy: bool = False) -> Any:
    if legacy:
        sub, _, parent = host.partition(".")
        body = {"subdomain": sub, "domain": parent, "workspaceId": slug}
        return client.post("/api/domains/register", body, format="json")
    return client.post("/api/domains/", {"hostname": host, "workspace": slug}, format="json")


def assert_429(response: Any, code: str) -> None:
    assert response.status_code == 429, response.content
    assert response.json()["error"]["code"] == code
    assert int(response["Retry-After"]) > 0


@pytest.fixture
def two_workspaces(db: Any) -> dict[str, Any]:
    a = WorkspaceFactory(slug="ws-a", plan="enterprise")
    b = WorkspaceFactory(slug="ws-b", plan="enterprise")
    return {
        "a": a, "b": b,
        "a_owners": [MembershipFactory(workspace=a, role=Role.OWNER).user for _ in range(3)],
        "b_owner": MembershipFactory(workspace=b, role=Role.OWNER).user,
    }


# --- rate limits ------------------------------------------------------------------------------


def test_one_workspace_s_flood_does_not_throttle_another(
    two_workspaces: dict[str, Any], settings: Any
) -> None:
    """Three owners of A flood it: A's budget runs out, B's owner is not slowed at all."""
    set_rates(settings, domain_register_user="100/hour", domain_register_workspace="5/hour",
              domain_verify_user="100/minute", domain_verify_workspace="4/minute")
    codes = []
    for n in range(9):
        owner = two_workspaces["a_owners"][n % 3]
        codes.append(register(client_for(owner), f"x{n}.a-client.com", "ws-a").status_code)
    assert codes == [201] * 5 + [429] * 4
    assert_429(register(client_for(two_workspaces["a_owners"][0]), "y.a-client.com", "ws-a"),
               "throttled")
    b = client_for(two_workspaces["b_owner"])
    assert [register(b, f"z{n}.b-client.com", "ws-b").status_code for n in range(5)] == [201] * 5

    # The same for verify: A's four checks spent, B's owner still verifies.
    a = client_for(two_workspaces["a_owners"][1])
    verify = [a.post(f"/api/domains/x{n}.a-client.com/verify").status_code for n in range(5)]
    assert verify == [202] * 4 + [429]
    assert b.post("/api/domains/z0.b-client.com/verify").status_code == 202


def test_the_user_limit_spans_workspaces_and_both_register_paths(
    two_workspaces: dict[str, Any], settings: Any
) -> None:
    """One user cannot multiply their budget by using another workspace or the seed path."""
    set_rates(settings, domain_register_user="4/hour")
    user = two_workspaces["b_owner"]
    MembershipFactory(workspace=two_workspaces["a"], user=user, role=Role.ADMIN)
    client = client_for(user)
    got = [
        register(client, "p1.a-client.com", "ws-a").status_code,
        register(client, "p2.b-client.com", "ws-b").status_code,
        register(client, "p3.a-client.com", "ws-a", legacy=True).status_code,
        register(client, "p4.b-client.com", "ws-b", legacy=True).status_code,
    ]
    assert got == [201, 201, 200, 200]  # the seed path answers 200, as the seed did
    assert_429(register(client, "p5.a-client.com", "ws-a"), "throttled")
    assert_429(register(client, "p6.b-client.com", "ws-b", legacy=True), "throttled")
    # Another owner of A is unaffected: the limit is this user's.
    assert register(client_for(two_workspaces["a_owners"][0]), "q.a-client.com",
                    "ws-a").status_code == 201


def test_register_and_verify_budgets_are_separate(
    two_workspaces: dict[str, Any], settings: Any
) -> None:
    set_rates(settings, domain_register_user="1/hour", domain_verify_user="2/minute")
    client = client_for(two_workspaces["b_owner"])
    assert register(client, "one.b-client.com", "ws-b").status_code == 201
    assert_429(register(client, "two.b-client.com", "ws-b"), "throttled")
    # Spending the register budget leaves verify alone, and the reverse.
    assert client.post("/api/domains/one.b-client.com/verify").status_code == 202
    assert client.post("/api/domains/one.b-client.com/verify").status_code == 202
    assert_429(client.post("/api/domains/one.b-client.com/verify"), "throttled")


def test_conflicts_spend_the_user_s_budget_but_bad_input_does_not(
    two_workspaces: dict[str, Any], settings: Any, dns_server: Any
) -> None:
    """Probing who holds a name is rate-limited like registering; a typo is not (a
    developer trying bad input must not be locked out for an hour)."""
    set_rates(settings, domain_register_user="3/hour")
    CustomDomainFactory(hostname="taken.c-client.com", status=DomainStatus.ACTIVE)
    client = client_for(two_workspaces["b_owner"])
    for _ in range(5):
        assert register(client, "not a hostname", "ws-b").status_code == 400
    assert register(client, "taken.c-client.com", "ws-b").status_code == 409
    assert register(client, "taken.c-client.com", "ws-b").status_code == 409
    assert register(client, "ok.b-client.com", "ws-b").status_code == 201
    assert_429(register(client, "ok2.b-client.com", "ws-b"), "throttled")


# --- certificate requests ---------------------------------------------------------------------


def test_pending_certificates_are_capped_per_workspace(
    two_workspaces: dict[str, Any], settings: Any
) -> None:
    """A large plan cannot take the whole ACM quota: other workspaces keep registering."""
    set_rates(settings)
    settings.VEDOMAINS_ACM_MAX_PENDING = 100
    settings.VEDOMAINS_ACM_MAX_PENDING_PER_WORKSPACE = 3
    a = client_for(two_workspaces["a_owners"][0])
    assert [register(a, f"c{n}.a-client.com", "ws-a").status_code for n in range(3)] == [201] * 3
    r = register(a, "c3.a-client.com", "ws-a")
    assert_429(r, "workspace_certificate_quota")
    assert "3 domains waiting for certificates" in r.json()["error"]["message"]
    assert_429(register(a, "c3.a-client.com", "ws-a", legacy=True),
               "workspace_certificate_quota")
    assert not CustomDomain.objects.filter(hostname="c3.a-client.com").exists()
    # B is not affected...
    b = client_for(two_workspaces["b_owner"])
    assert register(b, "c0.b-client.com", "ws-b").status_code == 201
    # ...and A gets room back as soon as one of its claims stops pending.
    CustomDomain.objects.filter(hostname="c0.a-client.com").update(status=DomainStatus.ACTIVE)
    assert register(a, "c3.a-client.com", "ws-a").status_code == 201
    assert_429(register(a, "c4.a-client.com", "ws-a"), "workspace_certificate_quota")
    d = CustomDomain.objects.get(hostname="c1.a-client.com")
    services.domain_remove(domain=d, by=None, source="test")
    assert register(a, "c4.a-client.com", "ws-a").status_code == 201


@pytest.mark.per_domain  # the ACM pending-certificate quota: ACM requests only
def test_the_account_quota_stops_everyone_and_says_when_to_retry(
    two_workspaces: dict[str, Any], settings: Any
) -> None:
    set_rates(settings)
    settings.VEDOMAINS_ACM_MAX_PENDING = 2
    a = client_for(two_workspaces["a_owners"][0])
    b = client_for(two_workspaces["b_owner"])
    assert register(a, "q0.a-client.com", "ws-a").status_code == 201
    assert register(b, "q0.b-client.com", "ws-b").status_code == 201
    assert_429(register(a, "q1.a-client.com", "ws-a"), "certificate_quota")
    assert_429(register(b, "q1.b-client.com", "ws-b", legacy=True), "certificate_quota")
    # Failed claims hold no certificate request open: they do not count.
    CustomDomain.objects.filter(hostname="q0.a-client.com").update(status=DomainStatus.FAILED)
    assert register(b, "q1.b-client.com", "ws-b").status_code == 201


def test_the_cap_also_bounds_the_admin_and_the_service(
    two_workspaces: dict[str, Any], settings: Any, staff_user: Any
) -> None:
    settings.VEDOMAINS_ACM_MAX_PENDING_PER_WORKSPACE = 1
    services.domain_register(workspace=two_workspaces["a"], hostname="s0.a-client.com", by=None)
    with pytest.raises(Throttled) as caught:
        services.domain_register(workspace=two_workspaces["a"], hostname="s1.a-client.com",
                                 by=staff_user, source="admin")
    assert caught.value.code == "workspace_certificate_quota"
    from django.test import Client

    admin = Client()
    admin.force_login(staff_user)
    r = admin.post("/admin/domains/customdomain/add/",
                   {"hostname": "s2.a-client.com", "workspace": two_workspaces["a"].pk})
    assert r.status_code == 200  # the form again, with the refusal
    assert "waiting for certificates" in r.content.decode()
    assert not CustomDomain.objects.filter(hostname="s2.a-client.com").exists()


@pytest.mark.django_db(transaction=True)
def test_parallel_registrations_cannot_overshoot_the_cap(settings: Any) -> None:
    """Eight requests at once for a cap of three: the workspace lock lets exactly three in."""
    need_postgresql("row locks across connections; SQLite serializes anyway")
    settings.VEDOMAINS_ACM_MAX_PENDING_PER_WORKSPACE = 3
    workspace = WorkspaceFactory(slug="race", plan="enterprise")
    results: list[str] = []
    barrier = threading.Barrier(8)

    def attempt(n: int) -> None:
        barrier.wait()
        try:
            services.domain_register(workspace=workspace, hostname=f"r{n}.race-client.com",
                                     by=None)
            results.append("created")
        except Throttled as exc:
            results.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["created"] * 3 + ["workspace_certificate_quota"] * 5
    assert CustomDomain.objects.filter(workspace=workspace).count() == 3
