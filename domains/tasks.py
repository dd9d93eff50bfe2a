"""Celery tasks: load by id, call the engine or a service, own the retry policy.

Arguments are ids (or hostnames) only. Every task is idempotent, so `acks_late` is safe:
a worker killed mid-task leaves the message for another worker, which redoes the work.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from domains import capacity, engine
from domains.integrations.errors import IntegrationError

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 5
RETRY_MAX_SECONDS = 600


def send(task: Task, *args: Any) -> None:
    """Queue a task; a broker outage must not fail the request that caused it.

    Nothing is lost when the send fails: the state it was about is already committed, and
    the dispatcher (for checks and cleanups) and the reconcile pass (for the edge) pick it up.
    """
    try:
        task.apply_async(args=args, retry=True, retry_policy={"max_retries": 2})
    except Exception:
        log.warning("could not queue %s%r; the periodic pass will catch up", task.name, args,
                    exc_info=True)


def _backoff(retries: int) -> float:
    # Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter").
    return random.uniform(0, min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2**retries))


def _retry_transient(task: Task, exc: IntegrationError) -> None:
    if exc.permanent:
        raise exc
    raise task.retry(exc=exc, countdown=_backoff(task.request.retries), max_retries=8)


@shared_task(bind=True, acks_late=True, name="domains.tasks.request_certificate")
def request_certificate(self: Task, domain_id: int) -> str:
    try:
        return engine.domain_request_certificate(domain_id=domain_id)
    except IntegrationError as exc:
        _retry_transient(self, exc)
        raise


@shared_task(bind=True, acks_late=True, name="domains.tasks.check_domain")
def check_domain(self: Task, domain_id: int) -> str:
    # Transient failures inside a check are recorded on the domain and rescheduled by the
    # engine itself (its next_check_at), so the task does not retry them again.
    return engine.domain_check(domain_id=domain_id, source="system:check").outcome


@shared_task(bind=True, acks_late=True, name="domains.tasks.check_batch")
def check_batch(self: Task, domain_ids: list[int]) -> int:
    return len(engine.domains_check(domain_ids=domain_ids, source="system:check"))


@shared_task(bind=True, acks_late=True, name="domains.tasks.sync_edge")
def sync_edge(self: Task, hostname: str) -> str:
    try:
        return engine.edge_sync_hostname(hostname=hostname)
    except IntegrationError as exc:
        _retry_transient(self, exc)
        raise


@shared_task(bind=True, acks_late=True, name="domains.tasks.cleanup_domain")
def cleanup_domain(self: Task, domain_id: int) -> str:
    try:
        return engine.domain_cleanup(domain_id=domain_id)
    except IntegrationError as exc:
        _retry_transient(self, exc)
        raise


@shared_task(acks_late=True, name="domains.tasks.dispatch_due_checks")
def dispatch_due_checks() -> int:
    """Fan out checks for due domains in small batches of ids.

    Batches, not one task per domain: a batch resolves its DNS concurrently and shares the
    AWS clients, while staying small enough that many workers share a large backlog. Each
    domain is claimed inside the batch, so overlapping dispatches cannot double-check.
    """
    ids = engine.domains_dispatch(limit=settings.VEDOMAINS_DISPATCH_LIMIT)
    size = settings.VEDOMAINS_DISPATCH_CHUNK
    for start in range(0, len(ids), size):
        send(check_batch, ids[start : start + size])
    return len(ids)


@shared_task(acks_late=True, name="domains.tasks.sync_pending_edges")
def sync_pending_edges() -> int:
    """Push records whose edge change was never confirmed (a lost task, DynamoDB down)."""
    try:
        return engine.edge_sync_pending()
    except IntegrationError as exc:
        log.warning("edge sync pass stopped: %s", exc)
        return 0


@shared_task(acks_late=True, name="domains.tasks.reconcile_edge")
def reconcile_edge() -> dict[str, int]:
    return engine.edge_reconcile(repair=True).counts()


# Issue 8: notification, webhook and certificate-sweep tasks, registered with the worker here.
from domains.notify_tasks import (  # noqa: E402,F401
    deliver_webhook,
    dispatch_notifications,
    send_notification,
    sweep_expired_certificates,
)


@shared_task(bind=True, acks_late=True, name="domains.tasks.capacity_alert_email")
def capacity_alert_email(self: Task, alert_id: int) -> int:
    # SMTP down: retried with the shared backoff; the alert stays on the dashboard anyway.
    try:
        return capacity.capacity_alert_email(alert_id=alert_id)
    except OSError as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries), max_retries=8
                         ) from exc
