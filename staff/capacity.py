"""Capacity: how much of each quota and budget is used, as (label, used, limit) rows.

Quota problems are the platform's, never the customer's (DESIGN.md): staff should see a
limit coming before registrations start being refused. `capacity_rows` is the one selector
the dashboard reads; each part of the system that knows a quota contributes a row source
(a function of `now` returning rows) to `ROW_SOURCES`. Sources read only what the database
records, so the dashboard never waits on AWS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from domains.models import LIVE_STATUSES, CustomDomain, DomainStatus, Workspace

# Rows at or above this share of their limit are flagged.
WARN_SHARE = 0.8
BUSIEST = 3


@dataclass(frozen=True)
class CapacityRow:
    label: str
    used: int
    # None: no limit is known (the row still shows usage).
    limit: int | None
    note: str = ""

    @property
    def percent(self) -> int | None:
        if not self.limit:
            return None
        return min(100, round(100 * self.used / self.limit))

    @property
    def level(self) -> str:
        """'full', 'warn', 'ok', or '' when there is no limit to compare with."""
        if not self.limit:
            return ""
        if self.used >= self.limit:
            return "full"
        return "warn" if self.used >= WARN_SHARE * self.limit else "ok"


RowSource = Callable[[datetime], list[CapacityRow]]


def certificate_rows(now: datetime) -> list[CapacityRow]:
    """ACM: pending certificates against the caps domain_register enforces, and requests."""
    counts = CustomDomain.objects.aggregate(
        pending=Count("id", filter=Q(status=DomainStatus.PENDING_VALIDATION)),
        requested=Count("id", filter=Q(certificate_requested_at__gte=now - timedelta(hours=24))),
    )
    # The cap counts every domain still setting up, whether or not its certificate has been
    # requested yet (on the default path it is requested only once the CNAME is seen), so
    # the row says that rather than "certificates waiting for validation".
    rows = [CapacityRow("Domains setting up (certificate requested or not yet)",
                        counts["pending"],
                        settings.VEDOMAINS_ACM_MAX_PENDING,
                        "Registrations are refused at the limit (VEDOMAINS_ACM_MAX_PENDING).")]
    per_workspace = settings.VEDOMAINS_ACM_MAX_PENDING_PER_WORKSPACE or None
    busiest = (CustomDomain.objects.filter(status=DomainStatus.PENDING_VALIDATION)
               .order_by().values("workspace__slug").annotate(n=Count("id"))
               .order_by("-n", "workspace__slug")[:BUSIEST])
    for row in busiest:
        rows.append(CapacityRow(f"Domains setting up, workspace {row['workspace__slug']}",
                                row["n"], per_workspace,
                                "Per-workspace cap (VEDOMAINS_ACM_MAX_PENDING_PER_WORKSPACE)."))
    rows.append(CapacityRow("Certificates requested in the last 24 h", counts["requested"], None))
    return rows


def plan_rows(now: datetime) -> list[CapacityRow]:
    """The workspaces with the most live domains, against their plan's limit.

    Live as domain_register counts against the limit: a failed claim frees its place.
    """
    busiest = (Workspace.objects.annotate(
        live=Count("domains", filter=Q(domains__status__in=LIVE_STATUSES)))
        .filter(live__gt=0).order_by("-live", "slug")[:BUSIEST])
    return [CapacityRow(f"Domains of workspace {ws.slug} ({ws.plan_label} plan)",
                        ws.live, ws.domain_limit or None) for ws in busiest]


# Other quotas (CloudFront tenants or distributions, ACM requests per day, ...) add their
# source here.
ROW_SOURCES: list[RowSource] = [certificate_rows, plan_rows]


def capacity_rows(*, now: datetime | None = None) -> list[CapacityRow]:
    """Every capacity row, in source order."""
    now = now or timezone.now()
    return [row for source in ROW_SOURCES for row in source(now)]
