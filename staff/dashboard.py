"""The staff dashboard: where the fleet stands, what needs a person, how fast domains go live.

Every number is an aggregate query, so the page costs the same handful of queries with ten
domains or a hundred thousand. The chart is SVG built here (no JavaScript, no CDN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import (
    Avg,
    BooleanField,
    Case,
    CharField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind
from notifications.models import DeliveryStatus, Notification, WebhookDelivery
from staff.capacity import capacity_rows
from staff.support import state_tone, state_words
from workflow.certificate_budget import certificate_budget_usage
from workflow.models import CapacityAlert

ATTENTION_LIST_LIMIT = 50
CHART_DAYS = 30
# The activation chart's SVG geometry, in px: it fills the admin's content column at 1280 px
# wide; the left margin holds the tick values, the bottom one the day labels.
CHART_WIDTH, CHART_HEIGHT = 820, 260
CHART_MARGINS = (56, 16, 16, 40)  # left, right, top, bottom
# A bar takes this share of its day's slot (the gap keeps days apart), never under 2 px,
# and every CHART_LABEL_EVERY-th day (and the last) is labelled.
CHART_BAR_SHARE = 0.6
CHART_LABEL_EVERY = 5
PENDING_ALERT = timedelta(days=1)
FAILED_RECENT = timedelta(days=7)

ATTENTION_LABELS = {
    "misconfigured": "Misconfigured",
    "failing": "Failing",
    "certificate_trouble": "Certificate trouble",
    "pending_over_a_day": "Pending for more than a day",
}


def attention_conditions(now: datetime) -> dict[str, Q]:
    """What "needs attention" means; shared by the dashboard and the admin list filter."""
    return {
        "misconfigured": Q(status=DomainStatus.MISCONFIGURED),
        # Failed lately, or a check that keeps erroring on a domain that is still live.
        "failing": (Q(status=DomainStatus.FAILED) & Q(failed_at__gte=now - FAILED_RECENT))
        | (Q(status__in=[DomainStatus.PENDING_VALIDATION, DomainStatus.ACTIVE])
           & ~Q(last_error="")),
        "certificate_trouble": Q(certificate_trouble_at__isnull=False)
        & ~Q(status=DomainStatus.REMOVED),
        "pending_over_a_day": Q(status=DomainStatus.PENDING_VALIDATION)
        & Q(created_at__lt=now - PENDING_ALERT),
    }


def _any(conditions: dict[str, Q]) -> Q:
    combined = Q(pk__in=[])
    for condition in conditions.values():
        combined |= condition
    return combined


def attention_domains(now: datetime, limit: int = ATTENTION_LIST_LIMIT) -> QuerySet[CustomDomain]:
    """The domains needing attention (one query), each flagged with its reasons."""
    conditions = attention_conditions(now)
    flags = {f"is_{name}": ExpressionWrapper(q, output_field=BooleanField())
             for name, q in conditions.items()}
    return (
        CustomDomain.objects.filter(_any(conditions))
        .select_related("workspace")
        .annotate(**flags)
        .order_by("-updated_at", "-id")[:limit]
    )


def dashboard_data(now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    day_ago = now - timedelta(hours=24)
    conditions = attention_conditions(now)

    by_status = dict(CustomDomain.objects.order_by().values_list("status")
                     .annotate(n=Count("id")).values_list("status", "n"))
    totals = CustomDomain.objects.aggregate(
        **{name: Count("id", filter=q) for name, q in conditions.items()},
        checked_24h=Count("id", filter=Q(last_checked_at__gte=day_ago)),
        errors_24h=Count("id", filter=Q(last_checked_at__gte=day_ago) & ~Q(last_error="")),
    )
    events_24h = DomainEvent.objects.filter(created_at__gte=day_ago).aggregate(
        status_changes=Count("id", filter=Q(kind=EventKind.STATUS_CHANGED)),
        errors=Count("id", filter=Q(kind=EventKind.ERROR)),
        activated=Count("id", filter=Q(kind=EventKind.STATUS_CHANGED,
                                       to_status=DomainStatus.ACTIVE)),
        misconfigured=Count("id", filter=Q(kind=EventKind.STATUS_CHANGED,
                                           to_status=DomainStatus.MISCONFIGURED)),
    )
    webhooks = WebhookDelivery.objects.aggregate(
        pending=Count("id", filter=Q(status=DeliveryStatus.PENDING)),
        delivered_24h=Count("id", filter=Q(delivered_at__gte=day_ago)),
        failed_24h=Count("id", filter=Q(status=DeliveryStatus.FAILED, created_at__gte=day_ago)),
    )
    emails = Notification.objects.aggregate(
        sent_24h=Count("id", filter=Q(sent_at__gte=day_ago)),
        waiting=Count("id", filter=Q(sent_at__isnull=True, skipped="",
                                     next_attempt_at__isnull=False)),
    )

    changelist = reverse("admin:domains_customdomain_changelist")
    attention = [
        {"name": name, "label": ATTENTION_LABELS[name], "count": totals[name],
         "url": f"{changelist}?attention={name}"}
        for name in conditions
    ]
    rows = []
    for domain in attention_domains(now):
        reasons = [ATTENTION_LABELS[n] for n in conditions if getattr(domain, f"is_{n}")]
        detail = domain.certificate_trouble if domain.certificate_trouble_at else domain.last_error
        status = DomainStatus(domain.status)
        rows.append({"domain": domain, "reasons": reasons, "detail": detail,
                     "state": state_words(status), "tone": state_tone(status),
                     "url": reverse("admin:domains_customdomain_change", args=[domain.pk])})

    return {
        "now": now,
        "status_counts": [
            {"status": status.value, "label": state_words(status),
             "count": by_status.get(status.value, 0),
             "url": f"{changelist}?status__exact={status.value}"}
            for status in DomainStatus
        ],
        "total_domains": sum(by_status.values()),
        "attention": attention,
        "attention_rows": rows,
        "attention_limit": ATTENTION_LIST_LIMIT,
        "checks": {**totals, **{f"events_{k}": v for k, v in events_24h.items()}},
        "webhooks": webhooks,
        "emails": emails,
        "chart": activation_chart(now),
        # Quotas our CloudFront account hit: a platform problem, shown first.
        "capacity_alerts": [
            {"code": a.code, "occurrences": a.occurrences, "first_seen_at": a.first_seen_at,
             "last_hostname": a.last_hostname, "unexpected": a.code.startswith("unexpected:"),
             "url": reverse("admin:workflow_capacityalert_change", args=[a.pk])}
            for a in CapacityAlert.objects.filter(resolved_at__isnull=True)
        ],
        "capacity": capacity_rows(now=now),
        "failures": failure_breakdown(now),
        "failure_days": BREAKDOWN_DAYS,
        # today's certificate requests against the platform's daily budget.
        "certificate_budget": certificate_budget_usage(),
    }


# --- why domains fail ------------------------------------------------------------------------

BREAKDOWN_DAYS = 30
# (key, label, condition on the STATUS_CHANGED event). The engine words a failure's message
# and records a misconfiguration's DNS verdict in `data["reason"]`; the first match counts.
# tests/test_admin_support.py drives the engine to each failure to keep these in step.
FAILURE_REASONS: list[tuple[str, str, Q]] = [
    ("never_pointed", "Never pointed at us within the setup window",
     Q(to_status=DomainStatus.FAILED, message__startswith="The domain was never pointed")),
    ("certificate_not_validated", "Certificate not validated in time",
     Q(to_status=DomainStatus.FAILED, message__startswith="The certificate was not validated")),
    ("certificate_refused", "Certificate refused by ACM (e.g. CAA)",
     Q(to_status=DomainStatus.FAILED, message__startswith="The certificate could not be issued")),
    ("ownership_missing", "Ownership TXT record never found",
     Q(to_status=DomainStatus.FAILED, message__startswith="The ownership TXT")),
    ("cdn_refused", "CDN refused the hostname (e.g. already in use elsewhere)",
     Q(to_status=DomainStatus.FAILED, data__has_key="code")),
    ("dns_deleted", "Live domain's DNS record deleted",
     Q(to_status=DomainStatus.MISCONFIGURED, data__reason="nxdomain")),
    ("dns_elsewhere", "Live domain's DNS pointed elsewhere",
     Q(to_status=DomainStatus.MISCONFIGURED, data__reason__in=["wrong_target", "no_cname"])),
    ("dns_loop", "Live domain's CNAME loop",
     Q(to_status=DomainStatus.MISCONFIGURED, data__reason="loop")),
]
OTHER_REASON = ("other", "Other")


def failure_breakdown(now: datetime, days: int = BREAKDOWN_DAYS) -> list[dict[str, Any]]:
    """Failures and misconfigurations of the last `days`, counted by reason (one query)."""
    reason = Case(*(When(q, then=Value(key)) for key, _, q in FAILURE_REASONS),
                  default=Value(OTHER_REASON[0]), output_field=CharField())
    counts = dict(
        DomainEvent.objects.filter(
            kind=EventKind.STATUS_CHANGED, created_at__gte=now - timedelta(days=days),
            to_status__in=[DomainStatus.FAILED, DomainStatus.MISCONFIGURED])
        .annotate(reason=reason).order_by().values_list("reason")
        .annotate(n=Count("id")).values_list("reason", "n"))
    total = sum(counts.values())
    labels = [(key, label) for key, label, _ in FAILURE_REASONS] + [OTHER_REASON]
    rows = [{"key": key, "label": label, "count": counts.get(key, 0),
             "percent": round(100 * counts.get(key, 0) / total) if total else 0}
            for key, label in labels if counts.get(key)]
    return sorted(rows, key=lambda r: -r["count"])


# --- registration -> active chart ------------------------------------------------------------


@dataclass(frozen=True)
class DayPoint:
    day: date
    count: int
    average: timedelta | None
    longest: timedelta | None


def activation_series(now: datetime, days: int = CHART_DAYS) -> list[DayPoint]:
    """Per day of activation over the last `days`: how many, mean and longest time to active."""
    start = (now - timedelta(days=days - 1)).date()
    duration = ExpressionWrapper(F("activated_at") - F("created_at"),
                                 output_field=DurationField())
    rows = {
        r["day"]: r
        for r in CustomDomain.objects.filter(
            activated_at__date__gte=start, activated_at__lte=now)
        .annotate(day=TruncDate("activated_at")).order_by().values("day")
        .annotate(n=Count("id"), avg=Avg(duration), longest=Max(duration))
    }
    series = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        row = rows.get(day)
        series.append(DayPoint(day, row["n"], _as_delta(row["avg"]), _as_delta(row["longest"]))
                      if row else DayPoint(day, 0, None, None))
    return series


def _as_delta(value: Any) -> timedelta | None:
    # SQLite hands back the average of microsecond counts as a number, PostgreSQL an interval.
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(microseconds=float(value))


def _unit(longest_seconds: float) -> tuple[str, float]:
    # The largest unit in which the slowest activation is still at least two of them, so
    # 13 seconds reads "13 seconds", never "0.2 minutes".
    if longest_seconds >= 2 * 86400:
        return "days", 86400.0
    if longest_seconds >= 2 * 3600:
        return "hours", 3600.0
    if longest_seconds >= 2 * 60:
        return "minutes", 60.0
    return "seconds", 1.0


def _nice_step(raw: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least `raw`."""
    if raw <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 5, 10):
        if raw <= step * magnitude * (1 + 1e-9):
            return step * magnitude
    return 10 * magnitude


