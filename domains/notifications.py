"""Telling people what happened: owner emails and signed webhooks (services).

Both are written as an outbox in the transaction that changes the domain (`on_status_changed`
is called by `services.transition`, `on_certificate_trouble` by the certificate watch), then
sent by Celery after commit. A lost task (broker outage, worker killed) only delays a send:
beat's `dispatch_notifications` picks up every row that is due.

Exactly-once where it matters:
- a Notification row is unique per (domain, state_key), the state being the transition's
  event or the certificate and its expiry, so repeated checks of one state, retried tasks
  and racing workers cannot produce a second email about it;
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
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from domains import selectors
from domains.integrations import webhook_http
from domains.integrations.errors import IntegrationError
from domains.models import (
    WRITE_ROLES,
    CustomDomain,
    DeliveryStatus,
    DomainEvent,
    DomainStatus,
    EventKind,
    Membership,
    Notification,
    NotificationKind,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
    Workspace,
)

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Vedomains-Signature"
USER_AGENT = "vedomains-webhooks/1"
ATTEMPT_LOG_MAX = 50
# Emails are retried (SMTP down) for as long as webhooks are, then given up and recorded.
EMAIL_RETRY_BASE_SECONDS = 60
EMAIL_RETRY_MAX_SECONDS = 3600
EMAIL_LEASE = timedelta(minutes=5)

STATUS_NOTIFICATIONS = {
    DomainStatus.ACTIVE: NotificationKind.DOMAIN_ACTIVE,
    DomainStatus.MISCONFIGURED: NotificationKind.DOMAIN_MISCONFIGURED,
    DomainStatus.FAILED: NotificationKind.DOMAIN_FAILED,
}


# --- hooks (called inside the caller's transaction) -------------------------------------------


def on_status_changed(*, domain: CustomDomain, event: DomainEvent) -> None:
    """`services.transition` calls this right after recording the status change."""
    _webhook_outbox(
        domain=domain, event=event, event_type=WebhookEventType.STATUS_CHANGED,
        status=event.to_status, previous_status=event.from_status,
    )
    kind = STATUS_NOTIFICATIONS.get(event.to_status)  # type: ignore[call-overload]
    if kind is not None:
        _notification_outbox(domain=domain, kind=kind, state_key=f"status:{event.pk}",
                             event=event, context=_status_context(domain, event))


def on_certificate_trouble(*, domain: CustomDomain, event: DomainEvent,
                           certificate: dict[str, Any], reasons: list[dict[str, str]]) -> None:
    """The certificate watch found (new) trouble: a webhook event, and the owners' email once.

    Once per certificate and expiry: when only the reasons change within that episode, the
    email's state key is taken already and no second message is written.
    """
    _webhook_outbox(
        domain=domain, event=event, event_type=WebhookEventType.CERTIFICATE_TROUBLE,
        status=domain.status, previous_status=domain.status,
        extra={"certificate": {**certificate, "reasons": [r["code"] for r in reasons]}},
    )
    _notification_outbox(
        domain=domain, kind=NotificationKind.CERTIFICATE_TROUBLE,
        state_key=certificate_state_key(certificate["arn"], certificate["not_after"]),
        event=event, context={"reasons": reasons, "not_after": certificate["not_after"],
                              "renewal_status": certificate["renewal_status"]},
    )


def certificate_state_key(arn: str, not_after: str) -> str:
    # One trouble email per certificate and expiry: a renewal (new NotAfter) starts anew.
    return f"certificate:{hashlib.sha256(arn.encode()).hexdigest()[:16]}:{not_after[:10]}"


# --- outbox -----------------------------------------------------------------------------------


def event_payload(*, domain: CustomDomain, event: DomainEvent, event_type: str,
                  workspace_slug: str, status: str, previous_status: str,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON object a receiver gets (documented in docs/webhooks.md)."""
    return {
        "id": f"evt_{event.pk}",
        "type": event_type,
        "created_at": iso(event.created_at),
        # DomainEvent ids only grow, and one domain's status changes are serialised by the
        # compare-and-swap on its row, so a higher version is always the newer state.
        "version": event.pk,
        "domain": {
            "id": domain.pk,
            "hostname": domain.hostname,
            "workspace": workspace_slug,
            "status": status,
            "previous_status": previous_status,
        },
        "reason": event.message,
        **(extra or {}),
    }


