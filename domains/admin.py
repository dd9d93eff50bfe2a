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
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil

# admin_security replaces DRF's token admin (keys never shown); admin_veai registers the
# ve.ai integration's records.
from domains import admin_security, admin_veai, services, support  # noqa: F401
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

# The header and tab title name the product; "View site" is gone (there is no public site
# here): the domain pages link the API docs instead.
admin.site.site_header = "vedomains \u00b7 custom domains staff admin"
admin.site.site_title = "vedomains staff admin"
admin.site.index_title = "Custom domains of ve.ai workspaces"
admin.site.site_url = None


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

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The slug is the workspaceId the edge, the DynamoDB items and the ve.ai app route
        # by: renaming it would leave traffic on the old slug for whoever takes it next
        #. It is set once, at creation.
        return ["slug", "created_at"] if obj is not None else ["created_at"]
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


# Actions offered as buttons on a domain's page (the list's "Remove" stays in the list, where
# it asks for confirmation).
PAGE_ACTIONS = {
    "check_now": ("Check now", "Check queued", services.domain_request_check),
    "push_to_edge": ("Push to edge", "Edge push queued", services.domain_push_to_edge),
}


@admin.register(CustomDomain)
class CustomDomainAdmin(admin.ModelAdmin):
    # What a support person scans; the rest is on the domain's page. Fits 1280 px with the
    # filter sidebar (tests/e2e/test_admin_support_browser.py measures it).
    list_display = ["domain", "workspace", "state", "problem", "age", "next_check"]
    list_display_links = ["domain"]
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
    search_help_text = ("Hostname in any spelling (Unicode, punycode, trailing dot, a pasted "
                        "URL), or a workspace slug or name.")
    list_select_related = ["workspace"]
    autocomplete_fields = ["workspace"]
    ordering = ["-created_at", "-id"]
    actions = ["check_now", "push_to_edge", "remove_domains", "release_hostnames",
               "prevalidate_acm", "prevalidate_self_hosted"]
    change_form_template = "admin/domains/customdomain/change_form.html"
    change_list_template = "admin/domains/customdomain/change_list.html"
    # Every field is system-managed once the domain exists; changes go through actions.
    readonly_fields = [
        "hostname",
        "workspace",
        "status",
        "last_error",
        "created_by",
        "ownership_required",
        "ownership_token",
        "ownership_verified_at",
        "certificate_arn",
        "certificate_status_words",
        "certificate_requested_at",
        "validation_records_table",
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
    # Shown collapsed under "Technical details", below the summary, checks and audit trail.
    fieldsets = [
        ("Record", {"fields": ["hostname", "workspace", "status", "last_error", "created_by"]}),
        ("Checks", {"fields": ["check_count", "last_checked_at", "next_check_at",
                               "fast_checks_until"]}),
        ("Ownership", {"fields": ["ownership_required", "ownership_token",
                                  "ownership_verified_at"]}),
        ("Certificate", {"fields": ["certificate_arn", "certificate_status_words",
                                    "certificate_requested_at", "validation_records_table",
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

            class BoundAddForm(form_class):
                def __init__(self, *args: Any, **kw: Any) -> None:
                    super().__init__(*args, request_user=request.user, **kw)

            return BoundAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Nothing on a domain's page is editable, so the page is a view (no Save buttons,
        # a POST to it is refused); the list's actions still need the change permission.
        if obj is not None:
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Adding: the service saved the record in the form's clean(). Changing: not allowed.
        return None

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # On add, the service has saved everything.
        return None

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting the row would strand the CloudFront attachment, the edge mapping and the
        # certificate; the "Remove" action cleans them up.
        return False

    # --- search: any spelling of a hostname --------------------------------------------

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[CustomDomain], search_term: str
    ) -> tuple[QuerySet[CustomDomain], bool]:
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        forms_ = support.hostname_search_forms(search_term)
        if forms_:
            spelled = Q()
            for form in forms_:
                spelled |= Q(hostname__contains=form)
            found = found | queryset.filter(spelled)
        return found, may_have_duplicates

    # --- the domain's page: summary, checks, audit trail, technical details -------------

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False,
        change: bool = False, form_url: str = "", obj: Any = None,
    ) -> Any:
        if obj is not None:
            can_act = super().has_change_permission(request)
            context.update(
                summary=support.domain_summary(domain=obj),
                diagnosis=support.domain_diagnosis(domain=obj),
                audit=support.domain_audit_trail(domain=obj),
                audit_limit=support.AUDIT_TRAIL_LIMIT,
                events_url=reverse("admin:domains_domainevent_changelist")
                + f"?q={obj.hostname}",
                page_actions=[
                    (name, label, reverse("admin:domains_customdomain_act",
                                          args=[obj.pk, name]))
                    for name, (label, _, _) in PAGE_ACTIONS.items()
                ] if can_act and obj.status != DomainStatus.REMOVED else [],
                title=obj.hostname,
                subtitle=None,
                hostname_unicode=support.hostname_unicode(obj.hostname),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self) -> list[URLPattern]:
        act = path("<int:object_id>/act/<str:name>/", self.admin_site.admin_view(self.act_view),
                   name="domains_customdomain_act")
        return [act, *super().get_urls()]

    def act_view(self, request: HttpRequest, object_id: int, name: str) -> HttpResponse:
        """A page button: the same service call as the list action, then back to the page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if name not in PAGE_ACTIONS or not super().has_change_permission(request):
            raise PermissionDenied
        domain = self.get_object(request, str(object_id))
        if domain is None:
            raise Http404
        _, verb, call = PAGE_ACTIONS[name]
        self._run(request, CustomDomain.objects.filter(pk=domain.pk), verb=verb, call=call)
        return HttpResponseRedirect(reverse("admin:domains_customdomain_change",
                                            args=[domain.pk]))

    # --- list columns ------------------------------------------------------------------

    @admin.display(description="Hostname", ordering="hostname")
    def domain(self, obj: CustomDomain) -> SafeString:
        # A Unicode name is stored as punycode; show both, as the customer knows the first.
        shown = support.hostname_unicode(obj.hostname)
        if shown:
            return format_html('{}<br><span class="vd-quiet">{}</span>', shown, obj.hostname)
        return format_html("{}", obj.hostname)

    @admin.display(description="State", ordering="status")
    def state(self, obj: CustomDomain) -> SafeString:
        return format_html('<span class="vd-badge vd-tone-{}">{}</span>',
                           support.STATE_TONES[DomainStatus(obj.status)],
                           support.STATE_WORDS[DomainStatus(obj.status)])

    @admin.display(description="Problem", empty_value="")
    def problem(self, obj: CustomDomain) -> SafeString | str:
        text = support.domain_problem(obj)
        if not text:
            return ""
        return format_html('<span class="vd-problem" title="{}">{}</span>', text, text)

    @admin.display(description="Age", ordering="created_at")
    def age(self, obj: CustomDomain) -> SafeString:
        return format_html('<span title="{}">{}</span>',
                           timezone.localtime(obj.created_at).strftime("%Y-%m-%d %H:%M"),
                           timesince(obj.created_at, depth=1))

    @admin.display(description="Next check", ordering="next_check_at")
    def next_check(self, obj: CustomDomain) -> SafeString | str:
        if obj.next_check_at is None:
            return "\u2014"
        when = timezone.localtime(obj.next_check_at).strftime("%Y-%m-%d %H:%M")
        if obj.next_check_at <= timezone.now() + timedelta(minutes=1):
            return format_html('<span title="{}">due now</span>', when)
        return format_html('<span title="{}">in {}</span>', when,
                           timeuntil(obj.next_check_at, depth=1))

    # --- technical details -------------------------------------------------------------

    @admin.display(description="Certificate status")
    def certificate_status_words(self, obj: CustomDomain) -> str:
        words = support.certificate_status_words(obj.certificate_status)
        return f"{words} ({obj.certificate_status})" if obj.certificate_status else words

    @admin.display(description="Validation records (as ACM publishes them)")
    def validation_records_table(self, obj: CustomDomain) -> SafeString | str:
        rows = [r for r in obj.validation_records or [] if isinstance(r, dict)]
        if not rows:
            return "None."
        return format_html(
            '<table class="vd-records"><thead><tr><th>Type</th><th>Name</th><th>Value</th>'
            "</tr></thead><tbody>{}</tbody></table>",
            format_html_join(
                "", '<tr><td>{}</td><td><code class="vd-value">{}</code></td>'
                '<td><code class="vd-value">{}</code></td></tr>',
                ((r.get("type", ""), r.get("name", ""), r.get("value", "")) for r in rows),
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


    @admin.action(description="Remove and release the hostname (no TXT proof for the next "
                  "workspace)", permissions=["delete_domain"])
    def release_hostnames(self, request: HttpRequest, queryset: QuerySet[CustomDomain]) -> None:
        self._run(request, queryset, verb="Released", call=services.domain_release)

    def has_delete_domain_permission(self, request: HttpRequest) -> bool:
        # Row deletion stays off (has_delete_permission); releasing needs Django's delete perm.
        return request.user.has_perm("domains.delete_customdomain")


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
