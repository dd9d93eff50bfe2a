"""Tenant isolation: the admin matrix, and the API cases tests/test_api_isolation.py lacks.

Two workspaces, A and B, each with an owner, an admin and a member; an outsider; staff
with no permissions; staff with view-only permission; a superuser. Every admin page and
every admin action is tried as each of them: only staff get in, only staff with the
permission act, and every action is audited with the acting user. For the API: hostname
spellings, the seed's polling path, removed records, and real tokens of users who lost
their membership or were deactivated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind, Membership, Role
from notifications.models import WebhookEndpoint
from tests.factories import (
    CustomDomainFactory,
    MembershipFactory,
    UserFactory,
    WebhookEndpointFactory,
    WorkspaceFactory,
)
from tests.notify_helpers import TaskRecorder

pytestmark = pytest.mark.django_db

A_HOST = "gallery.a-client.com"
B_HOST = "gallery.b-client.com"
NON_STAFF = ["anonymous", "a_owner", "a_admin", "a_member", "b_owner", "b_admin", "b_member",
             "outsider"]


@dataclass
class World:
    users: dict[str, Any]
    a_domain: CustomDomain
    b_domain: CustomDomain


@pytest.fixture(autouse=True)
def _no_broker(queued_tasks: TaskRecorder) -> list[tuple[str, tuple[Any, ...]]]:
    return queued_tasks.calls


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
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    users = {
        "anonymous": None,
        "a_owner": MembershipFactory(workspace=a, role=Role.OWNER).user,
        "a_admin": MembershipFactory(workspace=a, role=Role.ADMIN).user,
        "a_member": MembershipFactory(workspace=a, role=Role.MEMBER).user,
        "b_owner": MembershipFactory(workspace=b, role=Role.OWNER).user,
        "b_admin": MembershipFactory(workspace=b, role=Role.ADMIN).user,
        "b_member": MembershipFactory(workspace=b, role=Role.MEMBER).user,
        "outsider": UserFactory(),
        "staff_no_perms": UserFactory(is_staff=True),
        "staff_viewer": viewer,
        "superuser": UserFactory(is_staff=True, is_superuser=True),
    }
    return World(
        users=users,
        a_domain=CustomDomainFactory(workspace=a, hostname=A_HOST, status=DomainStatus.ACTIVE),
        b_domain=CustomDomainFactory(workspace=b, hostname=B_HOST, status=DomainStatus.ACTIVE),
    )


def browser(world: World, who: str) -> Client:
    client = Client()
    if world.users[who] is not None:
        client.force_login(world.users[who])
    return client


def admin_urls(world: World) -> list[str]:
    """Every page of every registered model admin, with a real object where it needs one."""
    WebhookEndpointFactory()
    DomainEvent.objects.create(domain=world.b_domain, kind=EventKind.ERROR, source="test")
    urls = [reverse("admin:index"), reverse("domains_dashboard")]
    for model in admin.site._registry:
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        urls += [reverse(f"{prefix}_changelist"), reverse(f"{prefix}_add")]
        obj = model._default_manager.first()
        if obj is not None:
            urls += [reverse(f"{prefix}_{view}", args=[obj.pk])
                     for view in ("change", "delete", "history")]
    return urls


def assert_sent_to_login(response: Any) -> None:
    assert response.status_code == 302, response.status_code
    assert response["Location"].startswith("/admin/login/")


# --- admin pages ------------------------------------------------------------------------------


@pytest.mark.parametrize("who", NON_STAFF)
def test_no_admin_page_opens_for_non_staff(world: World, who: str) -> None:
    client = browser(world, who)
    urls = admin_urls(world)
    assert len(urls) > 20
    for url in urls:
        assert_sent_to_login(client.get(url))
        assert_sent_to_login(client.post(url, {}))


def test_staff_without_permissions_see_no_model(world: World) -> None:
    client = browser(world, "staff_no_perms")
    assert client.get(reverse("admin:index")).status_code == 200
    for url in admin_urls(world):
        if url in (reverse("admin:index"), reverse("domains_dashboard")):
            continue
        assert client.get(url).status_code == 403, url


def test_staff_viewers_can_read_everything_and_change_nothing(world: World) -> None:
    client = browser(world, "staff_viewer")
    for url in admin_urls(world):
        r = client.get(url)
        if url.endswith(("/add/", "/delete/")):
            assert r.status_code == 403, url
        else:
            assert r.status_code == 200, url


def test_superusers_can_open_every_page(world: World) -> None:
    client = browser(world, "superuser")
    for url in admin_urls(world):
        r = client.get(url)
        # Append-only and system-written records refuse add/delete even to superusers.
        assert r.status_code in (200, 403), (url, r.status_code)
        assert r.status_code == 200 or url.endswith(("/add/", "/delete/")), url


# --- admin actions ----------------------------------------------------------------------------

DOMAIN_ACTIONS = {
    "check_now": EventKind.CHECK_REQUESTED,
    "push_to_edge": EventKind.EDGE_PUSH_REQUESTED,
    "remove_domains": EventKind.STATUS_CHANGED,
}


def run_action(client: Client, url: str, action: str, pks: list[int]) -> Any:
    return client.post(url, {"action": action, "_selected_action": pks})


@pytest.mark.parametrize("action", list(DOMAIN_ACTIONS))
@pytest.mark.parametrize("who", [*NON_STAFF, "staff_no_perms", "staff_viewer"])
def test_domain_actions_need_staff_with_change_permission(
    world: World, who: str, action: str
) -> None:
    url = reverse("admin:domains_customdomain_changelist")
    pks = [world.a_domain.pk, world.b_domain.pk]
    r = run_action(browser(world, who), url, action, pks)
    if who in NON_STAFF:
        assert_sent_to_login(r)
    else:
        # Staff without the change permission: no such action (and no page, if no view).
        assert r.status_code in (200, 302, 403)
    assert not DomainEvent.objects.exists()
    assert set(CustomDomain.objects.values_list("status", flat=True)) == {DomainStatus.ACTIVE}


@pytest.mark.parametrize("action", list(DOMAIN_ACTIONS))
def test_domain_actions_by_staff_act_on_every_workspace_and_are_audited(
    world: World, action: str, django_capture_on_commit_callbacks: Any
) -> None:
    staff = world.users["superuser"]
    url = reverse("admin:domains_customdomain_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        r = run_action(browser(world, "superuser"), url, action,
                       [world.a_domain.pk, world.b_domain.pk])
    assert r.status_code == 302
    for domain in (world.a_domain, world.b_domain):
        events = list(DomainEvent.objects.filter(domain=domain))
        assert [e.kind for e in events] == [DOMAIN_ACTIONS[action]]
        assert (events[0].actor, events[0].source) == (staff, "admin")


def test_admin_registration_is_audited_with_the_staff_user(world: World) -> None:
    staff = world.users["superuser"]
    r = browser(world, "superuser").post(
        reverse("admin:domains_customdomain_add"),
        {"hostname": "new.b-client.com", "workspace": world.b_domain.workspace.pk},
    )
    assert r.status_code == 302
    event = DomainEvent.objects.get(domain__hostname="new.b-client.com")
    assert (event.kind, event.actor, event.source) == (EventKind.REGISTERED, staff, "admin")
    assert CustomDomain.objects.get(hostname="new.b-client.com").created_by == staff


@pytest.mark.parametrize("who", [*NON_STAFF, "staff_no_perms", "staff_viewer"])
def test_webhook_secret_rotation_needs_staff_with_change_permission(
    world: World, who: str
) -> None:
    endpoint = WebhookEndpointFactory()
    url = reverse("admin:notifications_webhookendpoint_changelist")
    r = run_action(browser(world, who), url, "rotate_secret", [endpoint.pk])
    if who in NON_STAFF:
        assert_sent_to_login(r)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == endpoint.secret
    # The secret is on the change page only, and only for staff who may view it.
    page = browser(world, who).get(
        reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk]))
    assert endpoint.secret.encode() not in page.content or who == "staff_viewer"


def test_superuser_rotates_a_webhook_secret(world: World) -> None:
    endpoint = WebhookEndpointFactory()
    url = reverse("admin:notifications_webhookendpoint_changelist")
    r = run_action(browser(world, "superuser"), url, "rotate_secret", [endpoint.pk])
    assert r.status_code == 302
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret != endpoint.secret


# --- API gaps ---------------------------------------------------------------------------------


def api_as(world: World, who: str) -> APIClient:
    client = APIClient()
    if world.users[who] is not None:
        client.force_authenticate(world.users[who])
    return client


B_SPELLINGS = ["GALLERY.B-Client.COM", "gallery.b-client.com.", "Gallery.b-client.com."]


@pytest.mark.parametrize("spelling", B_SPELLINGS)
@pytest.mark.parametrize("who", ["a_owner", "a_admin", "a_member", "outsider"])
def test_another_spelling_of_b_s_hostname_is_still_not_yours(
    world: World, who: str, spelling: str
) -> None:
    client = api_as(world, who)
    calls = [
        client.get(f"/api/domains/{spelling}/"),
        client.get(f"/api/domains/verify/{spelling}"),
        client.post(f"/api/domains/{spelling}/verify"),
        client.delete(f"/api/domains/{spelling}/"),
    ]
    assert [r.status_code for r in calls] == [404] * 4
    assert not DomainEvent.objects.exists()
    assert CustomDomain.objects.get(pk=world.b_domain.pk).status == DomainStatus.ACTIVE


@pytest.mark.parametrize("spelling", B_SPELLINGS)
def test_b_s_owner_reaches_the_record_by_any_spelling(world: World, spelling: str) -> None:
    r = api_as(world, "b_owner").get(f"/api/domains/{spelling}/")
    assert (r.status_code, r.json()["hostname"]) == (200, B_HOST)


@pytest.mark.parametrize("who", ["b_member", "a_owner", "outsider"])
def test_polling_the_seed_path_as_a_non_writer_queues_nothing(
    world: World, who: str, _no_broker: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    CustomDomain.objects.filter(pk=world.b_domain.pk).update(fast_checks_until=None)
    with django_capture_on_commit_callbacks(execute=True):
        r = api_as(world, who).get(f"/api/domains/verify/{B_HOST}")
    if who == "b_member":
        assert (r.status_code, r.json()["check_requested"]) == (200, False)
    else:
        assert r.status_code == 404
    assert _no_broker == []
    assert not DomainEvent.objects.exists()


@pytest.mark.parametrize("who", ["a_owner", "a_member", "outsider", "b_member", "staff_viewer"])
def test_removed_records_are_listed_only_to_their_workspace(world: World, who: str) -> None:
    CustomDomain.objects.filter(pk=world.b_domain.pk).update(status=DomainStatus.REMOVED)
    r = api_as(world, who).get("/api/domains/?status=removed")
    assert r.status_code == 200
    hosts = [d["hostname"] for d in r.json()["results"]]
    assert hosts == ([B_HOST] if who in ("b_member", "staff_viewer") else [])


def test_a_revoked_membership_loses_access_at_once(world: World) -> None:
    user = world.users["b_admin"]
    token = Token.objects.create(user=user).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(f"/api/domains/{B_HOST}/").status_code == 200
    Membership.objects.filter(user=user).delete()
    assert client.get(f"/api/domains/{B_HOST}/").status_code == 404
    assert client.delete(f"/api/domains/{B_HOST}/").status_code == 404
    r = client.post("/api/domains/", {"hostname": "x.b-client.com", "workspace": "ws-b"},
                    format="json")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "not_member")
    assert CustomDomain.objects.get(pk=world.b_domain.pk).status == DomainStatus.ACTIVE


def test_a_deactivated_user_s_token_is_refused(world: World) -> None:
    user = world.users["b_owner"]
    token = Token.objects.create(user=user).key
    user.is_active = False
    user.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    for r in (client.get("/api/domains/"), client.delete(f"/api/domains/{B_HOST}/")):
        assert r.status_code == 401
    assert CustomDomain.objects.get(pk=world.b_domain.pk).status == DomainStatus.ACTIVE


def test_staff_viewers_are_api_staff_too(world: World) -> None:
    """API rights follow is_staff (DESIGN: staff act on all workspaces), not admin perms."""
    r = api_as(world, "staff_viewer").get("/api/domains/")
    assert {d["hostname"] for d in r.json()["results"]} == {A_HOST, B_HOST}
