"""The domains API: every endpoint, every status code it answers with."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind, Plan, Role
from domains.task_names import TaskName
from tests.factories import CustomDomainFactory, MembershipFactory, UserFactory, WorkspaceFactory
from tests.notify_helpers import TaskRecorder

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(queued_tasks: TaskRecorder) -> list[tuple[str, tuple[Any, ...]]]:
    """Tasks the services queued (sent only when on_commit callbacks are executed)."""
    return queued_tasks.calls


def set_rates(settings: Any, **rates: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return body["error"]


# --- register --------------------------------------------------------------------------------


def test_register_returns_the_record_and_queues_the_certificate(
    api: APIClient, workspace: Any, owner: Any, sent: list, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post("/api/domains/", {"hostname": "Gallery.Client.com.", "workspace": "acme"},
                     format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["hostname"] == "gallery.client.com"
    assert body["workspace"] == "acme"
    assert body["status"] == "pending_validation"
    assert body["dns_records"][0] == {
        "purpose": "routing", "type": "CNAME", "name": "gallery.client.com",
        "value": "domain.ve.ai",
    }
    assert body["checks"] == {}
    assert body["last_error"] == ""
    for key in ("created_at", "updated_at", "last_checked_at", "next_check_at", "verified_at",
                "activated_at", "certificate_status", "edge_synced"):
        assert key in body
    assert r["Location"] == "/api/domains/gallery.client.com/"
    # The certificate waits for the CNAME: registration queues the first check.
    assert [name for name, _ in sent] == [TaskName.DOMAIN_CHECK]
    event = DomainEvent.objects.get(domain__hostname="gallery.client.com")
    assert (event.kind, event.source, event.actor) == (EventKind.REGISTERED, "api", owner)


def test_register_stores_unicode_as_punycode(api: APIClient, workspace: Any) -> None:
    r = api.post("/api/domains/", {"hostname": "Bücher.Client.com", "workspace": "acme"},
                 format="json")
    assert r.status_code == 201, r.content
    assert r.json()["hostname"] == "xn--bcher-kva.client.com"


def test_register_accepts_form_encoded_bodies(api: APIClient, workspace: Any) -> None:
    r = api.post("/api/domains/", "hostname=www.client.com&workspace=acme",
                 content_type="application/x-www-form-urlencoded")
    assert r.status_code == 201, r.content


def test_register_requires_authentication(workspace: Any) -> None:
    r = APIClient().post("/api/domains/", {"hostname": "a.client.com", "workspace": "acme"},
                         format="json")
    assert r.status_code == 401
    assert error(r)["code"] == "not_authenticated"
    assert r["WWW-Authenticate"] == "Token"


def test_bad_token_is_401(workspace: Any) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    r = client.get("/api/domains/")
    assert r.status_code == 401
    assert error(r)["code"] == "authentication_failed"


def test_token_authentication_works(workspace: Any, owner: Any) -> None:
    token = Token.objects.create(user=owner)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    r = client.post("/api/domains/", {"hostname": "a.client.com", "workspace": "acme"},
                    format="json")
    assert r.status_code == 201, r.content


def test_session_authentication_works_and_enforces_csrf(workspace: Any, owner: Any) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.get("/api/domains/").status_code == 200
    r = client.post("/api/domains/", {"hostname": "a.client.com", "workspace": "acme"},
                    format="json")
    # A session without the CSRF token must not be able to write (a cross-site request).
    assert r.status_code == 403
    assert "CSRF" in error(r)["message"]


@pytest.mark.parametrize("slug", ["someone-else", "does-not-exist"])
def test_register_in_a_workspace_you_are_not_in_is_403_either_way(
    api: APIClient, workspace: Any, slug: str
) -> None:
    WorkspaceFactory(slug="someone-else")
    r = api.post("/api/domains/", {"hostname": "a.client.com", "workspace": slug}, format="json")
    assert r.status_code == 403
    err = error(r)
    assert (err["code"], err["field"]) == ("not_member", "workspace")
    # The same message whether or not the workspace exists: nothing leaks.
    assert err["message"] == f"You are not a member of a workspace '{slug}'."


def test_register_needs_owner_or_admin(workspace: Any) -> None:
    member = MembershipFactory(workspace=workspace, role=Role.MEMBER).user
    r = client_for(member).post("/api/domains/", {"hostname": "a.client.com", "workspace": "acme"},
                                format="json")
    assert r.status_code == 403
    assert error(r)["code"] == "role_read_only"
    admin = MembershipFactory(workspace=workspace, role=Role.ADMIN).user
    r = client_for(admin).post("/api/domains/", {"hostname": "a.client.com", "workspace": "acme"},
                               format="json")
    assert r.status_code == 201


def test_register_needs_a_paid_plan(db: Any) -> None:
    free = WorkspaceFactory(slug="freebie", plan=Plan.FREE)
    user = MembershipFactory(workspace=free, role=Role.OWNER).user
    r = client_for(user).post("/api/domains/", {"hostname": "a.client.com", "workspace": "freebie"},
                              format="json")
    assert r.status_code == 403
    assert error(r)["code"] == "plan_not_entitled"
    assert not CustomDomain.objects.exists()


def test_register_stops_at_the_plan_limit(api: APIClient, workspace: Any, settings: Any) -> None:
    settings.VEDOMAINS_PLAN_LIMITS = {**settings.VEDOMAINS_PLAN_LIMITS, "pro": 2}
    for n in range(2):
        r = api.post("/api/domains/", {"hostname": f"d{n}.client.com", "workspace": "acme"},
                     format="json")
        assert r.status_code == 201
    r = api.post("/api/domains/", {"hostname": "d2.client.com", "workspace": "acme"},
                 format="json")
    assert r.status_code == 403
    assert error(r)["code"] == "domain_limit_reached"
    # A removed domain frees its slot.
    CustomDomain.objects.filter(hostname="d0.client.com").update(status=DomainStatus.REMOVED)
    r = api.post("/api/domains/", {"hostname": "d2.client.com", "workspace": "acme"},
                 format="json")
    assert r.status_code == 201


def test_register_twice_is_409_already_registered(api: APIClient, workspace: Any) -> None:
    body = {"hostname": "a.client.com", "workspace": "acme"}
    assert api.post("/api/domains/", body, format="json").status_code == 201
    r = api.post("/api/domains/", {**body, "hostname": "A.CLIENT.COM."}, format="json")
    assert r.status_code == 409
    err = error(r)
    assert (err["code"], err["field"]) == ("already_registered", "hostname")


def test_hostname_held_by_another_workspace_is_409_with_the_txt_to_prove_ownership(
    api: APIClient, workspace: Any, dns_server: Any
) -> None:
    CustomDomainFactory(hostname="gallery.client.com", status=DomainStatus.ACTIVE)
    r = api.post("/api/domains/", {"hostname": "gallery.client.com", "workspace": "acme"},
                 format="json")
    assert r.status_code == 409
    err = error(r)
    assert (err["code"], err["field"]) == ("hostname_taken", "hostname")
    (txt,) = err["details"]["dns_records"]
    assert txt["type"] == "TXT"
    assert txt["name"] == "_vedomains-challenge.gallery.client.com"
    assert txt["value"].startswith("vedomains-verification=")

    # The real DNS owner creates the record and registers again: the claim moves over.
    dns_server.store.set_record(txt["name"], "TXT", txt["value"])
    r = api.post("/api/domains/", {"hostname": "gallery.client.com", "workspace": "acme"},
                 format="json")
    assert r.status_code == 201, r.content
    assert CustomDomain.objects.get(hostname="gallery.client.com", workspace__slug="acme")
    assert CustomDomain.objects.filter(status=DomainStatus.REMOVED).count() == 1


def test_register_is_rate_limited_per_user(api: APIClient, workspace: Any, settings: Any) -> None:
    set_rates(settings, domain_register_user="2/hour")
    for n in range(2):
        api.post("/api/domains/", {"hostname": f"d{n}.client.com", "workspace": "acme"},
                 format="json")
    r = api.post("/api/domains/", {"hostname": "d9.client.com", "workspace": "acme"},
                 format="json")
    assert r.status_code == 429
    err = error(r)
    assert err["code"] == "throttled"
    assert int(r["Retry-After"]) > 0
    assert err["details"]["retry_after"] == int(r["Retry-After"])


def test_register_is_rate_limited_per_workspace(
    api: APIClient, workspace: Any, settings: Any
) -> None:
    set_rates(settings, domain_register_workspace="2/hour")
    other_owner = MembershipFactory(workspace=workspace, role=Role.OWNER).user
    assert api.post("/api/domains/", {"hostname": "d0.client.com", "workspace": "acme"},
                    format="json").status_code == 201
    assert api.post("/api/domains/", {"hostname": "d1.client.com", "workspace": "acme"},
                    format="json").status_code == 201
    # A different user of the same workspace shares the workspace's budget.
    r = client_for(other_owner).post(
        "/api/domains/", {"hostname": "d2.client.com", "workspace": "acme"}, format="json"
    )
    assert r.status_code == 429
    assert error(r)["code"] == "throttled"
    assert "workspace" in error(r)["message"]


def test_outsiders_cannot_spend_a_workspace_s_rate_limit(
    api: APIClient, workspace: Any, settings: Any
) -> None:
    set_rates(settings, domain_register_workspace="2/hour")
    outsider = client_for(UserFactory())
    for n in range(5):
        r = outsider.post("/api/domains/", {"hostname": f"x{n}.client.com", "workspace": "acme"},
                          format="json")
        assert r.status_code == 403
    r = api.post("/api/domains/", {"hostname": "d0.client.com", "workspace": "acme"},
                 format="json")
    assert r.status_code == 201


@pytest.mark.per_domain  # the ACM pending-certificate quota: ACM requests only
def test_certificate_quota_is_429(api: APIClient, workspace: Any, settings: Any) -> None:
    settings.VEDOMAINS_ACM_MAX_PENDING = 1
    CustomDomainFactory()
    r = api.post("/api/domains/", {"hostname": "a.client.com", "workspace": "acme"},
                 format="json")
    assert r.status_code == 429
    assert error(r)["code"] == "certificate_quota"
    assert r["Retry-After"]


def test_staff_can_register_in_any_workspace(staff_user: Any, workspace: Any) -> None:
    r = client_for(staff_user).post(
        "/api/domains/", {"hostname": "a.client.com", "workspace": "acme"}, format="json"
    )
    assert r.status_code == 201


def test_staff_naming_a_missing_workspace_gets_403_not_member(staff_user: Any) -> None:
    r = client_for(staff_user).post(
        "/api/domains/", {"hostname": "a.client.com", "workspace": "nope"}, format="json"
    )
    assert r.status_code == 403
    assert error(r)["code"] == "not_member"


# --- list --------------------------------------------------------------------------------------


def test_list_shows_the_caller_s_domains_newest_first(api: APIClient, workspace: Any) -> None:
    old = CustomDomainFactory(workspace=workspace, hostname="old.client.com")
    new = CustomDomainFactory(workspace=workspace, hostname="new.client.com")
    CustomDomain.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1))
    CustomDomainFactory(hostname="theirs.client.com")
    r = api.get("/api/domains/")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2
    assert [d["hostname"] for d in body["results"]] == [new.hostname, old.hostname]


def test_list_filters_by_workspace_and_status(api: APIClient, workspace: Any, owner: Any) -> None:
    second = WorkspaceFactory(slug="second")
    MembershipFactory(workspace=second, user=owner, role=Role.MEMBER)
    CustomDomainFactory(workspace=workspace, hostname="a.client.com")
    CustomDomainFactory(workspace=workspace, hostname="b.client.com", status=DomainStatus.ACTIVE)
    CustomDomainFactory(workspace=second, hostname="c.client.com")
    CustomDomainFactory(workspace=workspace, hostname="gone.client.com",
                        status=DomainStatus.REMOVED)

    def hosts(query: str) -> set[str]:
        r = api.get(f"/api/domains/{query}")
        assert r.status_code == 200, r.content
        return {d["hostname"] for d in r.json()["results"]}

    assert hosts("") == {"a.client.com", "b.client.com", "c.client.com"}
    assert hosts("?workspace=acme") == {"a.client.com", "b.client.com"}
    assert hosts("?workspace=second") == {"c.client.com"}
    assert hosts("?status=active") == {"b.client.com"}
    assert hosts("?workspace=acme&status=pending_validation") == {"a.client.com"}
    # Removed domains are history, shown only when asked for.
    assert hosts("?status=removed") == {"gone.client.com"}


def test_list_is_paginated(api: APIClient, workspace: Any) -> None:
    CustomDomainFactory.create_batch(5, workspace=workspace)
    r = api.get("/api/domains/?page_size=2&page=2")
    body = r.json()
    assert (body["count"], len(body["results"])) == (5, 2)
    assert body["next"] and body["previous"]
    r = api.get("/api/domains/?page=99")
    assert r.status_code == 404
    assert error(r)["code"] == "not_found"


def test_list_of_a_workspace_you_are_not_in_is_403(api: APIClient, workspace: Any) -> None:
    WorkspaceFactory(slug="other")
    for slug in ("other", "missing"):
        r = api.get(f"/api/domains/?workspace={slug}")
        assert r.status_code == 403
        assert (error(r)["code"], error(r)["field"]) == ("not_member", "workspace")


@pytest.mark.parametrize(
    "query,field",
    [("?workspace=NOT_A_SLUG", "workspace"), ("?workspace=a%00b", "workspace"),
     ("?status=bogus", "status"), ("?workspace=" + "a" * 64, "workspace")],
)
def test_list_rejects_bad_query_parameters(
    api: APIClient, workspace: Any, query: str, field: str
) -> None:
    r = api.get(f"/api/domains/{query}")
    assert r.status_code == 400
    assert error(r)["field"] == field


def test_list_requires_authentication(db: Any) -> None:
    r = APIClient().get("/api/domains/")
    assert r.status_code == 401


def test_staff_list_everything(staff_user: Any) -> None:
    CustomDomainFactory.create_batch(3)
    assert client_for(staff_user).get("/api/domains/").json()["count"] == 3


# --- detail ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["gallery.client.com", "Gallery.Client.com.", "GALLERY.CLIENT.COM"]
)
def test_detail_normalizes_the_hostname(api: APIClient, workspace: Any, path: str) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    r = api.get(f"/api/domains/{path}/")
    assert r.status_code == 200
    assert r.json()["hostname"] == "gallery.client.com"


def test_detail_finds_unicode_names(api: APIClient, workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="xn--bcher-kva.client.com")
    assert api.get("/api/domains/bücher.client.com/").status_code == 200
    assert api.get("/api/domains/xn--bcher-kva.client.com/").status_code == 200


def test_detail_shows_checks_and_dns_records(api: APIClient, workspace: Any) -> None:
    now = timezone.now().isoformat()
    CustomDomainFactory(
        workspace=workspace,
        hostname="gallery.client.com",
        ownership_required=True,
        validation_records=[{"name": "_x1.gallery.client.com.", "type": "CNAME",
                             "value": "_y1.acm-validations.aws."}],
        checks={"dns": {"ok": False, "detail": "No CNAME", "at": now, "reason": "missing"}},
        last_error="No CNAME",
    )
    body = api.get("/api/domains/gallery.client.com/").json()
    assert [r["purpose"] for r in body["dns_records"]] == [
        "routing", "certificate_validation", "ownership"
    ]
    assert body["dns_records"][1]["name"] == "_x1.gallery.client.com"
    # Checks are passed through whole, including keys beyond ok/detail/at.
    assert body["checks"]["dns"] == {"ok": False, "detail": "No CNAME", "at": now,
                                     "reason": "missing"}
    assert body["last_error"] == "No CNAME"


@pytest.mark.parametrize(
    "path",
    ["unknown.client.com", "not a hostname", "a%00b", "-.-", "x" * 300, "%E2%98%83", "localhost"],
)
def test_detail_of_unknown_or_invalid_hostnames_is_404(
    api: APIClient, workspace: Any, path: str
) -> None:
    r = api.get(f"/api/domains/{path}/")
    assert r.status_code == 404
    assert error(r)["code"] == "not_found"


def test_detail_hides_removed_domains(api: APIClient, workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gone.client.com",
                        status=DomainStatus.REMOVED)
    assert api.get("/api/domains/gone.client.com/").status_code == 404


def test_detail_requires_authentication(workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    assert APIClient().get("/api/domains/gallery.client.com/").status_code == 401


def test_read_only_members_can_read(workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    member = client_for(MembershipFactory(workspace=workspace, role=Role.MEMBER).user)
    assert member.get("/api/domains/gallery.client.com/").status_code == 200
    assert member.get("/api/domains/?workspace=acme").json()["count"] == 1


# --- verify ------------------------------------------------------------------------------------


def test_verify_queues_a_check(
    api: APIClient, workspace: Any, owner: Any, sent: list, django_capture_on_commit_callbacks: Any
) -> None:
    domain = CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post("/api/domains/Gallery.client.com/verify")
    assert r.status_code == 202
    assert r.json()["hostname"] == "gallery.client.com"
    assert sent == [(TaskName.DOMAIN_CHECK, (domain.pk,))]
    domain.refresh_from_db()
    assert domain.next_check_at is not None and domain.next_check_at <= timezone.now()
    assert domain.fast_checks_until is not None and domain.fast_checks_until > timezone.now()
    event = domain.events.get(kind=EventKind.CHECK_REQUESTED)
    assert (event.source, event.actor) == ("api", owner)


def test_verify_needs_owner_or_admin(workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    member = client_for(MembershipFactory(workspace=workspace, role=Role.MEMBER).user)
    r = member.post("/api/domains/gallery.client.com/verify")
    assert r.status_code == 403
    assert error(r)["code"] == "role_read_only"


def test_verify_of_unknown_or_removed_domain_is_404(api: APIClient, workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gone.client.com",
                        status=DomainStatus.REMOVED)
    assert api.post("/api/domains/gone.client.com/verify").status_code == 404
    assert api.post("/api/domains/nothing.client.com/verify").status_code == 404


def test_verify_requires_authentication(workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    assert APIClient().post("/api/domains/gallery.client.com/verify").status_code == 401


def test_verify_is_rate_limited_per_user(api: APIClient, workspace: Any, settings: Any) -> None:
    set_rates(settings, domain_verify_user="2/minute")
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    codes = [api.post("/api/domains/gallery.client.com/verify").status_code for _ in range(3)]
    assert codes == [202, 202, 429]


def test_verify_is_rate_limited_per_workspace(
    api: APIClient, workspace: Any, settings: Any
) -> None:
    set_rates(settings, domain_verify_workspace="2/minute")
    CustomDomainFactory(workspace=workspace, hostname="a.client.com")
    CustomDomainFactory(workspace=workspace, hostname="b.client.com")
    other_user = MembershipFactory(workspace=workspace, role=Role.ADMIN).user
    other = client_for(other_user)
    assert api.post("/api/domains/a.client.com/verify").status_code == 202
    assert other.post("/api/domains/b.client.com/verify").status_code == 202
    r = other.post("/api/domains/a.client.com/verify")
    assert r.status_code == 429
    assert r["Retry-After"]
    # Another workspace's budget is untouched.
    elsewhere = WorkspaceFactory(slug="elsewhere")
    CustomDomainFactory(workspace=elsewhere, hostname="c.client.com")
    MembershipFactory(workspace=elsewhere, user=other_user, role=Role.OWNER)
    assert other.post("/api/domains/c.client.com/verify").status_code == 202


# --- delete ------------------------------------------------------------------------------------


def test_delete_removes_and_answers_with_the_final_record(
    api: APIClient, workspace: Any, owner: Any, sent: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    domain = CustomDomainFactory(workspace=workspace, hostname="gallery.client.com",
                                 status=DomainStatus.ACTIVE)
    with django_capture_on_commit_callbacks(execute=True):
        r = api.delete("/api/domains/Gallery.Client.com./")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "removed"
    assert body["removed_at"] is not None
    assert {name for name, _ in sent} == {TaskName.EDGE_SYNC_HOSTNAME,
                                          TaskName.DOMAIN_CLEANUP}
    event = domain.events.get(kind=EventKind.STATUS_CHANGED)
    assert (event.source, event.actor, event.to_status) == ("api", owner, "removed")
    # Gone from the caller's view, and the hostname is free to register again.
    assert api.get("/api/domains/gallery.client.com/").status_code == 404
    assert api.delete("/api/domains/gallery.client.com/").status_code == 404
    r = api.post("/api/domains/", {"hostname": "gallery.client.com", "workspace": "acme"},
                 format="json")
    assert r.status_code == 201


def test_delete_needs_owner_or_admin(workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    member = client_for(MembershipFactory(workspace=workspace, role=Role.MEMBER).user)
    r = member.delete("/api/domains/gallery.client.com/")
    assert r.status_code == 403
    assert error(r)["code"] == "role_read_only"
    assert CustomDomain.objects.get().status == DomainStatus.PENDING_VALIDATION


def test_delete_requires_authentication(workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    assert APIClient().delete("/api/domains/gallery.client.com/").status_code == 401


def test_staff_can_delete_any_domain(staff_user: Any) -> None:
    CustomDomainFactory(hostname="gallery.client.com")
    r = client_for(staff_user).delete("/api/domains/gallery.client.com/")
    assert r.status_code == 200


# --- the seed's paths --------------------------------------------------------------------------


def test_legacy_register(api: APIClient, workspace: Any) -> None:
    r = api.post("/api/domains/register",
                 {"subdomain": "Gallery", "domain": "client.com", "workspaceId": "acme"},
                 format="json")
    assert r.status_code == 200, r.content
    assert r.json()["hostname"] == "gallery.client.com"
    assert r.json()["workspace"] == "acme"


def test_legacy_register_without_subdomain_uses_the_domain(
    api: APIClient, workspace: Any
) -> None:
    r = api.post("/api/domains/register",
                 {"subdomain": "", "domain": "shop.client.com", "workspaceId": "acme"},
                 format="json")
    assert r.status_code == 200, r.content
    assert r.json()["hostname"] == "shop.client.com"


@pytest.mark.parametrize(
    "body,status_code,code,field",
    [
        ({"domain": "client.com", "workspaceId": "acme"}, 400, "apex_not_supported", "domain"),
        ({"subdomain": "a/b", "domain": "client.com", "workspaceId": "acme"}, 400,
         "invalid_subdomain", "subdomain"),
        ({"subdomain": "x", "domain": "ve.ai", "workspaceId": "acme"}, 400, "platform_domain",
         "domain"),
        ({"subdomain": "x", "domain": "client.com"}, 400, "required", "workspaceId"),
        ({"subdomain": "x", "domain": "client.com", "workspaceId": "other"}, 403, "not_member",
         "workspaceId"),
    ],
)
def test_legacy_register_errors_name_the_seed_s_fields(
    api: APIClient, workspace: Any, body: dict, status_code: int, code: str, field: str
) -> None:
    WorkspaceFactory(slug="other")
    r = api.post("/api/domains/register", body, format="json")
    assert r.status_code == status_code
    err = r.json()["error"]
    assert (err["code"], err["field"]) == (code, field)


def test_legacy_register_conflict_and_auth(api: APIClient, workspace: Any) -> None:
    body = {"subdomain": "g", "domain": "client.com", "workspaceId": "acme"}
    assert api.post("/api/domains/register", body, format="json").status_code == 200
    r = api.post("/api/domains/register", body, format="json")
    assert r.status_code == 409
    err = r.json()["error"]
    assert (err["code"], err["field"]) == ("already_registered", "domain")
    assert APIClient().post("/api/domains/register", body, format="json").status_code == 401


def test_legacy_register_is_rate_limited(api: APIClient, workspace: Any, settings: Any) -> None:
    set_rates(settings, domain_register_user="1/hour")
    api.post("/api/domains/register",
             {"subdomain": "a", "domain": "client.com", "workspaceId": "acme"}, format="json")
    r = api.post("/api/domains/register",
                 {"subdomain": "b", "domain": "client.com", "workspaceId": "acme"}, format="json")
    assert r.status_code == 429


def test_legacy_verify_returns_status_and_queues_a_check(
    api: APIClient, workspace: Any, sent: list, django_capture_on_commit_callbacks: Any
) -> None:
    domain = CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    with django_capture_on_commit_callbacks(execute=True):
        r = api.get("/api/domains/verify/Gallery.Client.com")
    assert r.status_code == 200
    body = r.json()
    assert (body["status"], body["state"]) == ("pending_validation", "pending_validation")
    assert body["dns_records"][0]["value"] == "domain.ve.ai"
    assert body["check_requested"] is True
    assert sent == [(TaskName.DOMAIN_CHECK, (domain.pk,))]
    # The domain is now in its fast-check window: polling again does not queue more checks.
    r = api.get("/api/domains/verify/gallery.client.com")
    assert r.json()["check_requested"] is False
    assert domain.events.filter(kind=EventKind.CHECK_REQUESTED).count() == 1


def test_legacy_verify_for_read_only_members_only_reads(workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    member = client_for(MembershipFactory(workspace=workspace, role=Role.MEMBER).user)
    r = member.get("/api/domains/verify/gallery.client.com")
    assert r.status_code == 200
    assert r.json()["check_requested"] is False
    assert not DomainEvent.objects.exists()


def test_legacy_verify_when_rate_limited_still_answers(
    api: APIClient, workspace: Any, settings: Any
) -> None:
    set_rates(settings, domain_verify_user="1/minute")
    CustomDomainFactory(workspace=workspace, hostname="a.client.com")
    CustomDomainFactory(workspace=workspace, hostname="b.client.com")
    assert api.get("/api/domains/verify/a.client.com").json()["check_requested"] is True
    r = api.get("/api/domains/verify/b.client.com")
    assert r.status_code == 200
    assert r.json()["check_requested"] is False


def test_legacy_verify_unknown_and_unauthenticated(api: APIClient, workspace: Any) -> None:
    assert api.get("/api/domains/verify/nothing.client.com").status_code == 404
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    assert APIClient().get("/api/domains/verify/gallery.client.com").status_code == 401


# --- protocol-level errors ---------------------------------------------------------------------


def test_wrong_method_is_405_json(api: APIClient, workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    r = api.put("/api/domains/gallery.client.com/", {}, format="json")
    assert r.status_code == 405
    assert error(r)["code"] == "method_not_allowed"
    assert api.get("/api/domains/gallery.client.com/verify").status_code == 405
    assert api.delete("/api/domains/").status_code == 405


def test_malformed_json_is_400_on_the_body(api: APIClient, workspace: Any) -> None:
    r = api.generic("POST", "/api/domains/", '{"hostname": ', content_type="application/json")
    assert r.status_code == 400
    err = error(r)
    assert (err["code"], err["field"]) == ("parse_error", "body")


def test_unsupported_media_type_is_415_json(api: APIClient, workspace: Any) -> None:
    r = api.generic("POST", "/api/domains/", "hostname", content_type="text/plain")
    assert r.status_code == 415
    assert error(r)["code"] == "unsupported_media_type"


def test_unknown_api_paths_are_json_404(api: APIClient) -> None:
    for path in ("/api/nothing", "/api/domains/a/b/c", "/api/"):
        r = api.get(path)
        assert r.status_code == 404, path
        assert error(r)["code"] == "not_found"
    assert api.post("/api/nothing", {}, format="json").status_code == 404


def test_missing_trailing_slash_is_redirected_or_answered(api: APIClient, workspace: Any) -> None:
    r = api.get("/api/domains?workspace=acme")
    assert r.status_code == 200
    r = api.post("/api/domains", {"hostname": "a.client.com", "workspace": "acme"},
                 format="json")
    assert r.status_code == 201
    # A path that exists only with its slash: a GET is redirected, anything else told.
    r = api.get("/api/schema?format=json")
    assert r.status_code == 301
    assert r["Location"] == "/api/schema/?format=json"
    r = api.post("/api/schema", {}, format="json")
    assert r.status_code == 404
    assert "/api/schema/" in error(r)["message"]