def _webhook_outbox(*, domain: CustomDomain, event: DomainEvent, event_type: str, status: str,
                    previous_status: str, extra: dict[str, Any] | None = None) -> None:
    endpoints = [e for e in WebhookEndpoint.objects.filter(active=True) if e.wants(event_type)]
    if not endpoints:
        return
    slug = Workspace.objects.values_list("slug", flat=True).get(pk=domain.workspace_id)
    payload = event_payload(domain=domain, event=event, event_type=event_type,
                            workspace_slug=slug, status=status,
                            previous_status=previous_status, extra=extra)
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(endpoint=e, domain=domain, event=event, event_type=event_type,
                            payload=payload, next_attempt_at=now,
                            expires_at=now + settings.VEDOMAINS_WEBHOOK_RETRY_WINDOW)
            for e in endpoints
        ],
        ignore_conflicts=True,
    )
    ids = list(WebhookDelivery.objects.filter(event=event, status=DeliveryStatus.PENDING)
               .values_list("pk", flat=True))
    _enqueue("deliver_webhook", ids)


def _notification_outbox(*, domain: CustomDomain, kind: str, state_key: str,
                         event: DomainEvent | None, context: dict[str, Any]) -> None:
    try:
        # A savepoint, so a duplicate (the same state seen again) leaves the caller's
        # transaction usable on PostgreSQL.
        with transaction.atomic():
            notification = Notification.objects.create(
                domain=domain, kind=kind, state_key=state_key, event=event, context=context,
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:
        return  # this state was notified already: the unique constraint says so
    _enqueue("send_notification", [notification.pk])


def _enqueue(task_name: str, ids: list[int]) -> None:
    from domains import services  # services imports this module

    for pk in ids:
        services.enqueue_after_commit(task_name, pk)


# --- what the emails say ----------------------------------------------------------------------


def _status_context(domain: CustomDomain, event: DomainEvent) -> dict[str, Any]:
    context: dict[str, Any] = {"from_status": event.from_status, "to_status": event.to_status,
                               "message": event.message}
    if event.to_status == DomainStatus.MISCONFIGURED:
        found = (domain.checks or {}).get("dns") or {}
        since = domain.misconfigured_at or event.created_at
        deadline = (event.data or {}).get("detach_after") or iso(
            since + settings.VEDOMAINS_MISCONFIGURED_GRACE)
        context.update(
            found=found.get("detail") or event.message,
            chain=list(found.get("chain") or []),
            record={"type": "CNAME", "name": domain.hostname,
                    "value": settings.VEDOMAINS_CNAME_TARGET},
            deadline=deadline,
        )
    elif event.to_status == DomainStatus.FAILED:
        why = event.message or domain.last_error
        context.update(why=why, advice=failure_advice(why, (event.data or {}).get("code", "")),
                       records=selectors.domain_dns_records(domain))
    return context


def failure_advice(why: str, code: str = "") -> str:
    """What the owner can do about a failed domain, from the reason the engine recorded."""
    text = why.lower()
    if code == "CNAMEAlreadyExists" or "cnamealreadyexists" in text:
        return ("The hostname is already attached to another CloudFront distribution (perhaps "
                "a previous provider's). Remove it there, then add the domain again.")
    if "never pointed" in text:
        return ("Create the CNAME record shown below at your DNS provider, wait until it "
                "resolves, then add the domain again.")
    if "cloudfront could not validate" in text or "certificate authority refused" in text:
        # CloudFront-managed certificate (the default path): there is no validation record.
        return ("Make sure the one CNAME shown below points to ve.ai exactly as written, and "
                "that no CAA record at your domain forbids Amazon (amazon.com) from issuing "
                "for this name. Then add the domain again.")
    if "certificate" in text:
        return ("Create the certificate validation CNAME shown below exactly as written, and "
                "make sure no CAA record forbids Amazon (amazon.com) from issuing for this "
                "name. Then add the domain again.")
    if "ownership" in text:
        return ("Create the ownership TXT record shown below to prove you control the domain, "
                "then add the domain again.")
    return "Check the DNS records below, then add the domain again, or reply to reach support."


SUBJECTS = {
    NotificationKind.DOMAIN_ACTIVE: "{hostname} is live on ve.ai",
    NotificationKind.DOMAIN_MISCONFIGURED: "Action needed: {hostname} no longer points to ve.ai",
    NotificationKind.DOMAIN_FAILED: "{hostname} could not be connected to ve.ai",
    NotificationKind.CERTIFICATE_TROUBLE:
        "Action needed: the certificate for {hostname} cannot renew",
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
        subject = SUBJECTS[notification.kind].format(  # type: ignore[index]
            hostname=domain.hostname)
    base = f"domains/email/{notification.kind}"
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
    return sorted({e.strip().lower(): e.strip() for e in emails}.values())


# --- sending email ------------------------------------------------------------------------------


def _superseded(notification: Notification) -> bool:
    """Has the domain left the state this message is about? Then it would only confuse."""
    domain = notification.domain
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
    try:
        with get_connection(fail_silently=False) as connection:
            for address in recipients:
                if address in delivered:
                    continue
                # One message per person: owners do not see each other's addresses.
                message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL,
                                                 [address], connection=connection)
                message.attach_alternative(html, "text/html")
                message.send()
                delivered.append(address)
    except Exception as exc:  # noqa: BLE001 - SMTP and socket errors alike: retry, then record
        retry_at = timezone.now() + _jittered(notification.attempts, EMAIL_RETRY_BASE_SECONDS,
                                              EMAIL_RETRY_MAX_SECONDS)
        give_up = retry_at > notification.created_at + settings.VEDOMAINS_WEBHOOK_RETRY_WINDOW
        Notification.objects.filter(pk=notification.pk).update(
            recipients=delivered, subject=subject,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            next_attempt_at=None if give_up else retry_at,
        )
        log.warning("email %s failed (attempt %s): %s", notification.pk, notification.attempts,
                    exc)
        return "gave_up" if give_up else "retry"
    Notification.objects.filter(pk=notification.pk).update(
        sent_at=timezone.now(), recipients=delivered, subject=subject, last_error="", **done)
    return "sent"


# --- delivering webhooks ----------------------------------------------------------------------


def canonical_body(payload: dict[str, Any]) -> bytes:
    # ASCII-only and compact: the signed bytes are exactly the bytes on the wire.
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("ascii")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (the X-Vedomains-Signature value)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def webhook_backoff(attempt: int) -> timedelta:
    """Delay after the `attempt`-th failure: exponential, capped, with jitter."""
    return _jittered(attempt, settings.VEDOMAINS_WEBHOOK_RETRY_BASE_SECONDS,
                     settings.VEDOMAINS_WEBHOOK_RETRY_MAX_SECONDS)


def _jittered(attempt: int, base: float, cap: float) -> timedelta:
    # "Equal jitter": at least half the exponential delay, so retries of one endpoint never
    # bunch up near zero, and the random half spreads many deliveries after an outage.
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))


