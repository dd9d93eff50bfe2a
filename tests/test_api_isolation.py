"""Membership isolation: nobody reads or changes another workspace's domains through the API.

Two workspaces, A and B, each with an owner, an admin and a read-only member; plus an
outsider and staff. Every operation on B's domain is tried as every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from domains.models import CustomDomain, DomainEvent, DomainStatus, Role
from tests.factories import (
    CustomDomainFactory,
    MembershipFactory,
    UserFactory,
    WorkspaceFactory,
    staff_with_perms,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # Factories hash a password per user; PBKDF2 makes that ~0.3 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

B_HOST = "gallery.b-client.com"


@dataclass
class World:
    users: dict[str, Any]
    a_domain: CustomDomain
    b_domain: CustomDomain


@pytest.fixture
def world(db: Any, settings: Any) -> World:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            k: "100000/minute" for k in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        },
    }
    a = WorkspaceFactory(slug="ws-a")
    b = WorkspaceFactory(slug="ws-b")
    users = {
        "a_owner": MembershipFactory(workspace=a, role=Role.OWNER).user,
        "a_admin": MembershipFactory(workspace=a, role=Role.ADMIN).user,
        "a_member": MembershipFactory(workspace=a, role=Role.MEMBER).user,
        "b_owner": MembershipFactory(workspace=b, role=Role.OWNER).user,
        "b_admin": MembershipFactory(workspace=b, role=Role.ADMIN).user,
        "b_member": MembershipFactory(workspace=b, role=Role.MEMBER).user,
        "outsider": UserFactory(),
        "staff": staff_with_perms("add_customdomain", "change_customdomain",
                                  "delete_customdomain", "view_customdomain"),
        # Staff without model permissions is a plain user.
        "staff_bare": UserFactory(is_staff=True),
    }
    return World(
        users=users,
        a_domain=CustomDomainFactory(workspace=a, hostname="gallery.a-client.com"),
        b_domain=CustomDomainFactory(workspace=b, hostname=B_HOST, status=DomainStatus.ACTIVE),
    )


def as_user(world: World, name: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.users[name])
    return client


# Who may do what to B's domain: "read" (list/detail), "write" (verify/delete/register in B).
CAN_READ_B = {"b_owner", "b_admin", "b_member", "staff"}
CAN_WRITE_B = {"b_owner", "b_admin", "staff"}
EVERYONE = ["a_owner", "a_admin", "a_member", "b_owner", "b_admin", "b_member", "outsider",
            "staff", "staff_bare"]


def assert_b_untouched(world: World) -> None:
    b = CustomDomain.objects.get(pk=world.b_domain.pk)
    assert b.status == DomainStatus.ACTIVE
    assert not DomainEvent.objects.filter(domain=b).exists()


@pytest.mark.parametrize("who", EVERYONE)
def test_list_shows_only_your_workspaces(world: World, who: str) -> None:
    r = as_user(world, who).get("/api/domains/")
    assert r.status_code == 200
    hosts = {d["hostname"] for d in r.json()["results"]}
    assert (B_HOST in hosts) == (who in CAN_READ_B)
    assert ("gallery.a-client.com" in hosts) == (who.startswith("a_") or who == "staff")


@pytest.mark.parametrize("who", EVERYONE)
def test_list_of_b_by_workspace_filter(world: World, who: str) -> None:
    r = as_user(world, who).get("/api/domains/?workspace=ws-b")
    if who in CAN_READ_B:
        assert r.status_code == 200
        assert [d["hostname"] for d in r.json()["results"]] == [B_HOST]
    else:
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "not_member"


@pytest.mark.parametrize("who", EVERYONE)
@pytest.mark.parametrize("path", [f"/api/domains/{B_HOST}/", f"/api/domains/verify/{B_HOST}"])
def test_reading_b_s_domain(world: World, who: str, path: str) -> None:
    r = as_user(world, who).get(path)
    if who in CAN_READ_B:
        assert r.status_code == 200
        assert r.json()["workspace"] == "ws-b"
    else:
        # 404, not 403: an outsider cannot even learn that B holds the hostname here.
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("who", EVERYONE)
def test_verifying_b_s_domain(world: World, who: str) -> None:
    r = as_user(world, who).post(f"/api/domains/{B_HOST}/verify")
    if who in CAN_WRITE_B:
        assert r.status_code == 202
        return
    expected = (403, "role_read_only") if who in CAN_READ_B else (404, "not_found")
    assert (r.status_code, r.json()["error"]["code"]) == expected
    assert_b_untouched(world)


@pytest.mark.parametrize("who", EVERYONE)
def test_removing_b_s_domain(world: World, who: str) -> None:
    r = as_user(world, who).delete(f"/api/domains/{B_HOST}/")
    if who in CAN_WRITE_B:
        assert r.status_code == 200
        assert CustomDomain.objects.get(pk=world.b_domain.pk).status == DomainStatus.REMOVED
        return
    expected = (403, "role_read_only") if who in CAN_READ_B else (404, "not_found")
    assert (r.status_code, r.json()["error"]["code"]) == expected
    assert_b_untouched(world)


@pytest.mark.parametrize("who", EVERYONE)
@pytest.mark.parametrize("legacy", [False, True])
def test_registering_in_b(world: World, who: str, legacy: bool) -> None:
    if legacy:
        r = as_user(world, who).post(
            "/api/domains/register",
            {"subdomain": "new", "domain": "b-client.com", "workspaceId": "ws-b"},
            format="json",
        )
    else:
        r = as_user(world, who).post(
            "/api/domains/", {"hostname": "new.b-client.com", "workspace": "ws-b"}, format="json"
        )
    if who in CAN_WRITE_B:
        assert r.status_code == (200 if legacy else 201)  # the seed path answers as the seed
        return
    expected = (403, "role_read_only") if who in CAN_READ_B else (403, "not_member")
    assert (r.status_code, r.json()["error"]["code"]) == expected
    assert not CustomDomain.objects.filter(hostname="new.b-client.com").exists()


def test_a_cannot_take_b_s_hostname_without_proof(world: World, dns_server: Any) -> None:
    r = as_user(world, "a_owner").post(
        "/api/domains/", {"hostname": B_HOST, "workspace": "ws-a"}, format="json"
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "hostname_taken"
    assert_b_untouched(world)


def test_a_user_in_both_workspaces_sees_both(world: World) -> None:
    user = world.users["a_owner"]
    MembershipFactory(workspace=world.b_domain.workspace, user=user, role=Role.MEMBER)
    client = APIClient()
    client.force_authenticate(user)
    hosts = {d["hostname"] for d in client.get("/api/domains/").json()["results"]}
    assert hosts == {"gallery.a-client.com", B_HOST}
    # ...but the read-only role in B still cannot write there.
    assert client.delete(f"/api/domains/{B_HOST}/").status_code == 403
