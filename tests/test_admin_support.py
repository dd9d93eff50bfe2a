"""The support view: summary in words, search by any spelling, capacity, failure
reasons, chart axes, product naming. The browser half is tests/e2e/test_admin_support_browser.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind, Plan
from notifications.models import Notification, NotificationKind
from staff import capacity, dashboard, support
from tests.factories import CustomDomainFactory, UserFactory, WorkspaceFactory
from workflow import services, tasks

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/domains/customdomain/"
SAVE_BUTTONS = ('name="_save"', 'name="_continue"', 'name="_addanother"')


@pytest.fixture
def staff(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def page(client: Client, domain: CustomDomain) -> str:
    response = client.get(f"{CHANGELIST}{domain.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


# --- the summary -----------------------------------------------------------------------------


def test_pending_summary_names_the_reason_the_records_and_the_deadline(staff: Client) -> None:
    domain = CustomDomainFactory(
        hostname="gallery.client.com",
        checks={"dns": {"ok": False, "reason": "wrong_target", "at": "2026-01-02T03:04:05+00:00",
                        "detail": "gallery.client.com points to old.host.net, not domain.ve.ai."}},
        validation_records=[{"name": "_abc.gallery.client.com.", "type": "CNAME",
                             "value": "_def.acm-validations.aws."}],
        certificate_status="PENDING_VALIDATION",
        next_check_at=timezone.now() + timedelta(minutes=5),
    )
    summary = support.domain_summary(domain=domain)
    assert summary.state == "Setting up"
    assert "points somewhere else" in summary.reason and "old.host.net" in summary.reason
    assert [(r.name, r.value, r.found) for r in summary.records] == [
        ("gallery.client.com", "domain.ve.ai", "missing"),
        ("_abc.gallery.client.com", "_def.acm-validations.aws", ""),
    ]
    labels = [m.label for m in summary.moments]
    assert labels == ["Next check", "Fails if still not set up by"]
    assert summary.moments[1].at == domain.created_at + timedelta(hours=72)

    html = page(staff, domain)
    for text in ("What is wrong", "old.host.net", "DNS records the customer must create",
                 "_def.acm-validations.aws", "Fails if still not set up by",
                 "Waiting for validation", "2026-01-02 03:04 UTC", 'class="vd-copy"'):
        assert text in html, text
    assert "PENDING_VALIDATION" not in html.split('id="vd-technical"')[0]
    assert "p.m." not in html and "a.m." not in html
    for button in SAVE_BUTTONS:
        assert button not in html
    # Summary, checks, audit trail, then the collapsed technical details.
    order = [html.index(f'id="{part}"') for part in
             ("vd-summary", "vd-checks", "vd-audit", "vd-technical")]
    assert order == sorted(order)
    assert '<details class="vd-technical" id="vd-technical">' in html  # closed by default


def test_misconfigured_summary_gives_the_detach_deadline(staff: Client) -> None:
    since = timezone.now() - timedelta(hours=5)
    domain = CustomDomainFactory(
        status=DomainStatus.MISCONFIGURED, misconfigured_at=since, certificate_status="ISSUED",
        checks={"dns": {"ok": False, "reason": "nxdomain", "detail": "x does not exist."}},
    )
    summary = support.domain_summary(domain=domain)
    assert summary.state == "Misconfigured"
    assert "does not exist in DNS" in summary.reason
    (deadline,) = [m for m in summary.moments if m.label.startswith("Detached")]
    assert deadline.at == since + timedelta(hours=72)
    assert "Detached and removed if not fixed by" in page(staff, domain)


def test_active_summary_asks_nothing_unless_the_certificate_is_in_trouble() -> None:
    fine = CustomDomainFactory(status=DomainStatus.ACTIVE, certificate_status="ISSUED",
                               certificate_renewal_status="PENDING_AUTO_RENEWAL")
    summary = support.domain_summary(domain=fine)
    assert (summary.state, summary.reason) == ("Live", "")
    assert summary.certificate == "Issued; renewal under way"
    assert summary.action.startswith("Nothing")
    trouble = CustomDomainFactory(status=DomainStatus.ACTIVE, certificate_status="ISSUED",
                                  certificate_trouble="CAA at client.com forbids Amazon.",
                                  certificate_trouble_at=timezone.now())
    summary = support.domain_summary(domain=trouble)
    assert summary.reason == "CAA at client.com forbids Amazon."
    assert not summary.action.startswith("Nothing")


def test_failed_summary_says_why_and_that_nothing_happens_by_itself(staff: Client) -> None:
    domain = CustomDomainFactory(status=DomainStatus.FAILED, failed_at=timezone.now(),
                                 last_error="The domain was never pointed at us within 3 days.")
    summary = support.domain_summary(domain=domain)
    assert summary.reason_heading == "Why it failed"
    assert summary.reason.startswith("The domain was never pointed")
    assert "not checked again" in summary.next_step
    assert "register the domain again" in page(staff, domain)


def test_removed_page_asks_for_no_records_and_does_not_claim_attached(
    staff: Client, staff_user: Any, django_capture_on_commit_callbacks: Any,
) -> None:
    domain = CustomDomainFactory(
        status=DomainStatus.ACTIVE, cdn_resource_id="E123", certificate_arn="arn:aws:acm:x",
        checks={"cdn": {"ok": True, "detail": "Attached (distribution-per-domain: E123)."}},
        validation_records=[{"name": "_abc.x.", "type": "CNAME", "value": "_def.y."}],
    )
    with django_capture_on_commit_callbacks(execute=False):  # no worker: clean-up pending
        services.domain_remove(domain=domain, by=staff_user, source="admin",
                               reason="Customer asked to stop.")
    domain.refresh_from_db()
    html = page(staff, domain)
    summary_part = html.split('id="vd-technical"')[0]
    assert "records the customer must create" not in summary_part.lower()
    assert "Attached" not in summary_part
    assert "Still attached (E123); detaching." in summary_part
    assert "Customer asked to stop." in summary_part
    assert f"{staff_user.username}, in the admin" in summary_part
    assert "Why it was removed" in summary_part
    assert "Check now" not in summary_part  # no page actions on a removed domain

    # Once the clean-up finished, it says so.
    CustomDomain.objects.filter(pk=domain.pk).update(
        cdn_resource_id="", certificate_arn="", edge_synced_version=domain.edge_version)
    domain.refresh_from_db()
    summary = support.domain_summary(domain=domain)
    assert [c.detail for c in summary.checks] == ["Detached.", "Deleted.",
                                                  "Removed from the edge."]
    assert summary.next_step == "Nothing: the clean-up is complete."
    assert summary.certificate == "None was requested"


def test_audit_trail_is_newest_first_and_says_who(staff_user: Any) -> None:
    domain = CustomDomainFactory()
    now = timezone.now()
    for minutes, source, actor in ((30, "api", None), (20, "system:check", None),
                                   (10, "admin", staff_user)):
        with time_machine.travel(now - timedelta(minutes=minutes), tick=False):
            DomainEvent.objects.create(domain=domain, kind=EventKind.CHECK_REQUESTED,
                                       source=source, actor=actor)
    with time_machine.travel(now, tick=False):
        DomainEvent.objects.create(domain=domain, kind=EventKind.STATUS_CHANGED,
                                   source="system:check", from_status="pending_validation",
                                   to_status="active", message="verified")
    trail = support.domain_audit_trail(domain=domain)
    assert [a.who for a in trail] == ["Automatic check", f"{staff_user.username}, in the admin",
                                      "Automatic check", "The customer's app (API)"]
    assert trail[0].change == "Setting up \u2192 Live"
    assert [a.at for a in trail] == sorted((a.at for a in trail), reverse=True)


def test_domain_page_queries_do_not_grow_with_events(staff: Client,
                                                     django_assert_max_num_queries: Any) -> None:
    domain = CustomDomainFactory()
    DomainEvent.objects.bulk_create(DomainEvent(domain=domain, kind=EventKind.CHECK_REQUESTED,
                                                source="api") for _ in range(300))
    page(staff, domain)
    with django_assert_max_num_queries(12):
        html = page(staff, domain)
    assert html.count('class="vd-when"') == support.AUDIT_TRAIL_LIMIT
    assert "All events for this domain" in html


def test_read_only_pages_have_no_save_buttons(staff: Client) -> None:
    domain = CustomDomainFactory()
    event = DomainEvent.objects.create(domain=domain, kind=EventKind.REGISTERED, source="api")
    notification = Notification.objects.create(domain=domain, kind=NotificationKind.DOMAIN_ACTIVE,
                                               state_key="status:1")
    for url in (f"{CHANGELIST}{domain.pk}/change/",
                f"/admin/domains/domainevent/{event.pk}/change/",
                f"/admin/notifications/notification/{notification.pk}/change/"):
        response = staff.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert not [b for b in SAVE_BUTTONS if b in html], url


# --- page buttons ---------------------------------------------------------------------------


def test_check_now_button_on_the_page(staff: Client, staff_user: Any,
                                      django_capture_on_commit_callbacks: Any) -> None:
    domain = CustomDomainFactory()
    url = f"{CHANGELIST}{domain.pk}/act/check_now/"
    assert url in page(staff, domain)
    assert staff.get(url).status_code == 405
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = staff.post(url)
    assert response.status_code == 302 and response["Location"].endswith(f"/{domain.pk}/change/")
    assert len(queued) == 1  # the check, enqueued after commit by the same service as the API
    event = domain.events.get()
    assert (event.kind, event.source, event.actor) == (EventKind.CHECK_REQUESTED, "admin",
                                                       staff_user)
    domain.refresh_from_db()
    assert domain.next_check_at is not None and domain.fast_checks_until is not None
    assert staff.post(f"{CHANGELIST}{domain.pk}/act/remove_domains/").status_code == 403


def test_page_buttons_need_the_change_permission(db: Any) -> None:
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_customdomain"))
    client = Client()
    client.force_login(viewer)
    domain = CustomDomainFactory()
    html = page(client, domain)
    assert "/act/check_now/" not in html
    assert client.post(f"{CHANGELIST}{domain.pk}/act/check_now/").status_code == 403
    assert not domain.events.exists()


# --- the list ------------------------------------------------------------------------------


def test_list_columns_words_and_no_icons(staff: Client) -> None:
    now = timezone.now()
    CustomDomainFactory(hostname="ok.client.com", status=DomainStatus.ACTIVE,
                        next_check_at=now + timedelta(hours=3))
    CustomDomainFactory(hostname="xn--bcher-kva.client.com",
                        checks={"dns": {"ok": False, "reason": "nxdomain", "detail": "gone"}})
    response = staff.get(CHANGELIST)
    html = response.content.decode()
    headers = [str(f) for f in response.context["cl"].list_display]
    assert headers == ["action_checkbox", "domain", "workspace", "state", "problem", "age",
                       "next_check"]
    assert "bücher.client.com" in html  # the Unicode spelling beside the stored one
    assert '<span class="vd-badge vd-tone-ok">Live</span>' in html
    assert "does not exist in DNS" in html
    assert "in 2\xa0hours" in html or "in 3\xa0hours" in html
    assert "icon-no.svg" not in html and "icon-yes.svg" not in html


@pytest.mark.parametrize("query", [
    "bücher.client.com",
    "BÜCHER.client.com.",
    "xn--bcher-kva.client.com",
    "https://bücher.client.com/gallery?x=1",
    "http://user@XN--BCHER-KVA.client.com:8443/",
    "bücher",
])
def test_search_finds_a_domain_by_any_spelling(staff: Client, query: str) -> None:
    CustomDomainFactory(hostname="xn--bcher-kva.client.com")
    CustomDomainFactory(hostname="other.client.com")
    response = staff.get(CHANGELIST, {"q": query})
    assert response.status_code == 200
    assert [d.hostname for d in response.context["cl"].result_list] == [
        "xn--bcher-kva.client.com"]


def test_search_with_nonsense_is_not_an_error(staff: Client) -> None:
    CustomDomainFactory(hostname="gallery.client.com")
    for query in ("https://", "::::", "a..b", "[::1]", "x" * 300):
        response = staff.get(CHANGELIST, {"q": query})
        assert response.status_code == 200, query
    # A NUL byte is refused before any query (a 400, never PostgreSQL's 500).
    assert staff.get(CHANGELIST, {"q": "\u0000"}).status_code == 400
    assert support.hostname_search_forms("https://") == []


# --- product naming, dates ------------------------------------------------------------------


def test_header_and_title_name_the_product_and_view_site_is_gone(staff: Client) -> None:
    html = staff.get("/admin/").content.decode()
    assert "vedomains" in html.split("</title>")[0]
    assert "Django administration" not in html and "Django site admin" not in html
    assert "View site" not in html
    listing = staff.get(CHANGELIST).content.decode()
    assert 'href="/api/docs/"' in listing and "View site" not in listing


def test_dates_read_the_same_everywhere(staff: Client) -> None:
    when = timezone.now().replace(hour=21, minute=19, second=7, microsecond=123456)
    domain = CustomDomainFactory(verified_at=when)
    html = page(staff, domain)
    assert when.strftime("%Y-%m-%d 21:19") in html
    assert "p.m." not in html and ".123456" not in html


# --- dashboard: capacity, failure reasons, axes ------------------------------------------------


def test_capacity_rows(settings: Any) -> None:
    settings.VEDOMAINS_ACM_MAX_PENDING = 4
    settings.VEDOMAINS_ACM_MAX_PENDING_PER_WORKSPACE = 3
    busy = WorkspaceFactory(slug="busy", plan=Plan.PRO)
    quiet = WorkspaceFactory(slug="quiet", plan=Plan.PRO)
    now = timezone.now()
    CustomDomainFactory.create_batch(3, workspace=busy, certificate_requested_at=now)
    CustomDomainFactory(workspace=quiet)
    CustomDomainFactory(workspace=quiet, status=DomainStatus.ACTIVE)
    CustomDomainFactory(workspace=quiet, status=DomainStatus.REMOVED)
    # A failed claim frees its place in the plan (domain_register counts LIVE_STATUSES).
    CustomDomainFactory(workspace=quiet, status=DomainStatus.FAILED)
    rows = {r.label: r for r in capacity.capacity_rows(now=now)}
    account = rows["Domains setting up (certificate requested or not yet)"]
    assert (account.used, account.limit, account.level, account.percent) == (4, 4, "full", 100)
    assert (rows["Domains setting up, workspace busy"].used,
            rows["Domains setting up, workspace busy"].level) == (3, "full")
    assert rows["Domains setting up, workspace quiet"].used == 1
    assert rows["Certificates requested in the last 24 h"].used == 3
    assert rows["Certificates requested in the last 24 h"].level == ""
    pro_limit = settings.VEDOMAINS_PLAN_LIMITS["pro"]
    assert (rows["Domains of workspace quiet (Pro plan)"].used,
            rows["Domains of workspace quiet (Pro plan)"].limit) == (2, pro_limit)


def test_capacity_sources_are_the_extension_point(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = capacity.CapacityRow("CloudFront tenants", 9, 10)
    monkeypatch.setattr(capacity, "ROW_SOURCES", [*capacity.ROW_SOURCES, lambda now: [extra]])
    rows = capacity.capacity_rows()
    assert rows[-1] == extra and extra.level == "warn"


@pytest.mark.per_domain
def test_failure_breakdown_from_the_engine(aws_stack: Any, dns_server: Any,
                                           settings: Any) -> None:
    """Fail a domain through the real engine (by its tasks, the interface the structure
    work keeps), so the classifier follows the engine's wording."""
    ws = WorkspaceFactory(plan=Plan.BUSINESS)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        never = services.domain_register(workspace=ws, hostname="never.client-example.com",
                                         by=None)
    assert tasks.domain_request_certificate(never.pk) == "requested"
    with time_machine.travel(start + timedelta(
        seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS) + timedelta(hours=1)):
        assert tasks.domain_check(never.pk) == "failed"
    never.refresh_from_db()
    assert never.status == DomainStatus.FAILED, never.last_error

    live = CustomDomainFactory(workspace=ws, hostname="live.client-example.com",
                               status=DomainStatus.ACTIVE, activated_at=start,
                               next_check_at=start)
    assert tasks.domain_check(live.pk) == "misconfigured"  # no CNAME any more: NXDOMAIN
    live.refresh_from_db()
    assert live.status == DomainStatus.MISCONFIGURED

    rows = {r["key"]: r for r in dashboard.failure_breakdown(timezone.now() + timedelta(days=4))}
    assert set(rows) == {"never_pointed", "dns_deleted"}
    assert rows["never_pointed"]["count"] == 1 and rows["dns_deleted"]["percent"] == 50


