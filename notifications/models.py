"""Records of webhooks and owner emails: endpoints, deliveries, notifications."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q

from domains.integrations import webhook_http
from domains.integrations.errors import IntegrationError
from domains.models import CustomDomain, DomainEvent


def generate_webhook_secret() -> str:
    # 256 bits, URL-safe; the prefix makes a leaked secret easy to recognise in a scanner.
    return "whsec_" + secrets.token_urlsafe(32)


def validate_webhook_url(value: str) -> None:
    """Save-time SSRF check without I/O (scheme, metadata names, literal addresses); the
    sender checks what the name resolves to at send time (integrations.webhook_http)."""
    try:
        webhook_http.check_url(value)
    except IntegrationError as exc:
        raise ValidationError(exc.message, code="forbidden_destination") from exc


class WebhookEventType(models.TextChoices):
    REGISTERED = "domain.registered", "Domain registered"
    STATUS_CHANGED = "domain.status_changed", "Domain status changed"
    REMOVED = "domain.removed", "Domain removed"
    CERTIFICATE_TROUBLE = "domain.certificate_trouble", "Certificate renewal trouble"
    PLAN_LIMIT = "domain.plan_limit", "Plan limit (over, warning, detached, resolved)"


# Registering and removing change the status too: an endpoint subscribed to status changes
# (before these types existed) keeps hearing about them.
STATUS_EVENT_TYPES = frozenset({"domain.registered", "domain.removed"})


class WebhookEndpoint(models.Model):
    """A receiver (the main ve.ai app) of signed domain events; managed by staff in the admin."""

    name = models.CharField(max_length=100)
    url = models.URLField(
        max_length=2000,
        validators=[URLValidator(schemes=["http", "https"]), validate_webhook_url],
        help_text="Receives a POST per event. Redirects are not followed: give the final URL.",
    )
    # Readable by staff on the admin change page only; never logged or put in __str__.
    secret = models.CharField(max_length=100, default=generate_webhook_secret, editable=False)
    active = models.BooleanField(default=True)
    # Event types this endpoint wants; empty means all of them.
    event_types = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types or (
            event_type in STATUS_EVENT_TYPES
            and WebhookEventType.STATUS_CHANGED in self.event_types
        )


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class WebhookDelivery(models.Model):
    """One event for one endpoint: every attempt updates it and is appended to attempt_log.

    Created in the same transaction as the DomainEvent it carries (an outbox), so a broker
    outage delays deliveries but cannot lose them: the periodic pass sends what is due.
    """

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    domain = models.ForeignKey(
        CustomDomain, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    event = models.ForeignKey(
        DomainEvent, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    event_type = models.CharField(max_length=60, choices=WebhookEventType.choices)
    # The exact JSON object sent (snapshot at the time of the event; replays send it again).
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    replays = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    # No response body is stored: an SSRF'd internal service's answer must not
    # end up on a staff page. Status, timing and errors only.
    last_error = models.TextField(blank=True, default="")
    # [{"attempt", "at", "status_code", "latency_ms", "error"}], newest last, capped.
    attempt_log = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Due time of the next attempt, also used as a lease while an attempt runs; null when done.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Retries stop here (24 h after the event, or after a replay).
    expires_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            # The outbox is written once per (endpoint, event), whoever writes it.
            models.UniqueConstraint(fields=["endpoint", "event"], name="uniq_delivery_per_event"),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx"),
            models.Index(fields=["domain", "created_at"], name="delivery_domain_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} v{self.event_id} -> {self.endpoint_id} ({self.status})"

    @property
    def version(self) -> int:
        return int(self.event_id)


class NotificationKind(models.TextChoices):
    DOMAIN_ACTIVE = "domain_active", "Domain active"
    DOMAIN_MISCONFIGURED = "domain_misconfigured", "Domain misconfigured"
    DOMAIN_FAILED = "domain_failed", "Domain failed"
    CERTIFICATE_TROUBLE = "certificate_trouble", "Certificate trouble"
    PLAN_OVER_LIMIT = "plan_over_limit", "Plan below live domains"
    PLAN_DETACH_WARNING = "plan_detach_warning", "Domains about to be detached"


class Notification(models.Model):
    """An email to a workspace's owners and admins about one state of one domain.

    `state_key` names the state (the transition's event id, or the certificate and its
    expiry), and (domain, state_key) is unique: a repeated check, a retried task or two
    workers can never send a second message about the same state.
    """

    domain = models.ForeignKey(
        CustomDomain, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=40, choices=NotificationKind.choices)
    state_key = models.CharField(max_length=200)
    event = models.ForeignKey(
        DomainEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What the message says, captured when the state was entered (finding, deadline, ...).
    context = models.JSONField(default=dict, blank=True)
    # The addresses it was sent to (each once, even across retried attempts).
    recipients = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    # Due time of the next send attempt, also the lease while one runs; null when done.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Why nothing was sent: "superseded" (the domain left the state first), "no_recipients".
    skipped = models.CharField(max_length=40, blank=True, default="")
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["domain", "state_key"], name="uniq_notification_per_state"
            ),
        ]
        indexes = [models.Index(fields=["next_attempt_at"], name="notification_due_idx")]

    def __str__(self) -> str:
        return f"{self.kind} for {self.domain_id} ({self.state_key})"
