"""Celery tasks: load by id, call the module that does the work, own the retry policy.

A leaf of the import graph: nothing in the product imports this module (follow-ups are
queued by their `domains.task_names.TaskName` through `workflow.lifecycle`), and
`WorkflowConfig.ready` imports it so every process knows the tasks. Each task is registered
under its TaskName and has the name of the service it calls (the rule is in task_names.py).
Arguments are ids (or hostnames) only. Every task is idempotent, so `acks_late` is safe: a
worker killed mid-task leaves the message for another worker, which redoes the work.
"""

from __future__ import annotations

from celery import Task, shared_task
from django.conf import settings

from domains import queueing
from domains.task_names import TaskName
from domains.task_retries import RETRY_TRANSIENT, transient_errors_retried
from workflow import capacity_alerts, certificates, checks, cleanup, dns_sweep, schedule


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
        queueing.task_send(TaskName.DOMAINS_CHECK_BATCH, ids[start : start + size])
    return len(ids)


@shared_task(acks_late=True, name=TaskName.PENDING_DNS_SWEEP)
def pending_dns_sweep() -> int:
    """DNS-ready first: a DNS-only look at the pending crowd (workflow.dns_sweep); the domains
    whose DNS now points at us are checked here, at once, the rest of the ready ones (beyond
    VEDOMAINS_DNS_SWEEP_CHECKS) by the dispatcher's next tick."""
    swept = dns_sweep.pending_dns_sweep()
    now_ids = swept.ready[:settings.VEDOMAINS_DNS_SWEEP_CHECKS]
    if now_ids:
        checks.domains_check_batch(domain_ids=now_ids, source="system:check")
    return len(swept.ready)


@shared_task(acks_late=True, name=TaskName.CERTIFICATES_SWEEP_EXPIRED)
def certificates_sweep_expired() -> dict[str, int]:
    return certificates.certificates_sweep_expired()


# SMTP down: retried with backoff; the alert stays on the dashboard anyway.
@shared_task(acks_late=True, name=TaskName.CAPACITY_ALERT_EMAIL, autoretry_for=(OSError,),
             retry_backoff=5, retry_backoff_max=600, retry_jitter=True, max_retries=8)
def capacity_alert_email(alert_id: int) -> int:
    return capacity_alerts.capacity_alert_email(alert_id=alert_id)
