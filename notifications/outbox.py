"""The outbox: which webhook deliveries and owner emails a change calls for, as rows.

Written in the transaction that changes the domain (`outbox_status_changed` by
`lifecycle.domain_transition`, `outbox_certificate_trouble` by the certificate watch), so
a rolled-back change tells nobody. The functions return the (task name, row id) pairs to
queue after commit; the caller queues them (`lifecycle.enqueue_all_after_commit`), which
keeps this module below the lifecycle layer. Sending is `notifications.sending`.

Exactly-once where it matters: a Notification row is unique per (domain, state_key), the
state being the transition's event or the certificate and its expiry, so repeated checks
of one state, retried tasks and racing workers cannot produce a second email about it; a
WebhookDelivery row is unique per (endpoint, event).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from domains import dns_doctor, selectors
from domains.models import CustomDomain, DomainEvent, DomainStatus, Workspace
from domains.task_names import TaskName
from notifications.models import (
    DeliveryStatus,
    Notification,
    NotificationKind,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)

# (task name, row id) pairs for the caller to queue once its transaction commits.
Queued = list[tuple[TaskName, int]]

# Keyed by str: a DomainEvent's to_status is a plain string from the database.
STATUS_NOTIFICATIONS: dict[str, NotificationKind] = {
    DomainStatus.ACTIVE: NotificationKind.DOMAIN_ACTIVE,
    DomainStatus.MISCONFIGURED: NotificationKind.DOMAIN_MISCONFIGURED,
    DomainStatus.FAILED: NotificationKind.DOMAIN_FAILED,
}


# --- hooks (called inside the caller's transaction) -------------------------------------------


def outbox_registered(*, domain: CustomDomain, event: DomainEvent) -> Queued:
    """`services.domain_register` calls this with the REGISTERED event: the main app hears of
    a new domain at once, not only when it leaves pending."""
    return _webhook_outbox(
        domain=domain, event=event, event_type=WebhookEventType.REGISTERED,
        status=domain.status, previous_status="",
    )


def outbox_status_changed(*, domain: CustomDomain, event: DomainEvent) -> Queued:
    """`lifecycle.domain_transition` calls this right after recording the status change.
    A move into `removed` is announced as `domain.removed`."""
    removed = event.to_status == DomainStatus.REMOVED
    queued = _webhook_outbox(
        domain=domain, event=event,
        event_type=WebhookEventType.REMOVED if removed else WebhookEventType.STATUS_CHANGED,
        status=event.to_status, previous_status=event.from_status,
    )
    kind = STATUS_NOTIFICATIONS.get(event.to_status)
    if kind is not None:
        queued += _notification_outbox(domain=domain, kind=kind, state_key=f"status:{event.pk}",
                                       event=event, context=_status_context(domain, event))
    return queued


def outbox_certificate_trouble(*, domain: CustomDomain, event: DomainEvent,
                               certificate: dict[str, Any], reasons: list[dict[str, str]]
                               ) -> Queued:
    """The certificate watch found (new) trouble: a webhook event, and the owners' email once.

    Once per certificate and expiry: when only the reasons change within that episode, the
    email's state key is taken already and no second message is written.
    """
    queued = _webhook_outbox(
        domain=domain, event=event, event_type=WebhookEventType.CERTIFICATE_TROUBLE,
        status=domain.status, previous_status=domain.status,
        extra={"certificate": {**certificate, "reasons": [r["code"] for r in reasons]}},
    )
    return queued + _notification_outbox(
        domain=domain, kind=NotificationKind.CERTIFICATE_TROUBLE,
        state_key=certificate_state_key(certificate["arn"], certificate["not_after"]),
        event=event, context={"reasons": reasons, "not_after": certificate["not_after"],
                              "renewal_status": certificate["renewal_status"]},
    )


def outbox_plan_event(*, domain: CustomDomain, event: DomainEvent, plan: dict[str, Any]
                      ) -> Queued:
    """A plan-limit step about one domain (`veai.plans`): its webhook."""
    return _webhook_outbox(domain=domain, event=event, event_type=WebhookEventType.PLAN_LIMIT,
                           status=domain.status,
                           previous_status=event.from_status or domain.status,
                           extra={"plan": plan})


def outbox_plan_notice(*, domain: CustomDomain, kind: str, state_key: str, event: DomainEvent,
                       context: dict[str, Any]) -> Queued:
    """The owners' email about a plan step, anchored on one of the affected domains."""
    return _notification_outbox(domain=domain, kind=kind, state_key=state_key, event=event,
                                context=context)


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
        "created_at": datetime_iso(event.created_at),
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
                    previous_status: str, extra: dict[str, Any] | None = None) -> Queued:
    endpoints = [e for e in WebhookEndpoint.objects.filter(active=True) if e.wants(event_type)]
    if not endpoints:
        return []
    slug = Workspace.objects.values_list("slug", flat=True).get(pk=domain.workspace_id)
    payload = event_payload(domain=domain, event=event, event_type=event_type,
                            workspace_slug=slug, status=status,
                            previous_status=previous_status, extra=extra)
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(endpoint=e, domain=domain, event=event, event_type=event_type,
                            payload=payload, next_attempt_at=now,
                            expires_at=now + timedelta(
                                seconds=settings.VEDOMAINS_WEBHOOK_RETRY_WINDOW_SECONDS))
            for e in endpoints
        ],
        ignore_conflicts=True,
    )
    ids = list(WebhookDelivery.objects.filter(event=event, status=DeliveryStatus.PENDING)
               .values_list("pk", flat=True))
    return [(TaskName.WEBHOOK_DELIVER, pk) for pk in ids]


def _notification_outbox(*, domain: CustomDomain, kind: str, state_key: str,
                         event: DomainEvent | None, context: dict[str, Any]) -> Queued:
    try:
        # A savepoint, so a duplicate (the same state seen again) leaves the caller's
        # transaction usable on PostgreSQL.
        with transaction.atomic():
            notification = Notification.objects.create(
                domain=domain, kind=kind, state_key=state_key, event=event, context=context,
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:
        return []  # this state was notified already: the unique constraint says so
    return [(TaskName.NOTIFICATION_SEND, notification.pk)]


# --- what the emails say ----------------------------------------------------------------------


def _status_context(domain: CustomDomain, event: DomainEvent) -> dict[str, Any]:
    context: dict[str, Any] = {"from_status": event.from_status, "to_status": event.to_status,
                               "message": event.message}
    if event.to_status == DomainStatus.MISCONFIGURED:
        found = (domain.checks or {}).get("dns") or {}
        since = domain.misconfigured_at or event.created_at
        deadline = (event.data or {}).get("detach_after") or datetime_iso(
            since + timedelta(seconds=settings.VEDOMAINS_MISCONFIGURED_GRACE_SECONDS))
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
    if event.to_status in (DomainStatus.MISCONFIGURED, DomainStatus.FAILED):
        # The DNS doctor's findings from the check that decided it (docs/dns-doctor.md).
        context["diagnosis"] = dns_doctor.stored_diagnosis(domain.checks)
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
        # A CloudFront-managed certificate (the default path) has no validation record.
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


def datetime_iso(value: datetime) -> str:
    """RFC 3339 in UTC with a "Z", the form webhook payloads and the attempt log use."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

