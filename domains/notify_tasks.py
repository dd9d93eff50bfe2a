"""Celery tasks for notifications, webhooks and the certificate sweep (issue 8).

Imported at the end of `domains.tasks`, so workers register them and
`services.enqueue_after_commit("deliver_webhook", id)` finds them by name. Retries are not
Celery retries: each row carries its own `next_attempt_at` (a countdown of hours would sit in
Redis past its visibility timeout and be delivered twice), and `dispatch_notifications`
sends whatever is due.
"""

from __future__ import annotations

from celery import shared_task

from domains import certificates, notifications


@shared_task(acks_late=True, name="domains.tasks.deliver_webhook",
             soft_time_limit=120, time_limit=150)
def deliver_webhook(delivery_id: int) -> str:
    return notifications.webhook_deliver(delivery_id=delivery_id)


@shared_task(acks_late=True, name="domains.tasks.send_notification",
             soft_time_limit=120, time_limit=150)
def send_notification(notification_id: int) -> str:
    return notifications.notification_send(notification_id=notification_id)


@shared_task(acks_late=True, name="domains.tasks.dispatch_notifications")
def dispatch_notifications() -> int:
    """Queue every due delivery and email: retries, and sends whose task was lost."""
    from domains.tasks import send

    deliveries = notifications.due_deliveries()
    emails = notifications.due_notifications()
    for pk in deliveries:
        send(deliver_webhook, pk)
    for pk in emails:
        send(send_notification, pk)
    return len(deliveries) + len(emails)


@shared_task(acks_late=True, name="domains.tasks.sweep_expired_certificates")
def sweep_expired_certificates() -> dict[str, int]:
    return certificates.certificates_sweep_expired()