def axis_ticks(top_value: float, *, target: int = 4) -> tuple[float, list[float], int]:
    """(axis maximum, tick values, decimals): about `target` equal steps of a round size,
    printed with just enough decimals that no two ticks read the same."""
    step = _nice_step(top_value / target if top_value > 0 else 1.0 / target)
    count = max(1, math.ceil(top_value / step - 1e-9))
    decimals = max(0, -math.floor(math.log10(step)))
    return step * count, [round(step * i, decimals) for i in range(count + 1)], decimals


def activation_chart(now: datetime, days: int = CHART_DAYS) -> dict[str, Any]:
    """Geometry for the SVG bar chart: bars are the daily mean, ticks the daily longest."""
    series = activation_series(now, days)
    width, height = CHART_WIDTH, CHART_HEIGHT
    left, right, top, bottom = CHART_MARGINS
    plot_w, plot_h = width - left - right, height - top - bottom
    longest = max((p.longest.total_seconds() for p in series if p.longest), default=0.0)
    unit, seconds_per_unit = _unit(longest)
    y_max, tick_values, decimals = axis_ticks(longest / seconds_per_unit)
    slot = plot_w / days
    bar_w = max(2.0, slot * CHART_BAR_SHARE)

    def y_of(value: float) -> float:
        return top + plot_h - (value / y_max) * plot_h

    bars = []
    for index, point in enumerate(series):
        x = left + index * slot + (slot - bar_w) / 2
        labelled = index % CHART_LABEL_EVERY == 0 or index == days - 1
        bar: dict[str, Any] = {"x": round(x, 1), "w": round(bar_w, 1), "day": point.day,
                               "count": point.count, "label": labelled,
                               "label_x": round(x + bar_w / 2, 1)}
        if point.average is not None and point.longest is not None:
            avg = point.average.total_seconds() / seconds_per_unit
            top_y = y_of(avg)
            bar.update(y=round(top_y, 1), h=round(top + plot_h - top_y, 1),
                       avg=round(avg, 1), longest=round(point.longest.total_seconds()
                                                        / seconds_per_unit, 1),
                       max_y=round(y_of(point.longest.total_seconds() / seconds_per_unit), 1))
        bars.append(bar)
    ticks = [{"y": round(y_of(v), 1), "value": f"{v:.{decimals}f}"} for v in tick_values]
    total = sum(p.count for p in series)
    overall = (sum((p.average.total_seconds() * p.count for p in series if p.average), 0.0)
               / total / seconds_per_unit) if total else None
    return {
        "width": width, "height": height, "left": left, "right": width - right, "top": top,
        "baseline": top + plot_h, "bars": bars, "ticks": ticks, "unit": unit,
        "activated": total, "overall_mean": round(overall, 1) if overall is not None else None,
        "axis_label_y": round(top + plot_h / 2, 1), "days": days,
    }


# --- the view ----------------------------------------------------------------------------------


def dashboard_view(request: HttpRequest) -> HttpResponse:
    """Mounted at /admin/domains/dashboard/ inside `admin.site.admin_view` (staff login)."""
    if not request.user.has_perm("domains.view_customdomain"):
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": "Custom domains dashboard",
        **dashboard_data(),
    }
    return TemplateResponse(request, "admin/domains/dashboard.html", context)
