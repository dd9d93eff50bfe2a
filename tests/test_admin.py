"""The staff admin: pages render, filters filter, actions call services, queries stay bounded."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind, Plan, Role
from domains.task_names import TaskName
from tests.factories import CustomDomainFactory, MembershipFactory, UserFactory, WorkspaceFactory
from tests.notify_helpers import TaskRecorder
from workflow.services import ownership_token_for

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/domains/customdomain/"
_serial = itertools.count()


@pytest.fixture
def sent(queued_tasks: TaskRecorder) -> list[tuple[str, tuple[Any, ...]]]:
    return queued_tasks.calls


@pytest.fixture
def staff(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def make_domains(n: int, **fields: Any) -> list[CustomDomain]:
    """n domains across a few workspaces, inserted in bulk (1,000 factory saves are slow)."""
    workspaces = [WorkspaceFactory(plan=plan) for plan in (Plan.PRO, Plan.BUSINESS, Plan.FREE)]
    rows = []
    for i in range(n):
        ws = workspaces[i % len(workspaces)]
        host = f"d{next(_serial)}.bulk-client.com"
        rows.append(CustomDomain(
            hostname=host, workspace=ws,
            ownership_token=ownership_token_for(workspace_id=ws.pk, hostname=host),
            last_error="boom" if i % 2 else "", edge_version=i % 3,
            checks={"dns": {"ok": True, "detail": "ok", "at": timezone.now().isoformat()}},
            **fields,
        ))
    return CustomDomain.objects.bulk_create(rows)


# --- access -----------------------------------------------------------------------------------


def test_admin_is_staff_only(db: Any) -> None:
    user = MembershipFactory(role=Role.OWNER).user
    client = Client()
    client.force_login(user)
    r = client.get(CHANGELIST)
    assert r.status_code == 302
    assert "/admin/login/" in r["Location"]


# --- changelists ------------------------------------------------------------------------------


def test_domain_changelist_renders_columns(staff: Client) -> None:
    CustomDomainFactory(hostname="gallery.client.com", last_error="CNAME missing",
                        certificate_status="PENDING_VALIDATION")
    r = staff.get(CHANGELIST)
    assert r.status_code == 200
    html = r.content.decode()
    for text in ("gallery.client.com", "Setting up", "CNAME missing", "Next check", "Check now",
                 "Push to edge", "Remove (detach and clean up)", "has error",
                 "certificate pending &gt; 24 h", "edge out of sync"):
        assert text in html, text
    # States in words, and no yes/no icons (a red cross used to mean "no error").
    assert "PENDING_VALIDATION" not in html
    assert "icon-no.svg" not in html and "icon-yes.svg" not in html
    # Deleting rows is disabled: the bulk delete action is gone.
    assert "delete_selected" not in html


def test_domain_changelist_filters(staff: Client) -> None:
    now = timezone.now()
    pro = WorkspaceFactory(slug="pro-ws", plan=Plan.PRO)
    biz = WorkspaceFactory(slug="biz-ws", plan=Plan.BUSINESS)
    CustomDomainFactory(workspace=pro, hostname="ok.client.com", status=DomainStatus.ACTIVE)
    CustomDomainFactory(workspace=pro, hostname="err.client.com", last_error="boom")
    CustomDomainFactory(workspace=biz, hostname="stuck.client.com",
                        certificate_requested_at=now - timedelta(hours=30),
                        certificate_status="PENDING_VALIDATION")
    CustomDomainFactory(workspace=biz, hostname="fresh.client.com",
                        certificate_requested_at=now - timedelta(hours=2))
    CustomDomainFactory(workspace=biz, hostname="issued.client.com",
                        certificate_requested_at=now - timedelta(hours=30),
                        certificate_status="ISSUED")
    CustomDomainFactory(workspace=pro, hostname="lag.client.com", status=DomainStatus.ACTIVE,
                        edge_version=3, edge_synced_version=2)

    def hosts(query: str) -> set[str]:
        r = staff.get(CHANGELIST + query)
        assert r.status_code == 200, query
        return {d.hostname for d in r.context["cl"].result_list}

    assert hosts("?has_error=yes") == {"err.client.com"}
    assert "err.client.com" not in hosts("?has_error=no")
    assert hosts("?cert_pending=yes") == {"stuck.client.com"}
    assert hosts("?edge_out_of_sync=yes") == {"lag.client.com"}
    assert hosts("?status__exact=active") == {"ok.client.com", "lag.client.com"}
    assert hosts("?workspace__plan__exact=business") == {
        "stuck.client.com", "fresh.client.com", "issued.client.com"
    }
    assert hosts("?q=stuck") == {"stuck.client.com"}
    assert hosts("?q=biz-ws") == {"stuck.client.com", "fresh.client.com", "issued.client.com"}


def test_domain_changelist_queries_do_not_grow_with_rows(staff: Client) -> None:
    make_domains(10)
    staff.get(CHANGELIST)  # warm up: session, content types, permissions caches
    with CaptureQueriesContext(connection) as ten:
        r = staff.get(CHANGELIST)
        assert r.status_code == 200
        assert len(r.context["cl"].result_list) == 10
    make_domains(990)
    assert CustomDomain.objects.count() == 1000
    with CaptureQueriesContext(connection) as thousand:
        r = staff.get(CHANGELIST + "?all=")
        assert r.status_code == 200
        assert len(r.context["cl"].result_list) == 100  # a full page (list_per_page)
    assert len(thousand) == len(ten), [q["sql"] for q in thousand.captured_queries]
    # Filtered views too.
    with CaptureQueriesContext(connection) as filtered:
        assert staff.get(CHANGELIST + "?has_error=yes&edge_out_of_sync=no").status_code == 200
    assert len(filtered) <= len(ten)


def test_workspace_and_event_changelists_are_bounded(staff: Client) -> None:
    domains = make_domains(10)
    for d in domains:
        DomainEvent.objects.create(domain=d, kind=EventKind.REGISTERED, source="test")
    pages = ["/admin/domains/workspace/", "/admin/domains/domainevent/"]
    counts_small = {}
    for page in pages:
        staff.get(page)
        with CaptureQueriesContext(connection) as ctx:
            assert staff.get(page).status_code == 200
        counts_small[page] = len(ctx)
    more = make_domains(300)
    DomainEvent.objects.bulk_create(
        DomainEvent(domain=d, kind=EventKind.REGISTERED, source="test") for d in more
    )
    for page in pages:
        with CaptureQueriesContext(connection) as ctx:
            assert staff.get(page).status_code == 200
        assert len(ctx) == counts_small[page], page


def test_workspace_admin_shows_live_domain_count_and_members(staff: Client) -> None:
    ws = WorkspaceFactory(slug="acme-ws", name="Acme Photos")
    member = MembershipFactory(workspace=ws, role=Role.ADMIN).user
    CustomDomainFactory.create_batch(2, workspace=ws)
    CustomDomainFactory(workspace=ws, status=DomainStatus.REMOVED)
    r = staff.get("/admin/domains/workspace/?q=acme")
    assert r.status_code == 200
    (row,) = r.context["cl"].result_list
    assert row.live_domains == 2
    r = staff.get(f"/admin/domains/workspace/{ws.pk}/change/")
    assert r.status_code == 200
    assert member.username in r.content.decode()
    assert staff.get("/admin/domains/workspace/?plan__exact=pro").status_code == 200


# --- change page ------------------------------------------------------------------------------


def test_domain_change_page_shows_dns_records_checks_and_events(
    staff: Client, staff_user: Any
) -> None:
    domain = CustomDomainFactory(
        hostname="gallery.client.com",
        ownership_required=True,
        validation_records=[{"name": "_abc.gallery.client.com.", "type": "CNAME",
                             "value": "_def.acm-validations.aws."}],
        checks={"dns": {"ok": False, "detail": "No CNAME <script>", "at": "2026-01-01T00:00:00"}},
    )
    DomainEvent.objects.create(domain=domain, kind=EventKind.REGISTERED, source="api",
                               actor=staff_user, message="Registered for workspace x")
    r = staff.get(f"/admin/domains/customdomain/{domain.pk}/change/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "DNS records the customer must create" in html
    assert "domain.ve.ai" in html
    assert "_abc.gallery.client.com" in html
    assert "_vedomains-challenge.gallery.client.com" in html
    assert "No CNAME &lt;script&gt;" in html  # escaped, never raw HTML from a check
    assert "Registered for workspace x" in html
    # System-managed: no editable inputs for the record's fields, no delete link.
    assert 'name="hostname"' not in html and 'name="status"' not in html
    assert "/delete/" not in html


def test_domain_delete_is_disabled(staff: Client) -> None:
    domain = CustomDomainFactory()
    r = staff.get(f"/admin/domains/customdomain/{domain.pk}/delete/")
    assert r.status_code == 403
    assert CustomDomain.objects.filter(pk=domain.pk).exists()


def test_changing_a_domain_changes_nothing(staff: Client) -> None:
    domain = CustomDomainFactory(hostname="gallery.client.com")
    page = staff.get(f"/admin/domains/customdomain/{domain.pk}/change/").content.decode()
    # Nothing is editable, so the page is a view: no Save buttons.
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    r = staff.post(f"/admin/domains/customdomain/{domain.pk}/change/",
                   {"hostname": "evil.client.com", "status": "active"})
    assert r.status_code == 403
    domain.refresh_from_db()
    assert (domain.hostname, domain.status) == ("gallery.client.com", "pending_validation")


# --- add goes through the service -------------------------------------------------------------


def test_add_page_registers_through_the_service(
    staff: Client, staff_user: Any, sent: list, django_capture_on_commit_callbacks: Any
) -> None:
    ws = WorkspaceFactory(slug="acme", plan=Plan.PRO)
    assert staff.get("/admin/domains/customdomain/add/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        r = staff.post("/admin/domains/customdomain/add/",
                       {"hostname": "Gallery.Client.com.", "workspace": ws.pk})
    assert r.status_code == 302, r.content.decode()[:3000]
    domain = CustomDomain.objects.get()
    assert domain.hostname == "gallery.client.com"
    assert r["Location"].endswith("/admin/domains/customdomain/")
    event = domain.events.get()
    assert (event.kind, event.source, event.actor) == (EventKind.REGISTERED, "admin", staff_user)
    # The certificate waits for the CNAME: registration queues the first check.
    assert [name for name, _ in sent] == [TaskName.DOMAIN_CHECK]


@pytest.mark.parametrize(
    "hostname,plan,message",
    [
        ("client.com", Plan.PRO, "apex domain"),
        ("https://x.client.com", Plan.PRO, "without a scheme"),
        ("x.ve.ai", Plan.PRO, "belongs to the platform"),
        ("gallery.client.com", Plan.FREE, "does not include custom domains"),
    ],
)
def test_add_page_shows_the_service_s_refusal(
    staff: Client, hostname: str, plan: str, message: str
) -> None:
    ws = WorkspaceFactory(plan=plan)
    r = staff.post("/admin/domains/customdomain/add/", {"hostname": hostname, "workspace": ws.pk})
    assert r.status_code == 200
    assert message in r.content.decode()
    assert not CustomDomain.objects.exists()


def test_workspace_autocomplete(staff: Client) -> None:
    WorkspaceFactory(slug="acme-photos")
    r = staff.get("/admin/autocomplete/", {"app_label": "domains", "model_name": "customdomain",
                                           "field_name": "workspace", "term": "acme"})
    assert r.status_code == 200
    assert [row["text"] for row in r.json()["results"]] == ["acme-photos"]


# --- actions ----------------------------------------------------------------------------------


def run_action(staff: Client, action: str, domains: list[CustomDomain]) -> Any:
    # The list hides removed domains unless asked for every state; staff select a removed
    # one from that view.
    return staff.post(
        f"{CHANGELIST}?status__exact=all",
        {"action": action, "_selected_action": [d.pk for d in domains]},
        follow=True,
    )


def test_check_now_action(
    staff: Client, staff_user: Any, sent: list, django_capture_on_commit_callbacks: Any
) -> None:
    live = CustomDomainFactory.create_batch(2)
    gone = CustomDomainFactory(status=DomainStatus.REMOVED)
    with django_capture_on_commit_callbacks(execute=True):
        r = run_action(staff, "check_now", [*live, gone])
    assert r.status_code == 200
    msgs = messages_of(r)
    assert "Check queued: 2 domain(s)." in msgs
    assert any(gone.hostname in m and "failed for 1" in m for m in msgs)
    assert sorted(args[0] for _, args in sent) == sorted(d.pk for d in live)
    for d in live:
        event = d.events.get()
        assert (event.kind, event.source, event.actor) == (
            EventKind.CHECK_REQUESTED, "admin", staff_user
        )


def test_push_to_edge_action(
    staff: Client, staff_user: Any, sent: list, django_capture_on_commit_callbacks: Any
) -> None:
    domain = CustomDomainFactory(status=DomainStatus.ACTIVE)
    with django_capture_on_commit_callbacks(execute=True):
        r = run_action(staff, "push_to_edge", [domain])
    assert "Edge push queued: 1 domain(s)." in messages_of(r)
    assert sent == [(TaskName.EDGE_SYNC_HOSTNAME, (domain.hostname,))]
    event = domain.events.get()
    assert (event.kind, event.source, event.actor) == (
        EventKind.EDGE_PUSH_REQUESTED, "admin", staff_user
    )


def test_remove_action(
    staff: Client, staff_user: Any, sent: list, django_capture_on_commit_callbacks: Any
) -> None:
    domain = CustomDomainFactory(status=DomainStatus.ACTIVE)
    gone = CustomDomainFactory(status=DomainStatus.REMOVED)
    with django_capture_on_commit_callbacks(execute=True):
        r = run_action(staff, "remove_domains", [domain, gone])
    msgs = messages_of(r)
    assert "Removed: 1 domain(s)." in msgs
    assert any("already removed" in m for m in msgs)
    domain.refresh_from_db()
    assert domain.status == DomainStatus.REMOVED
    event = domain.events.get(kind=EventKind.STATUS_CHANGED)
    assert (event.source, event.actor) == ("admin", staff_user)
    assert {name for name, _ in sent} == {TaskName.EDGE_SYNC_HOSTNAME,
                                          TaskName.DOMAIN_CLEANUP}


def test_actions_need_change_permission(db: Any) -> None:
    # A staff user with view-only permission sees the list but cannot run actions.
    from django.contrib.auth.models import Permission

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_customdomain"))
    client = Client()
    client.force_login(viewer)
    domain = CustomDomainFactory(status=DomainStatus.ACTIVE)
    r = client.get(CHANGELIST)
    assert r.status_code == 200
    assert "Check now" not in r.content.decode()
    run_action(client, "remove_domains", [domain])
    domain.refresh_from_db()
    assert domain.status == DomainStatus.ACTIVE


# --- audit trail ------------------------------------------------------------------------------


def test_events_admin_is_read_only(staff: Client) -> None:
    domain = CustomDomainFactory()
    event = DomainEvent.objects.create(domain=domain, kind=EventKind.REGISTERED, source="api")
    assert staff.get("/admin/domains/domainevent/").status_code == 200
    assert staff.get("/admin/domains/domainevent/?kind__exact=registered").status_code == 200
    assert staff.get(f"/admin/domains/domainevent/?q={domain.hostname}").status_code == 200
    assert staff.get("/admin/domains/domainevent/add/").status_code == 403
    assert staff.get(f"/admin/domains/domainevent/{event.pk}/delete/").status_code == 403
    r = staff.get(f"/admin/domains/domainevent/{event.pk}/change/")
    assert r.status_code == 200  # view-only page
    assert 'name="_save"' not in r.content.decode()
    r = staff.post(f"/admin/domains/domainevent/{event.pk}/change/", {"message": "rewritten"})
    assert r.status_code == 403
    event.refresh_from_db()
    assert event.message == ""


def test_push_to_edge_refuses_a_domain_the_edge_never_held(
    staff: Client, sent: list, django_capture_on_commit_callbacks: Any
) -> None:
    pending = CustomDomainFactory(status=DomainStatus.PENDING_VALIDATION)
    with django_capture_on_commit_callbacks(execute=True):
        r = run_action(staff, "push_to_edge", [pending])
    assert any("not routed by the edge yet" in m for m in messages_of(r))
    assert not pending.events.exists() and sent == []
    page = staff.get(f"{CHANGELIST}{pending.pk}/change/").content.decode()
    assert 'name="push_to_edge"' not in page and 'name="check_now"' in page


@pytest.mark.parametrize(("plan", "override", "valid"), [
    ("pro", None, True), ("Pro", None, False), ("pro ", None, True), ("gold", None, False),
    ("gold", 5, True),  # a plan the default table does not know, with this workspace's limit
])
def test_the_workspace_form_refuses_a_plan_that_would_silently_mean_a_limit_of_0(
    plan: str, override: int | None, valid: bool,
) -> None:
    from django.forms import modelform_factory

    from domains.models import Workspace
    from staff.admin import WorkspaceAdminForm

    form_class = modelform_factory(Workspace, form=WorkspaceAdminForm,
                                   fields=["slug", "name", "plan", "domain_limit_override"])
    form = form_class(data={"slug": "acme", "name": "Acme", "plan": plan,
                            "domain_limit_override": "" if override is None else override})
    assert form.is_valid() is valid, form.errors
    if valid:
        assert form.cleaned_data["plan"] == plan.strip()  # the form strips what staff type
    else:
        assert "plan" in form.errors


def test_a_failed_admin_sign_in_logs_the_typed_name_only_for_an_existing_user(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """People paste passwords into the username box: an unknown name is logged as a short
    hash, an existing account by name (the audit trail)."""
    UserFactory(username="ops-alice", is_staff=True)
    pasted = "hunter2-Correct-Horse"
    with caplog.at_level("WARNING", logger="vedomains.security"):
        Client().post("/admin/login/", {"username": pasted, "password": "x"})
        Client().post("/admin/login/", {"username": "ops-alice", "password": "wrong"})
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "vedomains.security")
    assert "sign-in failed" in text
    assert pasted not in text
    assert "'ops-alice'" in text
