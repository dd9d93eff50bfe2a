"""Telling people what happened: sending owner emails and signed webhooks.

Both are written as an outbox (`notifications.outbox`) in the transaction that changes the domain,
then sent from here by Celery after commit. A lost task (broker outage, worker killed) only
delays a send: beat's `notifications_dispatch` picks up every row that is due.

Exactly-once where it matters:
- a Notification row is unique per (domain, state_key) (see notifications.outbox), and each send
  first claims the row, so racing workers cannot produce a second email about one state;
- a WebhookDelivery row is unique per (endpoint, event); each attempt first claims the row
  by pushing `next_attempt_at` forward (compare-and-swap), so two workers never POST the
  same attempt. Receivers still dedupe by event id: a POST whose answer we never saw (a
  timeout after the receiver committed) is retried, as at-least-once delivery must.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from domains import actors, queueing, signing
from domains.integrations import webhook_http
from domains.integrations.backoff import EQUAL_JITTER, backoff_delay
from domains.integrations.errors import IntegrationError
from domains.models import WRITE_ROLES, DomainEvent, DomainStatus, EventKind, Membership
from domains.task_names import TaskName
from notifications.models import DeliveryStatus, Notification, NotificationKind, WebhookDelivery
from notifications.outbox import datetime_iso

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Vedomains-Signature"
USER_AGENT = "vedomains-webhooks/1"
ATTEMPT_LOG_MAX = 50
# Emails are retried (SMTP down) for as long as webhooks are, then given up and recorded.
EMAIL_RETRY_BASE_SECONDS = 60
EMAIL_RETRY_MAX_SECONDS = 3600
EMAIL_LEASE = timedelta(minutes=5)


# --- what the emails say ----------------------------------------------------------------------


# Keyed by str: a Notification row's kind is a plain string from the database.
SUBJECTS: dict[str, str] = {
    NotificationKind.DOMAIN_ACTIVE: "{hostname} is live on ve.ai",
    NotificationKind.DOMAIN_MISCONFIGURED: "Action needed: {hostname} no longer points to ve.ai",
    NotificationKind.DOMAIN_FAILED: "{hostname} could not be connected to ve.ai",
    NotificationKind.CERTIFICATE_TROUBLE:
        "Action needed: the certificate for {hostname} cannot renew",
    NotificationKind.PLAN_OVER_LIMIT: "Action needed: custom domains over your plan's limit",
    NotificationKind.PLAN_DETACH_WARNING: "Custom domains will be detached soon",
}


def render_notification(notification: Notification) -> tuple[str, str, str]:
    """(subject, plain text, HTML) for a notification, from its recorded context."""
    domain = notification.domain
    context: dict[str, Any] = {
        **notification.context,
        "hostname": domain.hostname,
        "workspace": domain.workspace,
        "cname_target": settings.VEDOMAINS_CNAME_TARGET,
    }
    for key in ("deadline", "not_after"):
        if isinstance(context.get(key), str):
            context[key] = parse_datetime(context[key])
    if notification.kind == NotificationKind.DOMAIN_ACTIVE and (
        notification.context.get("from_status") == DomainStatus.MISCONFIGURED
    ):
        subject = f"{domain.hostname} is working again"
    else:
        subject = SUBJECTS[notification.kind].format(
            hostname=domain.hostname)
    base = f"notifications/email/{notification.kind}"
    return (subject, render_to_string(f"{base}.txt", context),
            render_to_string(f"{base}.html", context))


def owner_emails(workspace_id: int) -> list[str]:
    """The workspace's owners and admins (active users with an address), deduplicated."""
    emails = (
        Membership.objects.filter(workspace_id=workspace_id, role__in=list(WRITE_ROLES),
                                  user__is_active=True)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    unique = {e.strip().lower(): e.strip() for e in emails}.values()
    valid = [e for e in unique if email_address_valid(e)]
    if len(valid) != len(unique):
        # An address with CRLF could inject headers; one that is malformed would fail the
        # whole send. Neither may cost the other owners their message.
        log.warning("workspace %s: %d owner address(es) skipped as invalid", workspace_id,
                    len(unique) - len(valid))
    return sorted(valid)


def email_address_valid(address: str) -> bool:
    """A plain address we can put in a To header: no control characters, valid syntax."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in address) or len(address) > 254:
        return False
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True


# --- sending email ------------------------------------------------------------------------------


def _superseded(notification: Notification) -> bool:
    """Has the domain left the state this message is about? Then it would only confuse."""
    domain = notification.domain
    if notification.kind in (NotificationKind.PLAN_OVER_LIMIT,
                             NotificationKind.PLAN_DETACH_WARNING):
        # About the workspace's plan, not this domain's state: a status change of the
        # domain it is anchored on (even its detachment) does not make it moot.
        return False
    if notification.kind == NotificationKind.CERTIFICATE_TROUBLE:
        return domain.certificate_trouble_at is None or domain.status == DomainStatus.REMOVED
    if notification.event_id is None:
        return domain.status != notification.context.get("to_status")
    if DomainEvent.objects.filter(domain=domain, kind=EventKind.STATUS_CHANGED,
                                  pk__gt=notification.event_id).exists():
        return True
    if notification.context.get("from_status") == DomainStatus.MISCONFIGURED:
        # "Working again" only makes sense to someone who was told it was broken.
        told = (Notification.objects.filter(domain=domain,
                                            kind=NotificationKind.DOMAIN_MISCONFIGURED,
                                            event_id__lt=notification.event_id)
                .order_by("-event_id").values_list("sent_at", flat=True).first())
        return told is None
    return False


def notification_send(*, notification_id: int) -> str:
    """Send one notification if it is due; the claim makes concurrent calls send it once."""
    now = timezone.now()
    claimed = Notification.objects.filter(
        pk=notification_id, sent_at__isnull=True, skipped="", next_attempt_at__lte=now,
    ).update(next_attempt_at=now + EMAIL_LEASE, attempts=F("attempts") + 1)
    if claimed != 1:
        return "not_due"
    notification = Notification.objects.select_related("domain__workspace").get(
        pk=notification_id)
    done = {"next_attempt_at": None}
    if _superseded(notification):
        Notification.objects.filter(pk=notification.pk).update(skipped="superseded", **done)
        return "superseded"
    recipients = owner_emails(notification.domain.workspace_id)
    if not recipients:
        Notification.objects.filter(pk=notification.pk).update(skipped="no_recipients", **done)
        log.warning("no owner or admin email for workspace %s", notification.domain.workspace)
        return "no_recipients"
    subject, text, html = render_notification(notification)
    # Addresses already sent to by an earlier, interrupted attempt are not sent to again.
    delivered = list(notification.recipients)
    # One message per person, each in its own try: a refused or broken address is recorded
    # and skipped, a failing server is retried for the addresses it failed, and neither
    # stops the message to the other owners.
    refused: list[str] = []
    transient: list[str] = []
    try:
        connection = get_connection(fail_silently=False)
        connection.open()
    except Exception as exc:  # noqa: BLE001 - SMTP and socket errors alike: retry later
        transient.append(f"{type(exc).__name__}: {exc}")
        connection = None
    for address in recipients if connection is not None else []:
        if address in delivered:
            continue
        # Owners do not see each other's addresses.
        message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL,
                                         [address], connection=connection)
        message.attach_alternative(html, "text/html")
        try:
            message.send()
        except (ValueError, BadHeaderError, smtplib.SMTPRecipientsRefused) as exc:
            refused.append(f"{address!r}: {type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - SMTP and socket errors alike: retry
            transient.append(f"{address}: {type(exc).__name__}: {exc}")
        else:
            delivered.append(address)
    if connection is not None:
        try:
            connection.close()
        except Exception:  # the messages are sent; a failed QUIT changes nothing
            log.info("closing the email connection failed", exc_info=True)
    errors = "; ".join(refused + transient)[:2000]
    if transient:
        retry_at = timezone.now() + backoff_delay(
            notification.attempts - 1, base=EMAIL_RETRY_BASE_SECONDS,
            cap=EMAIL_RETRY_MAX_SECONDS, floor=EQUAL_JITTER)
        give_up = retry_at > notification.created_at + timedelta(
            seconds=settings.VEDOMAINS_WEBHOOK_RETRY_WINDOW_SECONDS)
        Notification.objects.filter(pk=notification.pk).update(
            recipients=delivered, subject=subject, last_error=errors,
            next_attempt_at=None if give_up else retry_at,
        )
        log.warning("email %s failed (attempt %s): %s", notification.pk, notification.attempts,
                    errors)
        return "gave_up" if give_up else "retry"
    if not delivered:
        Notification.objects.filter(pk=notification.pk).update(
            skipped="no_recipients", subject=subject, last_error=errors, **done)
        return "no_recipients"
    Notification.objects.filter(pk=notification.pk).update(
        sent_at=timezone.now(), recipients=delivered, subject=subject, last_error=errors, **done)
    return "sent"


# --- delivering webhooks ----------------------------------------------------------------------


def canonical_body(payload: dict[str, Any]) -> bytes:
    # ASCII-only and compact: the signed bytes are exactly the bytes on the wire.
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("ascii")


def sign(secret: str, timestamp: int, body: bytes, url: str = "") -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (the X-Vedomains-Signature value),
    plus `,v2=<hex>` over the canonical request (`domains.signing`, the sync API's scheme:
    POST, the receiver URL's path and query, the body's SHA-256) when `url` is given.
    Receivers written for v1 keep working; new ones verify v2, the one scheme both ways."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    value = f"t={timestamp},v1={digest.hexdigest()}"
    if url:
        value += f",v2={signing.v2_digest_for_url(secret, timestamp, 'POST', url, body)}"
    return value


def webhook_backoff(attempt: int) -> timedelta:
    """Delay after the `attempt`-th failure: exponential, capped, with jitter.

    Equal jitter (at least half the delay), for emails too: retries of one endpoint never
    bunch up near zero, and the random half spreads many deliveries after an outage.
    """
    return backoff_delay(attempt - 1, base=settings.VEDOMAINS_WEBHOOK_RETRY_BASE_SECONDS,
                         cap=settings.VEDOMAINS_WEBHOOK_RETRY_MAX_SECONDS, floor=EQUAL_JITTER)


def webhook_deliver(*, delivery_id: int) -> str:
    """Make one attempt at a due delivery; record it; schedule the next or give up."""
    now = timezone.now()
    lease = timedelta(seconds=settings.VEDOMAINS_WEBHOOK_TIMEOUT_SECONDS * 3 + 30)
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now,
    ).update(next_attempt_at=now + lease)
    if claimed != 1:
        return "not_due"
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.active:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.FAILED, next_attempt_at=None,
            last_error="The endpoint was deactivated; replay it once it is active again.")
        return "endpoint_inactive"

    attempt = delivery.attempts + 1
    body = canonical_body(delivery.payload)
    headers = {
        SIGNATURE_HEADER: sign(endpoint.secret, int(time.time()), body, url=endpoint.url),
        "X-Vedomains-Event-Id": str(delivery.payload.get("id", "")),
        "X-Vedomains-Event-Type": delivery.event_type,
        "X-Vedomains-Delivery-Attempt": str(attempt),
        "User-Agent": USER_AGENT,
    }
    result: webhook_http.HttpResult | None = None
    permanent = False
    try:
        result = webhook_http.post_json(endpoint.url, body, headers,
                                        timeout=settings.VEDOMAINS_WEBHOOK_TIMEOUT_SECONDS)
        error = "" if result.ok else f"HTTP {result.status_code}"
        if result.location:
            error += f" (redirect to {result.location} not followed)"
    except IntegrationError as exc:
        error, permanent = exc.message, exc.permanent
    finished = timezone.now()
    entry = {"attempt": attempt, "at": datetime_iso(finished),
             "status_code": result.status_code if result else None,
             "latency_ms": result.latency_ms if result else None, "error": error}
    fields: dict[str, Any] = {
        "attempts": attempt,
        "status_code": result.status_code if result else None,
        "latency_ms": result.latency_ms if result else None,
        "last_error": error,
        "attempt_log": [*delivery.attempt_log, entry][-ATTEMPT_LOG_MAX:],
    }
    if result is not None and result.ok:
        fields.update(status=DeliveryStatus.DELIVERED, delivered_at=finished,
                      next_attempt_at=None)
        outcome = "delivered"
    else:
        retry_at = finished + webhook_backoff(attempt)
        if permanent or retry_at > delivery.expires_at:
            fields.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
            outcome = "failed"
        else:
            fields.update(next_attempt_at=retry_at)
            outcome = "retry"
        log.info("webhook %s to endpoint %s: %s (attempt %s)", delivery.pk, endpoint.pk,
                 error, attempt)
    WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(**fields)
    return outcome


def webhook_replay(*, delivery: WebhookDelivery, by: actors.Actor) -> None:
    """Send the same event (same id and version) again, with a fresh 24 h retry window."""
    now = timezone.now()
    with transaction.atomic():
        entry = {"at": datetime_iso(now), "replayed_by": getattr(by, "get_username", lambda: "")()}
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.PENDING, next_attempt_at=now, delivered_at=None,
            expires_at=now + timedelta(seconds=settings.VEDOMAINS_WEBHOOK_RETRY_WINDOW_SECONDS),
            replays=F("replays") + 1,
            attempt_log=[*delivery.attempt_log, entry][-ATTEMPT_LOG_MAX:],
        )
        queueing.enqueue_after_commit(TaskName.WEBHOOK_DELIVER, delivery.pk)


# --- the periodic pass -------------------------------------------------------------------------


def due_deliveries(*, limit: int = 1000) -> list[int]:
    return list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING,
                                       next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )


def due_notifications(*, limit: int = 1000) -> list[int]:
    return list(
        Notification.objects.filter(Q(sent_at__isnull=True) & Q(skipped=""),
                                    next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )


def notifications_dispatch() -> int:
    """Queue every due webhook delivery and owner email: retries, and sends whose task was
    lost. Returns how many were queued."""
    deliveries = due_deliveries()
    emails = due_notifications()
    for pk in deliveries:
        queueing.task_send(TaskName.WEBHOOK_DELIVER, pk)
    for pk in emails:
        queueing.task_send(TaskName.NOTIFICATION_SEND, pk)
    return len(deliveries) + len(emails)
