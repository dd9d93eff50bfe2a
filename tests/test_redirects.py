"""Redirect domains (docs/redirects.md): registering, changing, removing, the pair in one step,
plan limits and the edge projection. The edge's own answer is in edge_lambda/tests."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from domains import selectors
from domains.integrations import edge_store
from domains.integrations.edge_store import EdgeItem
from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind, Role
from domains.task_names import TaskName
from edge import sync as edge_sync
from tests.factories import CustomDomainFactory, MembershipFactory, WorkspaceFactory
from workflow import lifecycle, services

pytestmark = pytest.mark.django_db


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    return body["error"]


@pytest.fixture
def apex_enabled(settings: Any) -> None:
    settings.VEDOMAINS_CDN_STRATEGY = "saas-tenant"
    settings.VEDOMAINS_CDN_APEX_IPS = ["203.0.113.10", "2001:db8::10"]


def register(api: APIClient, **body: Any) -> Any:
    return api.post("/api/domains/", {"workspace": "acme", **body}, format="json")


# --- registering a redirect -----------------------------------------------------------------


def test_register_a_redirect_to_a_domain_of_the_workspace(api: APIClient, workspace: Any) -> None:
    assert register(api, hostname="www.new-studio.com").status_code == 201
    r = register(api, hostname="old-studio.example.com", redirect_to="WWW.New-Studio.com.",
                 redirect_code=301)
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["redirect_to"], body["redirect_code"]) == ("www.new-studio.com", 301)
    # Both pending: stored, not yet answered at the edge.
    assert body["redirect_active"] is False
    # A redirect domain needs its own DNS like any other.
    assert body["dns_records"][0]["name"] == "old-studio.example.com"
    target = api.get("/api/domains/www.new-studio.com/").json()
    assert target["redirects"] == ["old-studio.example.com"] and target["redirect_to"] is None
    event = DomainEvent.objects.get(domain__hostname="old-studio.example.com")
    assert event.data["redirect_to"] == "www.new-studio.com"


def test_redirect_code_defaults_to_308(api: APIClient, workspace: Any) -> None:
    register(api, hostname="www.new-studio.com")
    r = register(api, hostname="old.new-studio.com", redirect_to="www.new-studio.com")
    assert r.json()["redirect_code"] == 308


@pytest.mark.parametrize(
    ("case", "code", "field"),
    [
        ("another workspace's domain", "redirect_target_unknown", "redirect_to"),
        ("an external host", "redirect_target_unknown", "redirect_to"),
        ("itself", "redirect_to_self", "redirect_to"),
        ("a chain", "redirect_chain", "redirect_to"),
        ("a removed domain", "redirect_target_unknown", "redirect_to"),
        ("a URL", "invalid_redirect_target", "redirect_to"),
        ("empty", "blank", "redirect_to"),
        ("a bad code", "invalid_choice", "redirect_code"),
    ],
)
def test_bad_targets_are_a_400_naming_the_field(
    api: APIClient, workspace: Any, case: str, code: str, field: str
) -> None:
    other = WorkspaceFactory(slug="other", plan="pro")
    CustomDomainFactory(workspace=other, hostname="theirs.example.com")
    mine = CustomDomainFactory(workspace=workspace, hostname="www.mine.com")
    CustomDomainFactory(workspace=workspace, hostname="old.mine.com", redirect_to=mine,
                        redirect_code=308)
    CustomDomainFactory(workspace=workspace, hostname="gone.mine.com",
                        status=DomainStatus.REMOVED)
    target, extra = {
        "another workspace's domain": ("theirs.example.com", {}),
        "an external host": ("google.com", {}),
        "itself": ("new.mine.com", {}),
        "a chain": ("old.mine.com", {}),
        "a removed domain": ("gone.mine.com", {}),
        "a URL": ("https://www.mine.com/x", {}),
        "empty": ("", {}),
        "a bad code": ("www.mine.com", {"redirect_code": 302}),
    }[case]
    before = CustomDomain.objects.count()
    err = error(register(api, hostname="new.mine.com", redirect_to=target, **extra), 400)
    assert (err["code"], err["field"]) == (code, field), err
    assert err["message"]
    assert CustomDomain.objects.count() == before  # nothing was registered


def test_another_workspace_s_domain_and_an_unknown_host_get_the_same_words(
    api: APIClient, workspace: Any
) -> None:
    CustomDomainFactory(workspace=WorkspaceFactory(slug="other"), hostname="theirs.example.com")
    theirs = error(register(api, hostname="a.mine.com", redirect_to="theirs.example.com"), 400)
    nobody = error(register(api, hostname="a.mine.com", redirect_to="nobody.example.com"), 400)
    assert theirs["message"].replace("theirs", "X") == nobody["message"].replace("nobody", "X")


# --- changing -----------------------------------------------------------------------------


def test_patch_sets_changes_and_clears_a_redirect(api: APIClient, workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="www.mine.com")
    CustomDomainFactory(workspace=workspace, hostname="shop.mine.com")
    old = CustomDomainFactory(workspace=workspace, hostname="old.mine.com")

    r = api.patch("/api/domains/old.mine.com/", {"redirect_to": "www.mine.com"}, format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["redirect_to"], r.json()["redirect_code"]) == ("www.mine.com", 308)
    r = api.patch("/api/domains/old.mine.com/",
                  {"redirect_to": "shop.mine.com", "redirect_code": 301}, format="json")
    assert (r.json()["redirect_to"], r.json()["redirect_code"]) == ("shop.mine.com", 301)
    r = api.patch("/api/domains/old.mine.com/", {"redirect_to": None}, format="json")
    assert (r.json()["redirect_to"], r.json()["redirect_code"]) == (None, None)
    kinds = list(DomainEvent.objects.filter(domain=old).values_list("kind", flat=True))
    assert kinds.count(EventKind.REDIRECT_CHANGED) == 3


def test_patch_refuses_to_make_a_target_a_redirect(api: APIClient, workspace: Any) -> None:
    www = CustomDomainFactory(workspace=workspace, hostname="www.mine.com")
    CustomDomainFactory(workspace=workspace, hostname="shop.mine.com")
    CustomDomainFactory(workspace=workspace, hostname="old.mine.com", redirect_to=www,
                        redirect_code=308)
    err = error(api.patch("/api/domains/www.mine.com/", {"redirect_to": "shop.mine.com"},
                          format="json"), 400)
    assert err["code"] == "redirect_chain" and "old.mine.com" in err["message"]


def test_patch_needs_a_write_role(workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="www.mine.com")
    CustomDomainFactory(workspace=workspace, hostname="old.mine.com")
    member = MembershipFactory(workspace=workspace, role=Role.MEMBER).user
    client = APIClient()
    client.force_authenticate(member)
    r = client.patch("/api/domains/old.mine.com/", {"redirect_to": "www.mine.com"}, format="json")
    assert r.status_code == 403
    assert CustomDomain.objects.get(hostname="old.mine.com").redirect_to is None


def test_changing_a_routed_redirect_pushes_it_to_the_edge(
    api: APIClient, workspace: Any, queued_tasks: Any, django_capture_on_commit_callbacks: Any
) -> None:
    CustomDomainFactory(workspace=workspace, hostname="www.mine.com", status=DomainStatus.ACTIVE)
    old = CustomDomainFactory(workspace=workspace, hostname="old.mine.com",
                              status=DomainStatus.ACTIVE, edge_version=4, edge_synced_version=4)
    with django_capture_on_commit_callbacks(execute=True):
        api.patch("/api/domains/old.mine.com/", {"redirect_to": "www.mine.com"}, format="json")
    old.refresh_from_db()
    assert old.edge_version == 5
    assert (TaskName.EDGE_SYNC_HOSTNAME, ("old.mine.com",)) in queued_tasks.calls


# --- removing a target --------------------------------------------------------------------


def test_removing_a_target_is_refused_unless_its_redirects_go_too(
    api: APIClient, workspace: Any
) -> None:
    www = CustomDomainFactory(workspace=workspace, hostname="www.mine.com")
    CustomDomainFactory(workspace=workspace, hostname="mine.com", redirect_to=www,
                        redirect_code=308)
    err = error(api.delete("/api/domains/www.mine.com/"), 409)
    assert err["code"] == "has_redirects" and "mine.com" in err["message"]
    assert err["details"] == {"redirects": ["mine.com"]}
    assert CustomDomain.objects.get(hostname="www.mine.com").status != DomainStatus.REMOVED

    r = api.delete("/api/domains/www.mine.com/?remove_redirects=true")
    assert r.status_code == 200, r.content
    assert set(CustomDomain.objects.values_list("status", flat=True)) == {DomainStatus.REMOVED}


def test_removing_a_redirect_itself_needs_no_flag(api: APIClient, workspace: Any) -> None:
    www = CustomDomainFactory(workspace=workspace, hostname="www.mine.com")
    CustomDomainFactory(workspace=workspace, hostname="mine.com", redirect_to=www,
                        redirect_code=308)
    assert api.delete("/api/domains/mine.com/").status_code == 200
    assert api.delete("/api/domains/www.mine.com/").status_code == 200


def test_release_of_a_target_is_refused_the_same_way(api: APIClient, workspace: Any) -> None:
    www = CustomDomainFactory(workspace=workspace, hostname="www.mine.com")
    CustomDomainFactory(workspace=workspace, hostname="mine.com", redirect_to=www,
                        redirect_code=308)
    assert error(api.post("/api/domains/www.mine.com/release/"), 409)["code"] == "has_redirects"
    r = api.post("/api/domains/www.mine.com/release/?remove_redirects=1")
    assert r.status_code == 200, r.content


def test_bad_remove_redirects_flag_is_a_400(api: APIClient, workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="www.mine.com")
    err = error(api.delete("/api/domains/www.mine.com/?remove_redirects=maybe"), 400)
    assert err["field"] == "remove_redirects"


# --- the pair in one step -----------------------------------------------------------------


@pytest.mark.parametrize(("given", "primary", "secondary"), [
    ("client.com", "client.com", "www.client.com"),
    ("www.client.com", "www.client.com", "client.com"),
])
def test_include_www_registers_both_with_dns_records_for_both(
    api: APIClient, workspace: Any, apex_enabled: None, given: str, primary: str, secondary: str
) -> None:
    r = register(api, hostname=given, include_www=True)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["hostname"] == primary and body["redirect_to"] is None
    assert body["redirects"] == [secondary]
    pair = body["pair"]
    assert (pair["hostname"], pair["redirect_to"], pair["redirect_code"]) == (
        secondary, primary, 308)
    records = {r["name"]: r for r in body["dns_records"] + pair["dns_records"]
               if r["purpose"] == "routing"}
    # The apex gets A/AAAA records to the anycast IPs, the www name its CNAME.
    assert {r["type"] for r in body["dns_records"] + pair["dns_records"]
            if r["name"] == "client.com"} == {"A", "AAAA"}
    assert records["www.client.com"] == {"purpose": "routing", "type": "CNAME",
                                         "name": "www.client.com", "value": "domain.ve.ai"}
    assert CustomDomain.objects.filter(status=DomainStatus.PENDING_VALIDATION).count() == 2


def test_include_www_without_apex_support_registers_www_and_says_to_forward(
    api: APIClient, workspace: Any
) -> None:
    r = register(api, hostname="client.com", include_www=True)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["hostname"] == "www.client.com" and body["pair"] is None
    assert "forward" in body["notes"][0] and "https://www.client.com" in body["notes"][0]
    assert list(CustomDomain.objects.values_list("hostname", flat=True)) == ["www.client.com"]


def test_include_www_on_a_subdomain_is_a_400(api: APIClient, workspace: Any) -> None:
    err = error(register(api, hostname="gallery.client.com", include_www=True), 400)
    assert (err["code"], err["field"]) == ("include_www_not_apex", "include_www")


def test_the_pair_is_all_or_nothing(
    api: APIClient, workspace: Any, apex_enabled: None
) -> None:
    CustomDomainFactory(workspace=WorkspaceFactory(slug="other"), hostname="www.client.com")
    err = error(register(api, hostname="client.com", include_www=True), 409)
    assert err["code"] == "hostname_taken"
    assert not CustomDomain.objects.filter(workspace=workspace).exists()


def test_plan_limits_count_both_records(
    api: APIClient, workspace: Any, apex_enabled: None, settings: Any
) -> None:
    settings.VEDOMAINS_PLAN_LIMITS = {**settings.VEDOMAINS_PLAN_LIMITS, "pro": 3}
    CustomDomainFactory(workspace=workspace, hostname="a.mine.com")
    CustomDomainFactory(workspace=workspace, hostname="b.mine.com")
    err = error(register(api, hostname="client.com", include_www=True), 403)
    assert err["code"] == "domain_limit_reached" and "pair needs 2" in err["message"]
    assert CustomDomain.objects.count() == 2
    settings.VEDOMAINS_PLAN_LIMITS = {**settings.VEDOMAINS_PLAN_LIMITS, "pro": 4}
    assert register(api, hostname="client.com", include_www=True).status_code == 201
    # A redirect domain is a domain: the limit is reached with it.
    assert error(register(api, hostname="c.mine.com"), 403)["code"] == "domain_limit_reached"


def test_seed_path_expresses_redirects_and_the_pair(
    api: APIClient, workspace: Any, apex_enabled: None
) -> None:
    r = api.post("/api/domains/register", {"subdomain": "", "domain": "client.com",
                                           "workspaceId": "acme", "includeWww": True},
                 format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "pending_validation" and body["hostname"] == "client.com"
    assert body["pair"]["hostname"] == "www.client.com"
    r = api.post("/api/domains/register", {"subdomain": "old", "domain": "client.com",
                                           "workspaceId": "acme", "redirectTo": "client.com",
                                           "redirectCode": 301}, format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["redirect_to"], r.json()["redirect_code"]) == ("client.com", 301)
    r = api.post("/api/domains/register", {"subdomain": "older", "domain": "client.com",
                                           "workspaceId": "acme", "redirectTo": "nowhere.com"},
                 format="json")
    body = r.json()
    assert r.status_code == 400 and body["status"] == "error"
    assert body["error"]["field"] == "redirectTo"


# --- the edge projection ------------------------------------------------------------------


def _pair(workspace: Any, *, target_status: str, redirect_status: str = DomainStatus.ACTIVE
          ) -> tuple[CustomDomain, CustomDomain]:
    www = CustomDomainFactory(workspace=workspace, hostname="www.mine.com", status=target_status)
    apex = CustomDomainFactory(workspace=workspace, hostname="mine.com", status=redirect_status,
                               redirect_to=www, redirect_code=301)
    return www, apex


def test_item_carries_the_target_only_while_the_target_routes(workspace: Any) -> None:
    www, apex = _pair(workspace, target_status=DomainStatus.PENDING_VALIDATION)
    item = selectors.edge_item_for(apex)
    # Target not live yet: the redirect domain serves its workspace, the seed's shape exactly.
    assert set(item) == {"domain", "workspaceId", "status", "createdAt", "verifiedAt",
                         "updatedAt", "version"}
    assert item["status"] == "active"
    www.status = DomainStatus.ACTIVE
    www.save()
    apex.refresh_from_db()
    item = selectors.edge_item_for(apex)
    assert (item["redirectTo"], item["redirectCode"]) == ("www.mine.com", 301)
    # An inactive redirect domain is a tombstone without a target.
    apex.status = DomainStatus.REMOVED
    assert "redirectTo" not in selectors.edge_item_for(apex)


def test_a_target_going_live_re_pushes_its_redirects(
    workspace: Any, queued_tasks: Any, django_capture_on_commit_callbacks: Any
) -> None:
    www, apex = _pair(workspace, target_status=DomainStatus.DEPLOYING)
    before = apex.edge_version
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        assert lifecycle.domain_transition(domain=www, to=DomainStatus.ACTIVE,
                                           allowed_from=[DomainStatus.DEPLOYING],
                                           source="test", updates={"activated_at": timezone.now()})
    apex.refresh_from_db()
    assert apex.edge_version == before + 1
    assert (TaskName.EDGE_SYNC_HOSTNAME, ("mine.com",)) in queued_tasks.calls


def test_edge_item_round_trips_the_redirect_and_compares_it() -> None:
    plain = EdgeItem("mine.com", "acme", "active", 3)
    redirect = EdgeItem("mine.com", "acme", "active", 3, redirect_to="www.mine.com",
                        redirect_code=308)
    raw = redirect.to_dynamo()
    assert raw["redirectTo"] == {"S": "www.mine.com"} and raw["redirectCode"] == {"N": "308"}
    assert EdgeItem.from_dynamo(raw) == redirect
    assert "redirectTo" not in plain.to_dynamo()
    assert not plain.same_routing(redirect) and redirect.same_routing(EdgeItem.from_dynamo(raw))


# --- the projection in DynamoDB (moto in server mode) --------------------------------------


@pytest.mark.integration
def test_sync_backfill_and_reconcile_carry_the_redirect(aws_stack: Any, workspace: Any) -> None:
    www = CustomDomainFactory(workspace=workspace, hostname="www.mine.com",
                              status=DomainStatus.ACTIVE, edge_version=1)
    apex = CustomDomainFactory(workspace=workspace, hostname="mine.com",
                               status=DomainStatus.ACTIVE, edge_version=1,
                               redirect_to=www, redirect_code=301)
    assert edge_sync.edge_backfill()["written"] == 2
    item = edge_store.get_item("mine.com")
    assert item is not None and (item.redirect_to, item.redirect_code) == ("www.mine.com", 301)
    plain = edge_store.get_item("www.mine.com")
    assert plain is not None and plain.redirect_to == ""

    # An item that lost its redirect (a hand edit, an old writer) is stale for reconcile.
    edge_store.put_item(EdgeItem("mine.com", "acme", "active", 9))
    report = edge_sync.edge_reconcile()
    assert report.counts()["stale"] == 1 and report.counts()["repaired"] == 1
    item = edge_store.get_item("mine.com")
    assert item is not None and item.redirect_to == "www.mine.com" and item.version > 9

    # Clearing the redirect on a routed domain pushes a plain item.
    services.domain_set_redirect(domain=apex, redirect_to=None, by=None, source="test")
    assert edge_sync.edge_sync_hostname(hostname="mine.com") == "written"
    item = edge_store.get_item("mine.com")
    assert item is not None and item.redirect_to == "" and "redirectTo" not in item.to_dynamo()


def test_the_database_refuses_a_self_redirect_and_a_lone_code(workspace: Any) -> None:
    domain = CustomDomainFactory(workspace=workspace, hostname="www.mine.com")
    other = CustomDomainFactory(workspace=workspace, hostname="shop.mine.com")
    for fields in ({"redirect_to": domain, "redirect_code": 308}, {"redirect_code": 301},
                   {"redirect_to": other, "redirect_code": 302}, {"redirect_to": other}):
        with pytest.raises(IntegrityError), transaction.atomic():
            CustomDomain.objects.filter(pk=domain.pk).update(**fields)


@pytest.mark.parametrize("code", ["\u00b2", "\u0663\u0660\u0661", "３０８"])
def test_a_redirect_code_of_non_ascii_digits_is_a_400_not_a_500(code: str) -> None:
    """`str.isdigit()` accepts "²" (and Arabic-Indic or full-width digits); only 0-9 count."""
    from domains.errors import InvalidInput

    with pytest.raises(InvalidInput) as exc:
        services.redirect_code_check(code)
    assert exc.value.field == "redirect_code"


def test_a_failed_redirect_does_not_block_removing_its_target(
    api: APIClient, workspace: Any
) -> None:
    """One status set (live) for the `redirects` field, the chain check and the removal's
    refusal: a failed domain is not listed as a redirect, so it does not block either."""
    www = CustomDomainFactory(workspace=workspace, hostname="www.mine.com")
    CustomDomainFactory(workspace=workspace, hostname="mine.com", redirect_to=www,
                        redirect_code=308, status=DomainStatus.FAILED)
    assert services.domain_live_redirects(www) == []
    r = api.delete("/api/domains/www.mine.com/")
    assert r.status_code == 200, r.content
    assert CustomDomain.objects.get(hostname="mine.com").status == DomainStatus.FAILED


# --- row locks (query shape on PostgreSQL: SQLite has no FOR UPDATE) ------------------------


def _sql_log(run: Any) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    with CaptureQueriesContext(connection) as queries:
        run()
    return [q["sql"] for q in queries.captured_queries]


def test_removing_a_target_locks_it_before_listing_its_redirects(workspace: Any) -> None:
    """A registration with redirect_to=<target> locks the target (redirect_target_check,
    lock=True); the removal must hold the same row lock before it lists the redirects, or
    a redirect registered in between is left pointing at a removed domain."""
    www = CustomDomainFactory(workspace=workspace, hostname="www.mine.com")
    sql = _sql_log(lambda: services.domain_remove_target(domain=www, by=None, source="test"))
    locks = [i for i, q in enumerate(sql) if "FOR UPDATE" in q
             and f'"domains_customdomain"."id" = {www.pk} ' in q]
    listing = next(i for i, q in enumerate(sql) if '"redirect_to_id" =' in q
                   and "FOR UPDATE" not in q)
    assert locks and locks[0] < listing, sql


def test_setting_a_redirect_locks_both_rows_in_primary_key_order(workspace: Any) -> None:
    """A->B and B->A at once must not lock the two rows in opposite orders (a deadlock):
    one statement locks both, ordered by primary key."""
    a = CustomDomainFactory(workspace=workspace, hostname="a.mine.com")
    b = CustomDomainFactory(workspace=workspace, hostname="b.mine.com")
    sql = _sql_log(lambda: services.domain_set_redirect(domain=b, redirect_to="a.mine.com",
                                                        by=None, source="test"))
    locks = [q for q in sql if "FOR UPDATE" in q]
    assert locks, sql
    first = locks[0]
    assert any(f'"domains_customdomain"."id" IN ({x}, {y})' in first
               for x, y in ((a.pk, b.pk), (b.pk, a.pk))), locks
    assert 'ORDER BY "domains_customdomain"."id" ASC' in first, locks


def test_patch_refuses_unknown_fields(api: APIClient, workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="a.mine.com")
    err = error(api.patch("/api/domains/a.mine.com/", {"redirect_to": None, "redirect_too": 1},
                          format="json"), 400)
    assert err["field"] == "redirect_too"


def test_include_www_with_redirect_to_is_refused_on_every_path(
    api: APIClient, workspace: Any, apex_enabled: None
) -> None:
    """One check in the service: the pair already makes one of the two a redirect."""
    CustomDomainFactory(workspace=workspace, hostname="www.mine.com")
    r = register(api, hostname="client.com", include_www=True, redirect_to="www.mine.com")
    assert error(r, 400)["field"] == "redirect_to"
    r = api.post("/api/domains/register", {"subdomain": "", "domain": "client.com",
                                           "workspaceId": "acme", "includeWww": True,
                                           "redirectTo": "www.mine.com"}, format="json")
    assert error(r, 400)["field"] == "redirectTo"
    with pytest.raises(services.InvalidInput) as exc:
        services.domain_register_pair(workspace=workspace, hostname="client.com", by=None,
                                      redirect_to="www.mine.com")
    assert exc.value.field == "redirect_to"
    assert not CustomDomain.objects.filter(hostname__endswith="client.com").exists()
