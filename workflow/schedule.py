"""The check schedule: which domains are due, handing them out once, the lease, the pace.

Each domain carries its own `next_check_at`; beat's dispatcher hands every due time out
once (`domains_dispatch`) and a check leases the domains it runs (`domains_claim`); when
to look again is part of each check's verdict (`workflow.check_decisions.next_interval`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from domains.models import CustomDomain

# The most due domains one dispatcher tick hands out: the rest wait for the next tick (seconds
# later), so a backlog drains in steps the broker and the workers can take.
DISPATCH_LIMIT = 10000


def _due(now: datetime, *, queued: bool = False) -> Any:
    due = CustomDomain.objects.filter(next_check_at__lte=now)
    if not queued:
        due = due.filter(
            Q(dispatched_for__isnull=True)
            | ~Q(dispatched_for=F("next_check_at"))
            | Q(dispatched_at__lte=now - timedelta(
                seconds=settings.VEDOMAINS_DISPATCH_LEASE_SECONDS))
        )
    return due.order_by("next_check_at")


def domains_due(*, limit: int = 10000, now: datetime | None = None,
                queued: bool = False) -> list[int]:
    """Ids of domains whose next check (or cleanup step) is due, most overdue first.

    Without `queued`, leaves out those the dispatcher has queued and no worker started yet.
    """
    return list(_due(now or timezone.now(), queued=queued).values_list("pk", flat=True)[:limit])


def domains_dispatch(*, limit: int = DISPATCH_LIMIT, now: datetime | None = None) -> list[int]:
    """Take the due domains for queueing: each due time is handed out once.

    Two beats at once get disjoint ids (skip_locked). A check that starts moves the due
    time (see `domains_claim`), and so does any reschedule; a queued check that never runs
    (its message lost) is handed out again when the lease ends.
    """
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            _due(now).select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit]
        )
        if ids:
            CustomDomain.objects.filter(pk__in=ids).update(
                dispatched_for=F("next_check_at"), dispatched_at=now
            )
    return ids


def domains_claim(domain_ids: Iterable[int], *, now: datetime, force: bool = False) -> list[int]:
    """Lease due domains to this caller; returns the ids it won."""
    ids = list(domain_ids)
    if not ids:
        return []
    lease_until = now + timedelta(seconds=settings.VEDOMAINS_CHECK_LEASE_SECONDS)
    with transaction.atomic():
        qs = CustomDomain.objects.filter(pk__in=ids)
        if not force:
            qs = qs.filter(next_check_at__lte=now)
        # skip_locked: rows another claimer holds right now are simply not ours.
        won = list(qs.select_for_update(skip_locked=True).values_list("pk", flat=True))
        if won:
            CustomDomain.objects.filter(pk__in=won).update(next_check_at=lease_until)
    return won
