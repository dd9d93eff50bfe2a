"""Certificate budget: how many certificates may be requested per day.

ACM allows an account a fixed number of certificate requests a year (5,000 by default,
adjustable: https://docs.aws.amazon.com/acm/latest/userguide/acm-limits.html); without a
budget one workspace registering and removing domains in a loop could spend the whole
account's allowance in days. Both request paths count against the same budget:
`workflow.certificates.domain_request_certificate` (an ACM certificate: the per-domain strategy
and ACM pre-validation) and the creation of a SaaS Manager tenant with a managed-certificate
request (`workflow.checks`, managed certificates live in the account's ACM). Each calls
`certificate_budget_consume` just before it asks AWS, only once the hostname's DNS points at
us (domains.dns_first), and gives the request back (`certificate_budget_refund`) when AWS
refused the call.

The counters are rows in the database (one per UTC day per workspace, one platform-wide),
incremented by a conditional UPDATE, so any number of workers stay under the limits
without a lock held across the AWS call.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from domains.errors import Throttled
from domains.models import Workspace
from workflow.models import CertificateBudgetDay

log = logging.getLogger(__name__)


class CertificateBudgetExceeded(Throttled):
    default_code = "certificate_budget"


def workspace_daily_limit(workspace: Workspace) -> int:
    """A workspace may request its whole plan once a day, and at least the setting; a
    large plan at most its share of the platform's day, so one enterprise workspace
    (1,000 domains) cannot spend every other workspace's certificates too."""
    base = settings.VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY
    if base <= 0:
        return 0
    by_plan = workspace.domain_limit
    platform = settings.VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY
    if platform > 0:
        by_plan = min(by_plan,
                      max(1, platform * settings.VEDOMAINS_CERT_BUDGET_WORKSPACE_SHARE // 100))
    # The base stays a floor: a system check keeps it within the share in production.
    return max(base, by_plan)


def _today() -> date:
    return timezone.now().date()


def _take(*, day: date, workspace: Workspace | None, limit: int) -> bool:
    if limit <= 0:  # 0: no limit
        return True
    CertificateBudgetDay.objects.get_or_create(day=day, workspace=workspace)
    return CertificateBudgetDay.objects.filter(
        day=day, workspace=workspace, count__lt=limit
    ).update(count=F("count") + 1) == 1


def certificate_budget_consume(*, workspace: Workspace, kind: str) -> None:
    """Count one certificate request for `workspace`, or raise CertificateBudgetExceeded.

    `kind` names the request path ("acm", "cloudfront-managed", ...) for the logs. Both
    counters move together or not at all.
    """
    day = _today()
    ws_limit = workspace_daily_limit(workspace)
    platform_limit = settings.VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY
    with transaction.atomic():
        if not _take(day=day, workspace=workspace, limit=ws_limit):
            raise CertificateBudgetExceeded(
                f"Workspace {workspace.slug} has requested its {ws_limit} certificates for "
                f"today ({day} UTC); the next one is requested tomorrow.",
            )
        if not _take(day=day, workspace=None, limit=platform_limit):
            # Raising rolls back the workspace's increment above.
            log.warning("platform certificate budget (%s/day) reached", platform_limit)
            raise CertificateBudgetExceeded(
                f"The platform has requested its {platform_limit} certificates for today "
                f"({day} UTC); the next one is requested tomorrow.",
            )
    log.info("certificate budget: %s request for %s", kind, workspace.slug)


def certificate_budget_refund(*, workspace: Workspace) -> None:
    """Give back one request taken by `certificate_budget_consume` when AWS refused the call
    (nothing was requested then), so retries of a refused create do not spend the budget."""
    day = _today()
    with transaction.atomic():
        for owner in (workspace, None):
            CertificateBudgetDay.objects.filter(day=day, workspace=owner, count__gt=0).update(
                count=F("count") - 1)


def certificate_budget_check(*, workspace: Workspace) -> None:
    """Refuse early (at registration) when today's budget is already spent; reads only."""
    day = _today()
    counts = dict(
        CertificateBudgetDay.objects.filter(day=day, workspace__in=[workspace])
        .values_list("workspace_id", "count")
    )
    ws_limit = workspace_daily_limit(workspace)
    if ws_limit > 0 and counts.get(workspace.pk, 0) >= ws_limit:
        raise CertificateBudgetExceeded(
            f"This workspace has requested {ws_limit} certificates today, its daily budget; "
            "register more domains tomorrow.")
    platform_limit = settings.VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY
    used = (CertificateBudgetDay.objects.filter(day=day, workspace__isnull=True)
            .values_list("count", flat=True).first() or 0)
    if platform_limit > 0 and used >= platform_limit:
        raise CertificateBudgetExceeded(
            "The platform's certificate budget for today is spent; try again tomorrow.")


def certificate_budget_usage(*, day: date | None = None, top: int = 5) -> dict[str, Any]:
    """Today's use (selector for the staff dashboard): platform total and busiest workspaces."""
    day = day or _today()
    rows = CertificateBudgetDay.objects.filter(day=day)
    platform = rows.filter(workspace__isnull=True).values_list("count", flat=True).first() or 0
    busiest = [
        {"workspace": r.workspace.slug, "used": r.count,
         "limit": workspace_daily_limit(r.workspace)}
        for r in rows.filter(workspace__isnull=False).select_related("workspace")
        .order_by("-count", "workspace__slug")[:top]
        if r.workspace is not None  # never None (the filter); says so to the type checker
    ]
    limit = settings.VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY
    return {"day": day, "platform_used": platform, "platform_limit": limit,
            "platform_left": max(0, limit - platform) if limit > 0 else None,
            "busiest": busiest}