def webhook_deliver(*, delivery_id: int) -> str:
    """Make one attempt at a due delivery; record it; schedule the next or give up."""
    now = timezone.now()
    lease = timedelta(seconds=settings.VEDOMAINS_WEBHOOK_TIMEOUT * 3 + 30)
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
        SIGNATURE_HEADER: sign(endpoint.secret, int(time.time()), body),
        "X-Vedomains-Event-Id": str(delivery.payload.get("id", "")),
        "X-Vedomains-Event-Type": delivery.event_type,
        "X-Vedomains-Delivery-Attempt": str(attempt),
        "User-Agent": USER_AGENT,
    }
    result: webhook_http.HttpResult | None = None
    permanent = False
    try:
        result = webhook_http.post_json(endpoint.url, body, headers,
                                        timeout=settings.VEDOMAINS_WEBHOOK_TIMEOUT)
        error = "" if result.ok else f"HTTP {result.status_code}"
        if result.location:
            error += f" (redirect to {result.location} not followed)"
    except IntegrationError as exc:
        error, permanent = exc.message, exc.permanent
    finished = timezone.now()
    entry = {"attempt": attempt, "at": iso(finished),
             "status_code": result.status_code if result else None,
             "latency_ms": result.latency_ms if result else None, "error": error}
    fields: dict[str, Any] = {
        "attempts": attempt,
        "status_code": result.status_code if result else None,
        "latency_ms": result.latency_ms if result else None,
        "response_excerpt": result.excerpt if result else "",
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


def webhook_replay(*, delivery: WebhookDelivery, by: AbstractBaseUser | None) -> None:
    """Send the same event (same id and version) again, with a fresh 24 h retry window."""
    now = timezone.now()
    with transaction.atomic():
        entry = {"at": iso(now), "replayed_by": getattr(by, "get_username", lambda: "")()}
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.PENDING, next_attempt_at=now, delivered_at=None,
            expires_at=now + settings.VEDOMAINS_WEBHOOK_RETRY_WINDOW,
            replays=F("replays") + 1,
            attempt_log=[*delivery.attempt_log, entry][-ATTEMPT_LOG_MAX:],
        )
        _enqueue("deliver_webhook", [delivery.pk])


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


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
