"""Plan changes and what they do to a workspace's custom domains.

- An upgrade raises the limit at once: registration counts live domains against
  `Workspace.domain_limit`, which follows the plan.
- A downgrade (or a cancelled subscription, which counts as the free plan) below the number
  of live domains blocks new ones at once (the same count), opens a grace period
  (VEDOMAINS_PLAN_GRACE_SECONDS) and emails the owners. VEDOMAINS_PLAN_WARNING_SECONDS
  before its end they are emailed again; at its end the extras (redirects first, then the
  newest) are removed (detached from CloudFront and the edge by the usual cleanup). Back
  within the limit (upgrade, or removals by the owners) closes the grace period without
  detaching anything.
- Every step is a DomainEvent on each affected domain and a `domain.plan_limit` webhook.

The grace step is driven by beat (`tasks.plan_graces_enforce`); each open grace period is
processed under a row lock (skip_locked), so overlapping beats never detach twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from domains import actors, queueing, selectors
from domains.errors import InvalidInput, InvalidTransition
from domains.hostnames import PLAN_NAME
from domains.models import (
    LIVE_STATUSES,
    CustomDomain,
    DomainEvent,
    EventKind,
    PlanGrace,
    Workspace,
    default_plan_limit,
)
from notifications import outbox
from notifications.models import NotificationKind
from workflow import lifecycle, services

log = logging.getLogger(__name__)


@dataclass
class PlanChange:
    workspace: str
    old_plan: str
    new_plan: str
    limit: int
    live: int
    extras: list[str] = field(default_factory=list)
    detach_after: datetime | None = None
    outcome: str = "unchanged"  # unchanged | within_limit | over_limit | resolved


def plan_limit(plan: str) -> int:
    """The local default table's limit for a plan (0 for a name it does not know)."""
    return default_plan_limit(plan)




class _Keep:
    """`domain_limit` not given: keep the workspace's current override."""


KEEP = _Keep()


def _live(workspace: Workspace) -> list[CustomDomain]:
    # The order the plan state endpoint shows as `at_risk`: one rule for both.
    return list(selectors.live_domains_in_detach_order(workspace))


def _extras(workspace: Workspace, limit: int) -> tuple[list[CustomDomain], int]:
    live = _live(workspace)
    excess = max(0, len(live) - max(0, limit))
    return live[:excess], len(live)


def _plan_payload(grace: PlanGrace, *, stage: str, live: int,
                  extras: list[CustomDomain]) -> dict[str, Any]:
    return {
        "stage": stage,
        "plan": grace.plan,
        "limit": grace.limit,
        "live": live,
        "detach_after": outbox.datetime_iso(grace.detach_after),
        "extras": [d.hostname for d in extras],
    }


def _record(domain: CustomDomain, *, kind: str, source: str, by: actors.Actor,
            message: str, plan: dict[str, Any], from_status: str = "") -> DomainEvent:
    event = lifecycle.event_record(domain=domain, kind=kind, source=source, by=by,
                                   message=message, from_status=from_status,
                                   to_status=domain.status if from_status else "", data=plan)
    queueing.enqueue_all_after_commit(
        outbox.outbox_plan_event(domain=domain, event=event, plan=plan))
    return event


def _notice(*, grace: PlanGrace, kind: str, suffix: str, extras: list[CustomDomain],
            live: int, event: DomainEvent) -> None:
    # Anchored on the first domain to go; the state key makes it one email per step.
    queued = outbox.outbox_plan_notice(
        domain=extras[0], kind=kind, state_key=f"plan:{grace.pk}:{suffix}", event=event,
        context={"plan": grace.plan, "plan_name": grace.workspace.plan_label
                 if grace.workspace.plan == grace.plan else grace.plan,
                 "limit": grace.limit, "live": live,
                 "extras": [d.hostname for d in extras],
                 "deadline": outbox.datetime_iso(grace.detach_after)},
    )
    queueing.enqueue_all_after_commit(queued)


def plan_validate(*, plan: object, domain_limit: int | None) -> None:
    """A usable plan: a plan name, and a limit known for it (given, or the default table's).

    A plan name never seen before with no `domain_limit` is refused (400 `unknown_plan`)
    rather than taken as a limit of 0, which would start detaching a workspace's domains
    because the main app renamed a plan.
    """
    if not isinstance(plan, str) or not PLAN_NAME.match(plan):
        raise InvalidInput(f"'{str(plan)[:40]}' is not a plan name (1-20 lowercase letters, "
                           "digits, '_', '.', '-').", code="invalid_plan", field="plan")
    if domain_limit is None and plan not in settings.VEDOMAINS_PLAN_LIMITS:
        raise InvalidInput(
            f"vedomains has no default limit for the plan '{plan}'; send its domain_limit.",
            code="unknown_plan", field="domain_limit")


