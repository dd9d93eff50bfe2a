"""DNS-ready first: a DNS-only look over the pending crowd, so a domain whose CNAME has just
been set is checked now rather than at its (backed-off) next check.

A pending domain's checks back off with its age (check_decisions.next_interval: hours for one a
day old), and with DNS first (domains.dns_first) a pending domain whose DNS is wrong costs
no AWS call anyway. So each tick this looks up the routing record of a bounded slice of the
pending domains that are not due yet and whose last check saw their DNS wrong, resuming
where the previous tick stopped (a cursor in the cache), and makes the ones that now point
at us due at once, with fast checks (as "verify" does). The
lookups run concurrently (VEDOMAINS_DNS_CONCURRENCY) against the recursive resolver, which
caches the answers, negative ones included, for their zone's TTL; a domain whose DNS is
still wrong costs no AWS call and no database write. The tick's own task then checks the
ready ones, ahead of the dispatcher's queue.

A domain in the middle of a check is never made due (that would let a second check run
beside it): a check's lease moves `next_check_at` to `claim + VEDOMAINS_CHECK_LEASE_SECONDS` with
the claim after the last check, so `next_check_at - last_checked_at` exceeds the lease,
while a finished check sets the two together. Rows that could be either are left to their
own schedule: they are due within a lease anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from domains import dns_first, hostnames
from domains.integrations import dns
from domains.models import CustomDomain, DomainStatus

CURSOR_KEY = "domains:dns_sweep:cursor"


@dataclass
class SweepResult:
    looked_up: int = 0
    ready: list[int] = field(default_factory=list)
    wrapped: bool = False


def _not_leased(now: datetime) -> Q:
    lease = timedelta(seconds=settings.VEDOMAINS_CHECK_LEASE_SECONDS)
    return (Q(next_check_at__gt=now + lease)
            | Q(last_checked_at__isnull=False,
                next_check_at__lte=F("last_checked_at") + lease))


def _crowd(now: datetime) -> QuerySet[CustomDomain]:
    # Waiting for DNS: pending, not due, nothing created at AWS yet (no tenant, no
    # certificate). Whether the last check saw the DNS wrong is read from its record below.
    return (CustomDomain.objects.filter(status=DomainStatus.PENDING_VALIDATION,
                                        next_check_at__gt=now, cdn_resource_id="",
                                        certificate_arn="")
            .filter(_not_leased(now)))


def pending_dns_sweep(*, limit: int | None = None, now: datetime | None = None) -> SweepResult:
    """Look up the next `limit` pending domains' DNS; make the ready ones due now."""
    now = now or timezone.now()
    limit = settings.VEDOMAINS_DNS_SWEEP_LIMIT if limit is None else limit
    result = SweepResult()
    if limit <= 0:
        return result
    cursor = int(cache.get(CURSOR_KEY) or 0)
    rows = list(_crowd(now).filter(pk__gt=cursor).order_by("pk")
                .values_list("pk", "hostname", "checks")[:limit])
    if len(rows) < limit:
        # The end of the crowd: start again from the beginning next tick.
        result.wrapped = True
        cache.set(CURSOR_KEY, 0, timeout=None)
    else:
        cache.set(CURSOR_KEY, rows[-1][0], timeout=None)
    # A domain whose last check saw its DNS right is waiting on something else (CAA, the
    # certificate budget): this pass is only for the DNS that just changed.
    wanted = {pk: host for pk, host, checks in rows
              if not ((checks or {}).get("dns") or {}).get("ok")}
    if not wanted:
        return result
    apex = [h for h in wanted.values() if hostnames.apex_supported() and hostnames.is_apex(h)]
    answers = dns.check_many(list(wanted.values()), apex_for=apex)
    result.looked_up = len(wanted)
    ready = [pk for pk, host in wanted.items() if dns_first.dns_ready(answers[host].routing)]
    if ready:
        # Made due only if still waiting and not claimed meanwhile (the same conditions,
        # in the one statement that moves them).
        moved = _crowd(now).filter(pk__in=ready)
        result.ready = list(moved.values_list("pk", flat=True))
        # Fast checks from now, as after "verify": the tenant's certificate and deployment
        # are then followed every few seconds, not at the backed-off interval.
        moved.filter(pk__in=result.ready).update(
            next_check_at=now, fast_checks_until=now + timedelta(
                seconds=settings.VEDOMAINS_FAST_CHECK_WINDOW_SECONDS))
    return result
