"""Platform capacity alerts: CloudFront quotas our account hit (staff.capacity shows usage).

A quota (TooMany*, EntityLimitExceeded) is never the customer's failure: the domain stays
pending and is retried, and staff are told — an ERROR log line every time, one email when an
alert opens, and a card on the admin dashboard while it is open. The next successful attach
resolves it.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from domains import queueing
from domains.task_names import TaskName
from workflow.models import CapacityAlert

log = logging.getLogger(__name__)


def capacity_alert_raise(*, code: str, message: str, hostname: str) -> CapacityAlert:
    """Record that `code` was hit now; email staff when the alert (re)opens."""
    log.error("CloudFront capacity: %s while attaching %s: %s", code, hostname, message)
    now = timezone.now()
    with transaction.atomic():
        alert, created = CapacityAlert.objects.select_for_update().get_or_create(
            code=code,
            defaults={"message": message, "first_seen_at": now, "last_seen_at": now,
                      "occurrences": 0, "last_hostname": hostname},
        )
        opened = created or alert.resolved_at is not None
        if opened:
            alert.first_seen_at = now
        alert.message = message[:2000]
        alert.last_seen_at = now
        alert.last_hostname = hostname
        alert.occurrences = (0 if opened else alert.occurrences) + 1
        alert.resolved_at = None
        alert.save()
        if opened:
            queueing.enqueue_after_commit(TaskName.CAPACITY_ALERT_EMAIL, alert.pk)
    return alert


# Alerts for AWS answers the code does not know share the table, under this code prefix:
# the same email once per opening, the same dashboard card, the same resolution.
UNEXPECTED_PREFIX = "unexpected:"


def unexpected_answer_alert_raise(*, code: str, message: str, hostname: str) -> CapacityAlert:
    """An AWS answer the code does not know: page staff; the domain waits (never fails)."""
    log.error("unexpected AWS answer %s for %s: %s", code, hostname, message)
    return capacity_alert_raise(code=f"{UNEXPECTED_PREFIX}{code}"[:100], message=message,
                                hostname=hostname)


def is_unexpected(alert: CapacityAlert) -> bool:
    return alert.code.startswith(UNEXPECTED_PREFIX)


def capacity_alerts_resolve(*, now: object = None) -> int:
    """An attach went through: whatever limit was hit has room again."""
    return CapacityAlert.objects.filter(resolved_at__isnull=True).update(
        resolved_at=now or timezone.now())


def capacity_alerts_open() -> QuerySet[CapacityAlert]:
    return CapacityAlert.objects.filter(resolved_at__isnull=True)


def capacity_alert_email(*, alert_id: int) -> int:
    """Email active staff users about an open alert; returns how many were addressed."""
    alert = CapacityAlert.objects.filter(pk=alert_id, resolved_at__isnull=True).first()
    if alert is None:
        return 0
    recipients = sorted(
        set(get_user_model().objects.filter(is_staff=True, is_active=True)
            .exclude(email="").values_list("email", flat=True))
    )
    if not recipients:
        return 0
    if is_unexpected(alert):
        send_mail(
            subject=f"[vedomains] Unexpected AWS answer: {alert.code}",
            message=(
                f"AWS answered {alert.code} for {alert.last_hostname}, an answer the code does "
                f"not know.\n\n{alert.message}\n\nThe domain is not failed: it waits and is "
                "retried with a growing interval. Read the answer, fix our side or teach the "
                "code what it means; the alert closes at the next successful attach."
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
        )
        return len(recipients)
    send_mail(
        subject=f"[vedomains] CloudFront quota reached: {alert.code}",
        message=(
            f"CloudFront refused to attach {alert.last_hostname}: {alert.code}.\n\n"
            f"{alert.message}\n\n"
            "This is a quota of our AWS account, not a customer problem: the affected "
            "domains stay pending and are retried every "
            f"{settings.VEDOMAINS_CDN_CAPACITY_RETRY_SECONDS} s. Raise the quota in "
            "Service Quotas (or the AWS Support Center); the alert closes by itself at the "
            "next successful attach."
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )
    return len(recipients)
