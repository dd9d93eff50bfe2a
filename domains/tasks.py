"""Celery tasks: load by id, call the module that does the work, own the retry policy.

A leaf of the import graph: nothing in the product imports this module (follow-ups are
queued by their `domains.task_names.TaskName` through `domains.lifecycle`), and
`DomainsConfig.ready` imports it so every process knows the tasks. Each task is registered
under its TaskName and has the name of the service it calls (the rule is in task_names.py).
Arguments are ids (or hostnames) only. Every task is idempotent, so `acks_late` is safe: a
worker killed mid-task leaves the message for another worker, which redoes the work.

Notification retries are not Celery retries: each row carries its own `next_attempt_at` (a
countdown of hours would sit in Redis past its visibility timeout and be delivered twice),
and `notifications_dispatch` sends whatever is due.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from domains import (
    capacity_alerts,
    certificates,
    checks,
    cleanup,
    dns_sweep,
    edge_sync,
    lifecycle,
    notifications,
    plans,
    schedule,
)
from domains.integrations.errors import IntegrationError, TransientIntegrationError
from domains.task_names import TaskName

log = logging.getLogger(__name__)

# The retry policy of the tasks that call AWS: Celery's autoretry, exponential from 5 s to
# 10 minutes with full jitter, 8 times; only for transient errors (a permanent one, such as
# an alias held by another account, fails at once).
RETRY_TRANSIENT: dict[str, Any] = {
    "autoretry_for": (TransientIntegrationError,),
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
}


@contextmanager
def transient_errors_retried() -> Iterator[None]:
    """Re-raise a transient IntegrationError as the class RETRY_TRANSIENT retries."""
    try:
        yield
    except TransientIntegrationError:
        raise
    except IntegrationError as exc:
        if exc.permanent:
            raise
        raise TransientIntegrationError(exc.message, code=exc.code) from exc


# --- domains --------------------------------------------------------------------------------


@shared_task(bind=True, acks_late=True, name=TaskName.DOMAIN_REQUEST_CERTIFICATE, **RETRY_TRANSIENT)
def domain_request_certificate(self: Task, domain_id: int) -> str:
    with transient_errors_retried():
        return certificates.domain_request_certificate(domain_id=domain_id)


@shared_task(bind=True, acks_late=True, name=TaskName.DOMAIN_CHECK)
def domain_check(self: Task, domain_id: int) -> str:
    # Transient failures inside a check are recorded on the domain and rescheduled by the
    # check itself (its next_check_at), so the task does not retry them again.
    return checks.domain_check(domain_id=domain_id, source="system:check").outcome


@shared_task(bind=True, acks_late=True, name=TaskName.DOMAINS_CHECK_BATCH)
def domains_check_batch(self: Task, domain_ids: list[int]) -> int:
    return len(checks.domains_check_batch(domain_ids=domain_ids, source="system:check"))


@shared_task(bind=True, acks_late=True, name=TaskName.EDGE_SYNC_HOSTNAME, **RETRY_TRANSIENT)
def edge_sync_hostname(self: Task, hostname: str) -> str:
    with transient_errors_retried():
        return edge_sync.edge_sync_hostname(hostname=hostname)


@shared_task(bind=True, acks_late=True, name=TaskName.DOMAIN_CLEANUP, **RETRY_TRANSIENT)
def domain_cleanup(self: Task, domain_id: int) -> str:
    with transient_errors_retried():
        return cleanup.domain_cleanup(domain_id=domain_id)


@shared_task(acks_late=True, name=TaskName.DOMAINS_DISPATCH)
def domains_dispatch() -> int:
    """Fan out checks for due domains in small batches of ids.

    Batches, not one task per domain: a batch resolves its DNS concurrently and shares the
    AWS clients, while staying small enough that many workers share a large backlog. Each
    domain is claimed inside the batch, so overlapping dispatches cannot double-check.
    """
    ids = schedule.domains_dispatch()
    size = settings.VEDOMAINS_DISPATCH_CHUNK
    for start in range(0, len(ids), size):
        lifecycle.task_send(TaskName.DOMAINS_CHECK_BATCH, ids[start : start + size])
    return len(ids)


@shared_task(acks_late=True, name=TaskName.PENDING_DNS_SWEEP)
def pending_dns_sweep() -> int:
    """DNS-ready first: a DNS-only look at the pending crowd (domains.dns_sweep); the domains
    whose DNS now points at us are checked here, at once, the rest of the ready ones (beyond
    VEDOMAINS_DNS_SWEEP_CHECKS) by the dispatcher's next tick."""
    swept = dns_sweep.pending_dns_sweep()
    now_ids = swept.ready[:settings.VEDOMAINS_DNS_SWEEP_CHECKS]
    if now_ids:
        checks.domains_check_batch(domain_ids=now_ids, source="system:check")
    return len(swept.ready)


@shared_task(acks_late=True, name=TaskName.EDGE_SYNC_PENDING)
def edge_sync_pending() -> int:
    """Push records whose edge change was never confirmed (a lost task, DynamoDB down)."""
    try:
        return edge_sync.edge_sync_pending()
    except IntegrationError as exc:
        log.warning("edge sync pass stopped: %s", exc)
        return 0


@shared_task(acks_late=True, name=TaskName.EDGE_RECONCILE)
def edge_reconcile() -> dict[str, int]:
    return edge_sync.edge_reconcile(repair=True).counts()


# --- notifications, webhooks, certificate sweep ---------------------------------------------


@shared_task(acks_late=True, name=TaskName.WEBHOOK_DELIVER,
             soft_time_limit=120, time_limit=150)
def webhook_deliver(delivery_id: int) -> str:
    return notifications.webhook_deliver(delivery_id=delivery_id)


@shared_task(acks_late=True, name=TaskName.NOTIFICATION_SEND,
             soft_time_limit=120, time_limit=150)
def notification_send(notification_id: int) -> str:
    return notifications.notification_send(notification_id=notification_id)


@shared_task(acks_late=True, name=TaskName.NOTIFICATIONS_DISPATCH)
def notifications_dispatch() -> int:
    return notifications.notifications_dispatch()


@shared_task(acks_late=True, name=TaskName.CERTIFICATES_SWEEP_EXPIRED)
def certificates_sweep_expired() -> dict[str, int]:
    return certificates.certificates_sweep_expired()


# --- plans -------------------------------------------------------------------------


@shared_task(acks_late=True, name=TaskName.PLAN_GRACES_ENFORCE)
def plan_graces_enforce() -> dict[str, int]:
    """Beat: open, close, warn and detach over-limit workspaces whose step is due."""
    report = plans.plan_graces_enforce()
    return {"opened": report.opened, "resolved": report.resolved, "warned": report.warned,
            "detached": len(report.detached)}


# SMTP down: retried with backoff; the alert stays on the dashboard anyway.
@shared_task(acks_late=True, name=TaskName.CAPACITY_ALERT_EMAIL, autoretry_for=(OSError,),
             retry_backoff=5, retry_backoff_max=600, retry_jitter=True, max_retries=8)
def capacity_alert_email(alert_id: int) -> int:
    return capacity_alerts.capacity_alert_email(alert_id=alert_id)