def workspace_plan_change(*, workspace: Workspace, plan: str, source: str,
                          by: actors.Actor = None,
                          domain_limit: int | None | _Keep = KEEP) -> PlanChange:
    """Set the workspace's plan (and its domain limit) and apply what it means for its domains.

    `domain_limit`: the main app's limit for this workspace (an int), None for the local
    default table's, or KEEP (the current override stays). A plan name the table does not
    know needs a limit: refused otherwise (`unknown_plan`), never silently taken as 0.
    Must be called with the new plan even when it is unchanged (a no-op then), so callers
    need not compare first. Runs in one transaction with the workspace row locked: a
    registration racing with a downgrade is counted either before or after it, never lost.
    """
    override = workspace.domain_limit_override if isinstance(domain_limit, _Keep) else (
        domain_limit)
    plan_validate(plan=plan, domain_limit=override)
    now = timezone.now()
    with transaction.atomic():
        locked = Workspace.objects.select_for_update().get(pk=workspace.pk)
        old = locked.plan
        if (old, locked.domain_limit_override) != (plan, override):
            Workspace.objects.filter(pk=locked.pk).update(plan=plan,
                                                          domain_limit_override=override)
        workspace.plan, workspace.domain_limit_override = plan, override
        limit = workspace.domain_limit
        extras, live = _extras(workspace, limit)
        result = PlanChange(workspace=workspace.slug, old_plan=old, new_plan=plan, limit=limit,
                            live=live, extras=[d.hostname for d in extras])
        grace = PlanGrace.objects.filter(workspace=workspace, resolved_at__isnull=True).first()
        if not extras:
            if grace is not None:
                _resolve(grace, live=live, source=source, by=by,
                         message=f"Plan changed to {plan} (limit {limit}); within the limit.")
                result.outcome = "resolved"
            else:
                result.outcome = "within_limit"
            return result
        if grace is None:
            grace = PlanGrace.objects.create(
                workspace=workspace, plan=plan, limit=limit, live_at_start=live,
                started_at=now, detach_after=now + timedelta(
                    seconds=settings.VEDOMAINS_PLAN_GRACE_SECONDS))
        elif (grace.plan, grace.limit) == (plan, limit):
            result.outcome, result.detach_after = "over_limit", grace.detach_after
            return result  # the same downgrade again (a retried sync): nothing new to say
        else:
            # Another change while over the limit: the deadline stands (a second downgrade
            # cannot be used to postpone it), the limit is the new one.
            PlanGrace.objects.filter(pk=grace.pk).update(plan=plan, limit=limit)
            grace.plan, grace.limit = plan, limit
        payload = _plan_payload(grace, stage="over_limit", live=live, extras=extras)
        message = (f"Plan changed from {old} to {plan}: {limit} custom domains allowed, "
                   f"{live} live. New domains are blocked; this one will be detached after "
                   f"{outbox.datetime_iso(grace.detach_after)} unless the workspace is back "
                   "within its plan.")
        events = [_record(d, kind=EventKind.PLAN_OVER_LIMIT, source=source, by=by,
                          message=message, plan=payload) for d in extras]
        _notice(grace=grace, kind=NotificationKind.PLAN_OVER_LIMIT, suffix=f"over:{limit}",
                extras=extras, live=live, event=events[0])
        result.outcome, result.detach_after = "over_limit", grace.detach_after
    return result


def _resolve(grace: PlanGrace, *, live: int, source: str, by: actors.Actor,
             message: str) -> None:
    applied = PlanGrace.objects.filter(pk=grace.pk, resolved_at__isnull=True).update(
        resolved_at=timezone.now())
    if not applied:
        return
    payload = _plan_payload(grace, stage="within_limit", live=live, extras=[])
    flagged = DomainEvent.objects.filter(
        domain__workspace=grace.workspace_id, kind=EventKind.PLAN_OVER_LIMIT,
        created_at__gte=grace.started_at,
    ).values_list("domain_id", flat=True)
    for domain in CustomDomain.objects.filter(pk__in=list(flagged),
                                              status__in=LIVE_STATUSES):
        _record(domain, kind=EventKind.PLAN_WITHIN_LIMIT, source=source, by=by,
                message=message, plan=payload)


