"""Admin for notifications: webhook endpoints and deliveries (with "Replay"), sent emails,
the "certificate trouble" and "needs attention" filters `staff.admin` puts on custom
domains, and the link to the staff dashboard (staff.dashboard, at
/admin/domains/dashboard/). Imported by `staff.admin`, which Django's admin discovers.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from domains.admin_read_only import ReadOnlyAdmin
from domains.integrations import webhook_http
from domains.integrations.errors import IntegrationError
from notifications import sending
from notifications.models import (
    DeliveryStatus,
    Notification,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
    generate_webhook_secret,
)
from staff import dashboard
from staff.admin_security import mask_secret

# --- filters added to the custom domain list ---------------------------------------------------


class CertificateTroubleFilter(admin.SimpleListFilter):
    """Live domains whose certificate is near expiry and not renewing (see
    workflow.certificates)."""

    title = "certificate trouble"
    parameter_name = "cert_trouble"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        condition = dashboard.attention_conditions(timezone.now())["certificate_trouble"]
        if self.value() == "yes":
            return queryset.filter(condition)
        if self.value() == "no":
            return queryset.exclude(condition)
        return queryset


class AttentionFilter(admin.SimpleListFilter):
    """The dashboard's "needs attention" groups, so its counts link to the same lists."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(dashboard.ATTENTION_LABELS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        condition = dashboard.attention_conditions(timezone.now()).get(self.value() or "")
        return queryset.filter(condition) if condition is not None else queryset


CERTIFICATE_WATCH_FIELDS = (
    "certificate_not_after",
    "certificate_renewal_status",
    "certificate_checked_at",
    "certificate_trouble",
    "certificate_trouble_at",
)


# The admin index gets a link to the dashboard (a template extending admin/index.html).
admin.site.index_template = "admin/domains/index_with_dashboard.html"


# --- webhook endpoints ----------------------------------------------------------------------


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https",
                         help_text=WebhookEndpoint._meta.get_field("url").help_text)
    event_types = forms.MultipleChoiceField(
        choices=WebhookEventType.choices, required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked to receive every event type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "active", "event_types"]

    def clean_url(self) -> str:
        # Resolve now too, so a name pointing at an internal address is refused at save
        # (the sender checks again at every send: DNS may change afterwards).
        url = str(self.cleaned_data["url"])
        try:
            webhook_http.check_destination(url)
        except IntegrationError as exc:
            # A name that does not resolve yet is accepted: it is checked at every send.
            if exc.code == "forbidden_destination":
                raise forms.ValidationError(exc.message) from exc
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["name", "url", "active", "event_filter", "pending", "failed", "created_at"]
    list_filter = ["active"]
    search_fields = ["name", "url"]
    actions = ["rotate_secret"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEndpoint]:
        return super().get_queryset(request).annotate(
            n_pending=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.PENDING)),
            n_failed=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.FAILED)),
        )

    def _secret_field(self, request: HttpRequest) -> str:
        # Only staff who may change the endpoint see its secret: with it anyone
        # can forge events the receiver trusts. Others see it masked.
        if request.user.has_perm("notifications.change_webhookendpoint"):
            return "signing_secret"
        return "signing_secret_masked"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields: tuple[str, ...] = ("name", "url", "active", "event_types")
        if obj is not None:
            fields += (self._secret_field(request), "created_at", "updated_at")
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return [self._secret_field(request), "created_at", "updated_at"]

    @admin.display(description="Signing secret")
    def signing_secret(self, obj: WebhookEndpoint) -> SafeString:
        # The secret appears nowhere else (not in lists, logs or __str__).
        return format_html(
            "<code>{}</code><br><span class='help'>Give this to the receiver; it verifies "
            "X-Vedomains-Signature with it (docs/webhooks.md).</span>", obj.secret)

    @admin.display(description="Signing secret")
    def signing_secret_masked(self, obj: WebhookEndpoint) -> str:
        return mask_secret(obj.secret, keep=10) + " (shown to staff who may change endpoints)"

    @admin.display(description="Events")
    def event_filter(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.event_types) if obj.event_types else "all"

    @admin.display(description="Pending", ordering="n_pending")
    def pending(self, obj: WebhookEndpoint) -> int:
        return getattr(obj, "n_pending", 0)

    @admin.display(description="Gave up", ordering="n_failed")
    def failed(self, obj: WebhookEndpoint) -> int:
        return getattr(obj, "n_failed", 0)

    @admin.action(description="Rotate signing secret", permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
                secret=generate_webhook_secret(), updated_at=timezone.now())
        self.message_user(
            request, f"New secret for {queryset.count()} endpoint(s); see each change page. "
            "Deliveries from now on are signed with it.", messages.WARNING)


# --- deliveries --------------------------------------------------------------------------------


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "endpoint", "domain", "event_type", "version", "status",
                    "attempts", "status_code", "latency_ms", "next_attempt_at", "delivered_at"]
    list_filter = ["status", "event_type", "endpoint"]
    search_fields = ["domain__hostname"]
    list_select_related = ["endpoint", "domain"]
    ordering = ["-created_at", "-id"]
    actions = ["replay"]
    # Tuples: the stubs type `fields` (groups allowed) and `readonly_fields` differently.
    fields = readonly_fields = (
        "endpoint", "domain", "event_type", "version", "status", "attempts", "replays",
        "status_code", "latency_ms", "last_error", "created_at",
        "next_attempt_at", "expires_at", "delivered_at", "payload_json", "attempts_table")

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.change_webhookdelivery")

    @admin.display(description="Version")
    def version(self, obj: WebhookDelivery) -> int:
        return obj.version

    @admin.display(description="Payload")
    def payload_json(self, obj: WebhookDelivery) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))

    @admin.display(description="Attempts")
    def attempts_table(self, obj: WebhookDelivery) -> SafeString | str:
        if not obj.attempt_log:
            return "No attempt yet."
        rows = (
            (e.get("attempt", "replay"), e.get("at", ""), e.get("status_code") or "",
             e.get("latency_ms") if e.get("latency_ms") is not None else "",
             e.get("error") or (f"replayed by {e['replayed_by']}" if "replayed_by" in e else ""))
            for e in obj.attempt_log
        )
        return format_html(
            "<table><thead><tr><th>#</th><th>At</th><th>Status</th><th>ms</th><th>Error</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                             "<td>{}</td></tr>", rows))

    @admin.action(description="Replay (send the same event again)", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = 0
        for delivery in queryset:
            sending.webhook_replay(delivery=delivery, by=request.user)
            count += 1
        noun = "delivery" if count == 1 else "deliveries"
        self.message_user(request, f"Replay queued for {count} {noun}.", messages.SUCCESS)


# --- notifications -------------------------------------------------------------------------------


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "domain", "kind", "sent_at", "skipped", "recipient_list",
                    "attempts"]
    list_filter = ["kind", "skipped"]
    search_fields = ["domain__hostname", "subject"]
    list_select_related = ["domain"]
    ordering = ["-created_at", "-id"]
    fields = readonly_fields = (
        "domain", "kind", "state_key", "event", "subject", "recipients", "context",
        "created_at", "attempts", "next_attempt_at", "sent_at", "skipped", "last_error")

    @admin.display(description="Recipients")
    def recipient_list(self, obj: Notification) -> str:
        return ", ".join(obj.recipients)
