"""Celery tasks of the edge projection: one hostname's push, the pending pass, reconcile."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from domains.integrations.errors import IntegrationError
from domains.task_names import TaskName
from domains.task_retries import RETRY_TRANSIENT, transient_errors_retried
from edge import sync as edge_sync

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, name=TaskName.EDGE_SYNC_HOSTNAME, **RETRY_TRANSIENT)
def edge_sync_hostname(self: Task, hostname: str) -> str:
    with transient_errors_retried():
        return edge_sync.edge_sync_hostname(hostname=hostname)


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
