"""Plan changes and their consequences for a workspace's domains (veai/plans.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from domains.errors import NotEntitled
from domains.models import (
    CustomDomain,
    DomainEvent,
    DomainStatus,
    EventKind,
    PlanGrace,
    Role,
    Workspace,
)
from domains.task_names import TaskName
from notifications import sending
from notifications.models import Notification, NotificationKind, WebhookDelivery
from tests.factories import (
    CustomDomainFactory,
    MembershipFactory,
    WebhookEndpointFactory,
    WorkspaceFactory,
)
from veai import plans, workspace_sync
from workflow import services

pytestmark = pytest.mark.django_db

GRACE = timedelta(days=7)
WARNING = timedelta(days=1)


@pytest.fixture(autouse=True)
def _plan_settings(settings: Any) -> None:
    settings.VEDOMAINS_PLAN_GRACE_SECONDS = GRACE.total_seconds()
    settings.VEDOMAINS_PLAN_WARNING_SECONDS = WARNING.total_seconds()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def _workspace(plan: str, live: int) -> tuple[Workspace, list[CustomDomain]]:
    ws = WorkspaceFactory(slug="acme", plan=plan)
    MembershipFactory(workspace=ws, role=Role.OWNER, user__email="owner@acme.com")
    domains = []
    start = timezone.now() - timedelta(days=30)
    for i in range(live):
        d = CustomDomainFactory(workspace=ws, hostname=f"d{i + 1}.client.com",
                                status=DomainStatus.ACTIVE)
        # Distinct creation times, oldest first: "newest" is then unambiguous.
        CustomDomain.objects.filter(pk=d.pk).update(created_at=start + timedelta(days=i))
        domains.append(d)
    return ws, domains


def _register(ws: Workspace, host: str) -> CustomDomain:
    return services.domain_register(workspace=ws, hostname=host, by=None, source="test")


def _statuses(ws: Workspace) -> dict[str, str]:
    return dict(CustomDomain.objects.filter(workspace=ws).values_list("hostname", "status"))


def test_an_upgrade_allows_more_domains_at_once() -> None:
    ws, _ = _workspace("pro", 3)
    with pytest.raises(NotEntitled) as exc:
        _register(ws, "d4.client.com")
    assert exc.value.code == "domain_limit_reached"
    change = plans.workspace_plan_change(workspace=ws, plan="business", source="test")
    assert (change.outcome, change.limit, change.live) == ("within_limit", 25, 3)
    assert _register(ws, "d4.client.com").status == DomainStatus.PENDING_VALIDATION
    assert not PlanGrace.objects.exists()


def test_a_downgrade_blocks_new_domains_warns_then_detaches_the_newest_extras() -> None:
    WebhookEndpointFactory()
    ws, domains = _workspace("business", 5)
    change = plans.workspace_plan_change(workspace=ws, plan="pro", source="service:sync")
    assert change.outcome == "over_limit"
    assert change.extras == ["d5.client.com", "d4.client.com"]
    # Blocked at once: the live count is above the new limit.
    with pytest.raises(NotEntitled):
        _register(ws, "d6.client.com")
    over = DomainEvent.objects.filter(kind=EventKind.PLAN_OVER_LIMIT)
    assert sorted(over.values_list("domain__hostname", flat=True)) == [
        "d4.client.com", "d5.client.com"]
    hooks = WebhookDelivery.objects.filter(event_type="domain.plan_limit")
    assert hooks.count() == 2
    assert {h.payload["plan"]["stage"] for h in hooks} == {"over_limit"}
    assert hooks.first().payload["plan"]["limit"] == 3
    assert Notification.objects.filter(kind=NotificationKind.PLAN_OVER_LIMIT).count() == 1

    grace = PlanGrace.objects.get()
    start = grace.started_at
    # Nothing happens before the warning time.
    report = plans.plan_graces_enforce(now=start + GRACE - WARNING - timedelta(minutes=1))
    assert (report.warned, report.detached) == (0, [])
    report = plans.plan_graces_enforce(now=start + GRACE - WARNING + timedelta(minutes=1))
    assert report.warned == 1
    assert Notification.objects.filter(kind=NotificationKind.PLAN_DETACH_WARNING).count() == 1
    assert DomainEvent.objects.filter(kind=EventKind.PLAN_DETACH_WARNING).count() == 2
    # A second beat in the same window sends nothing more.
    assert plans.plan_graces_enforce(
        now=start + GRACE - WARNING + timedelta(minutes=2)).warned == 0
    assert plans.plan_graces_enforce(now=start + GRACE - timedelta(minutes=1)).detached == []
    assert all(s == "active" for s in _statuses(ws).values())

    with time_machine.travel(start + GRACE + timedelta(minutes=1), tick=False):
        report = plans.plan_graces_enforce()
    assert sorted(report.detached) == ["d4.client.com", "d5.client.com"]
    assert _statuses(ws) == {"d1.client.com": "active", "d2.client.com": "active",
                             "d3.client.com": "active", "d4.client.com": "removed",
                             "d5.client.com": "removed"}
    detached = DomainEvent.objects.filter(kind=EventKind.PLAN_DETACHED)
    assert detached.count() == 2
    assert {e.to_status for e in detached} == {"removed"}
    stages = sorted(h.payload["plan"]["stage"] for h in
                    WebhookDelivery.objects.filter(event_type="domain.plan_limit"))
    assert stages == ["detach_warning"] * 2 + ["detached"] * 2 + ["over_limit"] * 2
    grace.refresh_from_db()
    assert grace.resolved_at is not None and grace.detached_at is not None
    # Nothing left to do.
    assert plans.plan_graces_enforce(now=start + GRACE * 2).detached == []


def test_the_owners_are_emailed_at_the_downgrade_and_before_the_detachment() -> None:
    ws, _ = _workspace("business", 4)
    plans.workspace_plan_change(workspace=ws, plan="pro", source="test")
    first = Notification.objects.get(kind=NotificationKind.PLAN_OVER_LIMIT)
    assert sending.notification_send(notification_id=first.pk) == "sent"
    grace = PlanGrace.objects.get()
    plans.plan_graces_enforce(now=grace.detach_after - WARNING)
    second = Notification.objects.get(kind=NotificationKind.PLAN_DETACH_WARNING)
    assert sending.notification_send(notification_id=second.pk) == "sent"
    assert [m.to for m in mail.outbox] == [["owner@acme.com"], ["owner@acme.com"]]
    assert mail.outbox[0].subject == "Action needed: custom domains over your plan's limit"
    assert "d4.client.com" in mail.outbox[0].body and "d1.client.com" not in mail.outbox[0].body
    assert "allows 3 custom domains. It has 4" in mail.outbox[0].body
    assert grace.detach_after.strftime("%-d %B %Y") in mail.outbox[1].body


def test_a_late_beat_still_gives_the_full_warning_before_detaching() -> None:
    ws, _ = _workspace("business", 4)
    plans.workspace_plan_change(workspace=ws, plan="pro", source="test")
    grace = PlanGrace.objects.get()
    late = grace.detach_after + timedelta(days=3)  # beat was down through the deadline
    assert plans.plan_graces_enforce(now=late).warned == 1
    assert plans.plan_graces_enforce(now=late + timedelta(minutes=5)).detached == []
    assert plans.plan_graces_enforce(now=late + WARNING).detached == ["d4.client.com"]


def test_an_upgrade_during_the_grace_period_detaches_nothing() -> None:
    WebhookEndpointFactory()
    ws, _ = _workspace("pro", 3)
    plans.workspace_plan_change(workspace=ws, plan="free", source="test")
    change = plans.workspace_plan_change(workspace=ws, plan="pro", source="test")
    assert change.outcome == "resolved"
    assert PlanGrace.objects.get().resolved_at is not None
    assert plans.plan_graces_enforce(now=timezone.now() + GRACE * 2).detached == []
    assert set(_statuses(ws).values()) == {"active"}
    assert DomainEvent.objects.filter(kind=EventKind.PLAN_WITHIN_LIMIT).count() == 3
    assert WebhookDelivery.objects.filter(payload__plan__stage="within_limit").count() == 3


def test_removals_by_the_owners_during_the_grace_period_close_it() -> None:
    ws, domains = _workspace("business", 4)
    plans.workspace_plan_change(workspace=ws, plan="pro", source="test")
    services.domain_remove(domain=domains[0], by=None, source="api")  # the oldest, by choice
    report = plans.plan_graces_enforce(now=timezone.now() + GRACE * 2)
    assert (report.resolved, report.detached) == (1, [])
    assert _statuses(ws)["d4.client.com"] == "active"


def test_a_cancelled_subscription_detaches_every_domain_after_the_grace_period(
    settings: Any,
) -> None:
    ws, _ = _workspace("pro", 2)
    workspace_sync.workspace_upsert(data=workspace_sync.WorkspaceInput(
        "ext-acme", "acme", "Acme", "pro", "cancelled", 10))
    ws.refresh_from_db()
    assert ws.plan == "free"
    grace = PlanGrace.objects.get()
    assert grace.limit == 0
    plans.plan_graces_enforce(now=grace.detach_after - WARNING)
    report = plans.plan_graces_enforce(now=grace.detach_after + timedelta(seconds=1))
    assert sorted(report.detached) == ["d1.client.com", "d2.client.com"]


def test_a_plan_changed_outside_the_sync_is_caught_by_the_beat() -> None:
    ws, _ = _workspace("business", 4)
    Workspace.objects.filter(pk=ws.pk).update(plan="pro")  # staff, in the admin
    report = plans.plan_graces_enforce()
    assert report.opened == 1
    grace = PlanGrace.objects.get(workspace=ws)
    assert (grace.plan, grace.limit, grace.live_at_start) == ("pro", 3, 4)
    assert plans.plan_graces_enforce().opened == 0  # tracked from now on


def test_the_same_downgrade_synced_twice_says_nothing_twice() -> None:
    ws, _ = _workspace("business", 4)
    plans.workspace_plan_change(workspace=ws, plan="pro", source="test")
    plans.workspace_plan_change(workspace=ws, plan="pro", source="test")
    assert DomainEvent.objects.filter(kind=EventKind.PLAN_OVER_LIMIT).count() == 1
    assert Notification.objects.count() == 1
    # A further downgrade keeps the deadline but names the new extras.
    deadline = PlanGrace.objects.get().detach_after
    change = plans.workspace_plan_change(workspace=ws, plan="free", source="test")
    assert change.detach_after == deadline and len(change.extras) == 4


def test_beat_drives_the_grace_period_step() -> None:
    from vedomains_site.celery import app

    app.loader.import_default_modules()
    app.finalize()
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert TaskName.PLAN_GRACES_ENFORCE in tasks
    assert TaskName.PLAN_GRACES_ENFORCE in app.tasks


def test_redirect_domains_count_and_are_the_first_extras() -> None:
    """docs/redirects.md: a redirect is a domain for the plan, and the least needed one."""
    ws, domains = _workspace("business", 4)
    # The oldest domain redirects to the newest: still both count.
    CustomDomain.objects.filter(pk=domains[0].pk).update(redirect_to=domains[3],
                                                         redirect_code=308)
    change = plans.workspace_plan_change(workspace=ws, plan="pro", source="test")
    assert (change.outcome, change.live, change.limit) == ("over_limit", 4, 3)
    # The redirect goes before any domain that serves the site, however old it is.
    assert change.extras == ["d1.client.com"]
    # The plan state endpoint names the same domain as the one that will be detached.
    from domains import selectors

    state = selectors.workspace_plan_state(ws)
    assert [d["hostname"] for d in state["at_risk"]] == change.extras


def test_the_frontend_sees_limit_usage_deadline_and_the_domains_at_risk() -> None:
    """the plan state endpoint, the refusal's deadline, the removal reason."""
    from rest_framework.test import APIClient

    ws, _ = _workspace("pro", 3)
    owner = ws.memberships.get().user
    client = APIClient()
    client.force_authenticate(owner)
    state = client.get("/api/workspaces/acme/").json()
    assert (state["plan"], state["domain_limit"], state["domains_used"]) == ("pro", 3, 3)
    assert (state["can_register"], state["over_limit"], state["grace_until"]) == (
        False, False, None)
    assert state["at_risk"] == []

    change = plans.workspace_plan_change(workspace=ws, plan="free", source="test")
    deadline = change.detach_after
    assert deadline is not None
    state = client.get("/api/workspaces/acme").json()  # the other spelling too
    assert (state["domain_limit"], state["domains_used"], state["over_limit"]) == (0, 3, True)
    assert state["grace_until"] == deadline.isoformat().replace("+00:00", "Z")
    assert [d["hostname"] for d in state["at_risk"]] == [
        "d3.client.com", "d2.client.com", "d1.client.com"]
    assert {d["detach_after"] for d in state["at_risk"]} == {state["grace_until"]}

    # The refusal carries the deadline.
    MembershipFactory(workspace=ws, role=Role.OWNER)
    r = client.post("/api/domains/", {"workspace": "acme", "hostname": "new.client.com"},
                    format="json")
    assert r.status_code == 403, r.content
    error = r.json()["error"]
    assert error["code"] == "plan_not_entitled" or error["code"] == "domain_limit_reached"
    assert error.get("details", {}).get("grace_until", state["grace_until"]) == (
        state["grace_until"])

    # A non-member cannot read another workspace's state.
    stranger = APIClient()
    stranger.force_authenticate(MembershipFactory().user)
    assert stranger.get("/api/workspaces/acme/").status_code == 403

    with time_machine.travel(deadline + timedelta(minutes=1), tick=False):
        plans.plan_graces_enforce()
    with time_machine.travel(deadline + WARNING + timedelta(minutes=2), tick=False):
        plans.plan_graces_enforce()
    removed = client.get("/api/domains/?workspace=acme&status=removed").json()["results"]
    detached = {d["hostname"]: d for d in removed}["d3.client.com"]
    assert detached["removal"]["code"] == "plan_limit"
    assert "grace period" in detached["removal"]["message"]
    assert client.get("/api/workspaces/acme/").json()["grace_until"] is None


def test_the_limit_refusal_names_the_deadline() -> None:
    ws, _ = _workspace("pro", 3)
    plans.workspace_plan_change(workspace=ws, plan="pro", source="test")
    with pytest.raises(NotEntitled) as exc:
        _register(ws, "d9.client.com")
    assert exc.value.details["grace_until"] is None
    assert exc.value.details["domain_limit"] == 3
    # 4 live on a limit of 3 (an adoption, say): the refusal names the detachment deadline.
    CustomDomainFactory(workspace=ws, hostname="d4.client.com", status=DomainStatus.ACTIVE)
    change = plans.workspace_plan_change(workspace=ws, plan="pro", source="staff")
    plans.plan_graces_enforce()
    grace = PlanGrace.objects.get(workspace=ws, resolved_at__isnull=True)
    with pytest.raises(NotEntitled) as exc:
        _register(ws, "d9.client.com")
    assert exc.value.details["grace_until"] == grace.detach_after.isoformat().replace(
        "+00:00", "Z")
    assert "detached after" in exc.value.message
    assert change.outcome in {"over_limit", "within_limit"}