def workspaces_over_limit_untracked() -> list[Workspace]:
    """Workspaces with more live domains than their plan allows and no open grace period."""
    live = Count("domains", filter=Q(domains__status__in=LIVE_STATUSES))
    open_grace = Exists(PlanGrace.objects.filter(workspace=OuterRef("pk"),
                                                 resolved_at__isnull=True))
    found: list[Workspace] = []
    candidates = Workspace.objects.annotate(live=live, graced=open_grace).filter(graced=False)
    for plan in Workspace.objects.filter(domain_limit_override__isnull=True).values_list(
            "plan", flat=True).distinct():
        found += list(candidates.filter(plan=plan, domain_limit_override__isnull=True,
                                        live__gt=plan_limit(plan)))
    found += list(candidates.filter(domain_limit_override__isnull=False,
                                    live__gt=F("domain_limit_override")))
    return found


@dataclass
class EnforceReport:
    opened: int = 0
    resolved: int = 0
    warned: int = 0
    detached: list[str] = field(default_factory=list)


def plan_graces_enforce(*, now: datetime | None = None, source: str = "system:plan"
                        ) -> EnforceReport:
    """The beat step: close graces back within the limit, warn, then detach the extras."""
    now = now or timezone.now()
    report = EnforceReport()
    for workspace in workspaces_over_limit_untracked():
        # Over the limit with no grace period: the plan was changed outside the sync (staff
        # in the admin) or domains arrived outside registration (adoption). Same rules.
        try:
            change = workspace_plan_change(workspace=workspace, plan=workspace.plan,
                                           source=source)
        except InvalidInput as exc:
            # A plan name set by hand (admin) that the default table does not know and no
            # override: staff must fix it; the others go on.
            log.warning("workspace %s: %s", workspace.slug, exc.message)
            continue
        report.opened += int(change.outcome == "over_limit")
    ids = list(PlanGrace.objects.filter(resolved_at__isnull=True).values_list("pk", flat=True))
    for pk in ids:
        try:
            _enforce_one(pk, now=now, source=source, report=report)
        except Exception:
            # One workspace's failure must not stop the others; the next tick retries it.
            log.exception("plan enforcement for grace %s failed", pk)
    return report


def _enforce_one(pk: int, *, now: datetime, source: str, report: EnforceReport) -> None:
    warning = timedelta(seconds=settings.VEDOMAINS_PLAN_WARNING_SECONDS)
    with transaction.atomic():
        grace = (PlanGrace.objects.select_for_update(skip_locked=True)
                 .select_related("workspace").filter(pk=pk, resolved_at__isnull=True).first())
        if grace is None:
            return  # another beat holds it, or it was resolved meanwhile
        workspace = grace.workspace
        Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
        extras, live = _extras(workspace, grace.limit)
        if not extras:
            _resolve(grace, live=live, source=source, by=None,
                     message=f"Back within the {grace.plan} plan's limit of {grace.limit}.")
            report.resolved += 1
            return
        if grace.warned_at is None:
            if now < grace.detach_after - warning:
                return
            # Owners always get the full warning: a late tick moves the deadline.
            detach_after = max(grace.detach_after, now + warning)
            PlanGrace.objects.filter(pk=grace.pk).update(warned_at=now,
                                                         detach_after=detach_after)
            grace.warned_at, grace.detach_after = now, detach_after
            payload = _plan_payload(grace, stage="detach_warning", live=live, extras=extras)
            message = (f"Still over the {grace.plan} plan's limit of {grace.limit}; this domain "
                       f"will be detached after {outbox.datetime_iso(detach_after)}.")
            events = [_record(d, kind=EventKind.PLAN_DETACH_WARNING, source=source, by=None,
                              message=message, plan=payload) for d in extras]
            _notice(grace=grace, kind=NotificationKind.PLAN_DETACH_WARNING, suffix="warning",
                    extras=extras, live=live, event=events[0])
            report.warned += 1
            return
        if now < grace.detach_after or now <= grace.warned_at:
            return
        payload = _plan_payload(grace, stage="detached", live=live, extras=extras)
        reason = (f"Detached: the {grace.plan} plan allows {grace.limit} custom domains and "
                  f"the grace period ended.")
        for domain in extras:
            old_status = domain.status
            try:
                services.domain_remove(domain=domain, by=None, source=source, reason=reason)
            except InvalidTransition:
                continue  # changed meanwhile (removed by its owner): nothing to detach
            domain.refresh_from_db()
            _record(domain, kind=EventKind.PLAN_DETACHED, source=source, by=None,
                    message=reason, plan=payload, from_status=old_status)
            report.detached.append(domain.hostname)
        PlanGrace.objects.filter(pk=grace.pk).update(detached_at=now, resolved_at=now)
