"""Celery tasks of notifications: deliver a webhook, send an email, the dispatcher.

Retries are not Celery retries: each row carries its own `next_attempt_at`, and the
dispatcher sends whatever is due.
"""

from __future__ import annotations

from celery import shared_task

from domains.task_names import TaskName
from notifications import sending


@shared_task(acks_late=True, name=TaskName.WEBHOOK_DELIVER,
             soft_time_limit=120, time_limit=150)
def webhook_deliver(delivery_id: int) -> str:
    return sending.webhook_deliver(delivery_id=delivery_id)


@shared_task(acks_late=True, name=TaskName.NOTIFICATION_SEND,
             soft_time_limit=120, time_limit=150)
def notification_send(notification_id: int) -> str:
    return sending.notification_send(notification_id=notification_id)


@shared_task(acks_late=True, name=TaskName.NOTIFICATIONS_DISPATCH)
def notifications_dispatch() -> int:
    return sending.notifications_dispatch()
