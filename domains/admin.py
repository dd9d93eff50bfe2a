"""Django admin for staff: workspaces, custom domains and their audit trail.

The admin is another thin interface over `domains.services`: adding a domain registers it
through `domain_register`, and the actions call the same services as the API, recorded
with source "admin" and the acting staff user. System-managed fields are read-only, and
domain rows cannot be deleted (that would skip the CDN, edge and certificate clean-up).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, F, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from domains import selectors, services
from domains.admin_notify import (
    CERTIFICATE_WATCH_FIELDS,
    AttentionFilter,
    CertificateTroubleFilter,
)
from domains.errors import DomainError
from domains.models import (
    CapacityAlert,
    CustomDomain,
    DomainEvent,
    DomainStatus,
    Membership,
    Workspace,
)

CERTIFICATE_PENDING_ALERT = timedelta(hours=24)


# --- workspaces ---------------------------------------------------------------------------


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    readonly_fields = ["created_at"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "plan", "domain_count", "created_at"]
    list_filter = ["plan"]
    search_fields = ["slug", "name"]
    readonly_fields = ["created_at"]
    inlines = [MembershipInline]
    # Explicit: Django drops Meta.ordering from the GROUP BY query the count annotation makes.
    ordering = ["slug"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Workspace]:
        # One annotated query for the whole page instead of a COUNT per row.
        return (
            super()
            .get_queryset(request)
            .annotate(
                live_domains=Count("domains", filter=~Q(domains__status=DomainStatus.REMOVED))
            )
        )

    @admin.display(description="Domains", ordering="live_domains")
    def domain_count(self, obj: Workspace) -> int:
        return getattr(obj, "live_domains", 0)


# --- list filters for derived states --------------------------------------------------------


class _YesNoFilter(admin.SimpleListFilter):
    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def condition(self) -> Q:
        raise NotImplementedError

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(self.condition())
        if self.value() == "no":
            return queryset.exclude(self.condition())
        return queryset


class HasErrorFilter(_YesNoFilter):
    title = "has error"
    parameter_name = "has_error"

    def condition(self) -> Q:
        return ~Q(last_error="")


class CertificatePendingFilter(_YesNoFilter):
    """Pending domains whose certificate was requested over a day ago and is not issued.

    ACM usually issues within minutes of the validation CNAME appearing, so a day means the
    customer has not created it (or created it wrong): worth a support nudge before the
    72-hour ACM window closes.
    """

    title = "certificate pending > 24 h"
    parameter_name = "cert_pending"

    def condition(self) -> Q:
        return (
            Q(status=DomainStatus.PENDING_VALIDATION)
            & Q(certificate_requested_at__lt=timezone.now() - CERTIFICATE_PENDING_ALERT)
            & ~Q(certificate_status="ISSUED")
        )


class EdgeOutOfSyncFilter(_YesNoFilter):
    title = "edge out of sync"
    parameter_name = "edge_out_of_sync"

    def condition(self) -> Q:
        return Q(edge_synced_version__lt=F("edge_version"))


# --- custom domains -------------------------------------------------------------------------


class DomainEventInline(admin.TabularInline):
    model = DomainEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "source", "actor", "from_status", "to_status", "message"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[DomainEvent]:
        return super().get_queryset(request).select_related("actor")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DomainAddForm(forms.ModelForm):
    """Adding a domain in the admin registers it through the service, like the API does.

    The service runs in `clean()` so that its refusals (bad hostname, plan, conflict) are
    shown as form errors; `save()` then hands back the record it created.
    """

    class Meta:
        model = CustomDomain
        fields = ["hostname", "workspace"]
        help_texts = {
            "hostname": "Registered exactly as through the API: validated, checked against "
            "the plan and other workspaces, and a certificate is requested.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.request_user: Any = kwargs.pop("request_user", None)
        super().__init__(*args, **kwargs)
        self.registered: CustomDomain | None = None

    def _post_clean(self) -> None:
        # ModelForm would run the model's full_clean (and the unique-constraint query) on
        # an instance that is never saved; the service does all of that itself.
        pass

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors or not data.get("workspace"):
            return data
        try:
            self.registered = services.domain_register(
                workspace=data["workspace"],
                hostname=data.get("hostname", ""),
                by=self.request_user,
                source="admin",
            )
        except DomainError as exc:
            field = exc.field if exc.field in self.fields else None
            raise forms.ValidationError({field: exc.message} if field else exc.message) from exc
        return data

    def save(self, commit: bool = True) -> CustomDomain:
        assert self.registered is not None  # clean() succeeded
        return self.registered


@admin.register(CustomDomain)
class CustomDomainAdmin(admin.ModelAdmin):
    list_display = [
        "hostname",
        "workspace",
        "status",
        "certificate_status",
        "last_checked_at",
        "next_check_at",
        "has_error",
        "edge_in_sync",
    ]
    list_filter = [
        "status",
        "workspace__plan",
        HasErrorFilter,
        CertificatePendingFilter,
        EdgeOutOfSyncFilter,
        CertificateTroubleFilter,
        AttentionFilter,
    ]
    search_fields = ["hostname", "workspace__slug", "workspace__name"]
    list_select_related = ["workspace"]
    autocomplete_fields = ["workspace"]
    ordering = ["-created_at", "-id"]
    actions = ["check_now", "push_to_edge", "remove_domains", "prevalidate_acm",
               "prevalidate_self_hosted"]
    inlines = [DomainEventInline]
    # Every field is system-managed once the domain exists; changes go through actions.
    readonly_fields = [
        "hostname",
        "workspace",
        "status",
        "dns_records",
        "checks_table",
        "last_error",
        "created_by",
        "ownership_required",
        "ownership_token",
        "ownership_verified_at",
        "certificate_arn",
        "certificate_status",
        "certificate_requested_at",
        "validation_records",
        "prevalidation",
        "cdn_resource_id",
        "cdn_domain_name",
        "check_count",
        "created_at",
        "updated_at",
        "last_checked_at",
        "next_check_at",
        "fast_checks_until",
        "verified_at",
        "activated_at",
        "misconfigured_at",
        "failed_at",
        "removed_at",
        "edge_version",
        "edge_synced_version",
        *CERTIFICATE_WATCH_FIELDS,
    ]
    fieldsets = [
        (None, {"fields": ["hostname", "workspace", "status", "last_error", "created_by"]}),
        ("DNS records the customer must create", {"fields": ["dns_records"]}),
        ("Checks", {"fields": ["checks_table", "check_count", "last_checked_at",
                               "next_check_at", "fast_checks_until"]}),
        ("Ownership", {"fields": ["ownership_required", "ownership_token",
                                  "ownership_verified_at"]}),
        ("Certificate", {"fields": ["certificate_arn", "certificate_status",
                                    "certificate_requested_at", "validation_records",
                                    "prevalidation"]}),
        ("CDN and edge", {"fields": ["cdn_resource_id", "cdn_domain_name", "edge_version",
                                     "edge_synced_version"]}),
        ("Timeline", {"fields": ["created_at", "updated_at", "verified_at", "activated_at",
                                 "misconfigured_at", "failed_at", "removed_at"]}),
        ("Certificate renewal watch", {"fields": CERTIFICATE_WATCH_FIELDS}),
    ]
    add_fieldsets = [(None, {"fields": ["hostname", "workspace"]})]

    # --- add goes through services.domain_register ---------------------------------------

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = DomainAddForm
            kwargs["fields"] = ["hostname", "workspace"]
            form_class = super().get_form(request, obj, change=change, **kwargs)

            class BoundAddForm(form_class):  # type: ignore[misc, valid-type]
                def __init__(self, *args: Any, **kw: Any) -> None:
                    super().__init__(*args, request_user=request.user, **kw)

            return BoundAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.readonly_fields

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return [] if obj is None else super().get_inline_instances(request, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Adding: the service saved the record in the form's clean(). Changing: nothing is
        # editable, so there is nothing to save.
        return None

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # On add, the service has saved everything and there are no inlines; on change the
        # (read-only) inline formsets still run so the admin can build its change message.
        if change:
            super().save_related(request, form, formsets, change)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting the row would strand the CloudFront attachment, the edge mapping and the
        # certificate; the "Remove" action cleans them up.
        return False

    # --- display -----------------------------------------------------------------------

    @admin.display(boolean=True, description="Error", ordering="last_error")
    def has_error(self, obj: CustomDomain) -> bool:
        return bool(obj.last_error)

    @admin.display(boolean=True, description="Edge in sync")
    def edge_in_sync(self, obj: CustomDomain) -> bool:
        return obj.edge_in_sync

    @admin.display(description="DNS records")
    def dns_records(self, obj: CustomDomain) -> SafeString:
        rows = selectors.domain_dns_records(obj)
        return format_html(
            '<table><thead><tr><th>Purpose</th><th>Type</th><th>Name</th><th>Value</th>'
            "</tr></thead><tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                ((r["purpose"], r["type"], r["name"], r["value"]) for r in rows),
            ),
        )

    @admin.display(description="Last result of each check")
    def checks_table(self, obj: CustomDomain) -> SafeString | str:
        checks = obj.checks if isinstance(obj.checks, dict) else {}
        if not checks:
            return "No check has run yet."
        rows = []
        for name, result in sorted(checks.items()):
            result = result if isinstance(result, dict) else {"detail": result}
            ok = result.get("ok")
            rows.append((name, "yes" if ok else ("no" if ok is not None else "?"),
                         result.get("detail", ""), result.get("at", "")))
        return format_html(
            "<table><thead><tr><th>Check</th><th>OK</th><th>Detail</th><th>At</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            format_html_join(
                "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
            ),
        )

    # --- actions -----------------------------------------------------------------------

    def _run(
        self,
        request: HttpRequest,
        queryset: QuerySet[CustomDomain],
        *,
        verb: str,
        call: Any,
    ) -> None:
        done = 0
        failures: list[str] = []
        for domain in queryset.select_related("workspace"):
            try:
                call(domain=domain, by=request.user, source="admin")
            except DomainError as exc:
                failures.append(f"{domain.hostname}: {exc.message}")
            else:
                done += 1
        if done:
            self.message_user(request, f"{verb}: {done} domain(s).", messages.SUCCESS)
        if failures:
            self.message_user(
                request,
                f"{verb} failed for {len(failures)} domain(s): " + "; ".join(failures),
                messages.ERROR,
            )

    @admin.action(description="Check now", permissions=["change"])
    def check_now(self, request: HttpRequest, queryset: QuerySet[CustomDomain]) -> None:
        self._run(request, queryset, verb="Check queued", call=services.domain_request_check)

    @admin.action(description="Push to edge", permissions=["change"])
    def push_to_edge(self, request: HttpRequest, queryset: QuerySet[CustomDomain]) -> None:
        self._run(request, queryset, verb="Edge push queued", call=services.domain_push_to_edge)

    # Pre-validation: for a customer whose hostname serves a live site elsewhere.
    @admin.action(description="Pre-validate: ACM certificate (one extra DNS record)",
                  permissions=["change"])
    def prevalidate_acm(self, request: HttpRequest, queryset: QuerySet[CustomDomain]) -> None:
        self._run(request, queryset, verb="Pre-validation (ACM) requested",
                  call=lambda **kw: services.domain_prevalidate(mode="acm", **kw))

    @admin.action(description="Pre-validate: token on the customer's current server",
                  permissions=["change"])
    def prevalidate_self_hosted(self, request: HttpRequest,
                                queryset: QuerySet[CustomDomain]) -> None:
        self._run(request, queryset, verb="Pre-validation (self-hosted) requested",
                  call=lambda **kw: services.domain_prevalidate(mode="self-hosted", **kw))

    @admin.action(description="Remove (detach and clean up)", permissions=["change"])
    def remove_domains(self, request: HttpRequest, queryset: QuerySet[CustomDomain]) -> None:
        self._run(request, queryset, verb="Removed", call=services.domain_remove)


@admin.register(CapacityAlert)
class CapacityAlertAdmin(admin.ModelAdmin):
    """CloudFront quotas our account hit; written by the engine, read-only here."""

    list_display = ["code", "is_open", "occurrences", "last_hostname", "first_seen_at",
                    "last_seen_at", "resolved_at"]
    list_filter = [("resolved_at", admin.EmptyFieldListFilter)]
    readonly_fields = list_display + ["message"]

    @admin.display(boolean=True, description="Open")
    def is_open(self, obj: CapacityAlert) -> bool:
        return obj.is_open

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DomainEvent)
class DomainEventAdmin(admin.ModelAdmin):
    """The audit trail, read-only: it is append-only by design."""

    list_display = ["created_at", "domain", "kind", "source", "actor", "from_status",
                    "to_status", "message"]
    list_filter = ["kind", "source"]
    search_fields = ["domain__hostname", "message"]
    list_select_related = ["domain", "actor"]
    ordering = ["-created_at", "-id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