@pytest.mark.parametrize("longest_seconds,unit", [
    (13, "seconds"), (119, "seconds"), (120, "minutes"), (5400, "minutes"),
    (7200, "hours"), (3 * 86400, "days"),
])
def test_chart_axis_unit_and_distinct_ticks(longest_seconds: float, unit: str) -> None:
    name, per_unit = dashboard._unit(longest_seconds)
    assert name == unit
    top, ticks, decimals = dashboard.axis_ticks(longest_seconds / per_unit)
    labels = [f"{t:.{decimals}f}" for t in ticks]
    assert len(set(labels)) == len(labels) >= 2, labels
    assert top >= longest_seconds / per_unit and ticks[0] == 0 and ticks[-1] == top
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1  # evenly spaced


def test_chart_shows_13_seconds_as_seconds(db: Any) -> None:
    ws = WorkspaceFactory()
    now = timezone.now()
    with time_machine.travel(now - timedelta(seconds=13), tick=False):
        CustomDomain.objects.create(hostname="quick.client.com", workspace=ws,
                                    ownership_token="t", status=DomainStatus.ACTIVE,
                                    activated_at=now)
    chart = dashboard.activation_chart(now)
    assert chart["unit"] == "seconds" and chart["overall_mean"] == 13.0
    values = [t["value"] for t in chart["ticks"]]
    assert values == ["0", "5", "10", "15"]


def test_dashboard_shows_capacity_and_failures(staff: Client) -> None:
    domain = CustomDomainFactory(status=DomainStatus.MISCONFIGURED)
    DomainEvent.objects.create(domain=domain, kind=EventKind.STATUS_CHANGED, source="system:check",
                               from_status="active", to_status="misconfigured",
                               data={"reason": "wrong_target"})
    html = staff.get("/admin/domains/dashboard/").content.decode()
    assert 'id="vd-capacity"' in html
    assert "Domains setting up (certificate requested or not yet)" in html
    assert "pointed elsewhere" in html
