"""Django admin for staff: workspaces, custom domains and their audit trail.

The admin is another thin interface over `workflow.services`: adding a domain registers it
through `domain_register`, and the actions call the same services as the API, recorded
with source "admin" and the acting staff user. System-managed fields are read-only, and
domain rows cannot be deleted (that would skip the CDN, edge and certificate clean-up).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil

from domains import selectors
from domains.admin_read_only import ReadOnlyAdmin
from domains.errors import DomainError
from domains.models import (
    EDGE_ROUTED_STATUSES,
    LIVE_STATUSES,
    CustomDomain,
    DomainEvent,
    DomainStatus,
    Membership,
    Prevalidation,
    RedirectCode,
    Workspace,
)

# admin_security replaces DRF's token admin (keys never shown); admin_veai registers the
# ve.ai integration's records.
from staff import admin_security, support  # noqa: F401
from staff.admin_notify import CERTIFICATE_WATCH_FIELDS, AttentionFilter, CertificateTroubleFilter
from veai import admin as admin_veai  # noqa: F401
from veai import plans, workspace_sync
from workflow import services
from workflow.models import CapacityAlert

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


class WorkspaceAdminForm(forms.ModelForm):
    def clean_slug(self) -> str:
        slug = str(self.cleaned_data["slug"])
        hold = workspace_sync.slug_held_for_another(slug=slug, workspace=None)
        if hold is not None:
            # Freed by a rename; edges may still route the old workspace's domains to it.
            raise forms.ValidationError(
                f"This slug was released by a rename and is held until "
                f"{hold.held_until:%Y-%m-%d %H:%M:%S} UTC.", code="slug_held")
        return slug

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # The sync's own rule (plans.plan_validate): a name staff mistype ("Pro", "gold")
        # would otherwise silently mean a limit of 0 and start a grace period. A plan the
        # default table does not know is fine with this workspace's own limit.
        if "plan" in cleaned and "domain_limit_override" in cleaned:
            try:
                plans.plan_validate(plan=cleaned["plan"],
                                    domain_limit=cleaned["domain_limit_override"])
            except DomainError as exc:
                self.add_error("plan", forms.ValidationError(exc.message, code=exc.code))
        return cleaned


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    form = WorkspaceAdminForm
    list_display = ["slug", "name", "plan", "domain_count", "created_at"]
    list_filter = ["plan"]
    search_fields = ["slug", "name"]
    readonly_fields = ["created_at"]
    inlines = [MembershipInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The slug is the workspaceId the edge, the DynamoDB items and the ve.ai app route
        # by: staff set it once, at creation. A rename comes from the main app through the
        # sync, which re-pushes the edge items and holds the old slug (clean_slug above
        # refuses it) while edges may still route it.
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
            & ~Q(certificate_status__in=support.ISSUED_STATUSES)
        )


class StateFilter(admin.SimpleListFilter):
    """The status filter in support's words; removed domains are hidden unless asked for.

    Keeps Django's `status__exact` parameter so links into the list (the dashboard's) work.
    A search shows removed domains too: staff looking up a name want its history.
    """

    title = "state"
    parameter_name = "status__exact"
    ALL = "all"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [*((s.value, support.state_words(s)) for s in DomainStatus),
                (self.ALL, "Every state, removed too")]

    def choices(self, changelist: Any) -> Any:
        for choice in super().choices(changelist):
            if choice["display"] == "All":
                choice["display"] = "All but removed"
            yield choice

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == self.ALL:
            return queryset
        if value in DomainStatus.values:
            return queryset.filter(status=value)
        if request.GET.get("q"):
            return queryset
        return queryset.exclude(status=DomainStatus.REMOVED)


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

    # Not model fields as such: handed to the service (docs/redirects.md).
    redirect_to = forms.CharField(
        required=False, max_length=253, label="Redirect to",
        help_text="Optional: make this domain a redirect to another domain of the same "
        "workspace (e.g. an old domain to the new one).")
    redirect_code = forms.TypedChoiceField(
        choices=RedirectCode.choices, coerce=int, initial=RedirectCode.PERMANENT_REDIRECT,
        required=False, label="Redirect code")
    include_www = forms.BooleanField(
        required=False, label="Include www",
        help_text="Register client.com and www.client.com together: the name above is the "
        "primary, the other redirects to it (only the www name where apex domains cannot be "
        "served).")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.request_user: Any = kwargs.pop("request_user", None)
        super().__init__(*args, **kwargs)
        self.registered: CustomDomain | None = None
        self.notes: list[str] = []

    def _post_clean(self) -> None:
        # ModelForm would run the model's full_clean (and the unique-constraint query) on
        # an instance that is never saved; the service does all of that itself.
        pass

    def clean(self) -> dict[str, Any]:
        super().clean()
        # ModelForm.clean returns cleaned_data; the stubs allow None (a form's own clean may).
        data = self.cleaned_data
        if self.errors or not data.get("workspace"):
            return data
        target = (data.get("redirect_to") or "").strip() or None
        try:
            if data.get("include_www"):
                pair = services.domain_register_pair(
                    workspace=data["workspace"], hostname=data.get("hostname", ""),
                    by=self.request_user, source="admin",
                    redirect_code=data.get("redirect_code") or None, redirect_to=target)
                self.registered, self.notes = pair.primary, pair.notes
            else:
                self.registered = services.domain_register(
                    workspace=data["workspace"],
                    hostname=data.get("hostname", ""),
                    by=self.request_user,
                    source="admin",
                    redirect_to=target,
                    redirect_code=data.get("redirect_code") or None,
                )
        except DomainError as exc:
            field = exc.field if exc.field in self.fields else None
            raise forms.ValidationError({field: exc.message} if field else exc.message) from exc
        return data

    def save(self, commit: bool = True) -> CustomDomain:
        assert self.registered is not None  # clean() succeeded
        return self.registered


class _AddRequest(HttpRequest):
    """For the type checker: the add page's request carries its form to response_add."""

    _vd_add_form: DomainAddForm


# Actions offered as buttons on a domain's page (the list's "Remove" stays in the list, where
# it asks for confirmation).
PAGE_ACTIONS = {
    "check_now": ("Check now", "Check queued", services.domain_request_check),
    "push_to_edge": ("Push to edge", "Edge push queued", services.domain_push_to_edge),
}


class RedirectForm(forms.Form):
    redirect_to = forms.CharField(
        required=False, max_length=253, label="Redirect to",
        help_text="Another live domain of the same workspace; empty: serve the workspace on "
        "this domain again.")
    redirect_code = forms.TypedChoiceField(choices=RedirectCode.choices, coerce=int,
                                           initial=RedirectCode.PERMANENT_REDIRECT)


@admin.register(CustomDomain)
class CustomDomainAdmin(admin.ModelAdmin):
    # What a support person scans; the rest is on the domain's page. Fits 1280 px with the
    # filter sidebar (tests/e2e/test_admin_support_browser.py measures it).
    list_display = ["domain", "workspace", "state", "problem", "age", "next_check"]
    list_display_links = ["domain"]
    list_filter = [
        StateFilter,
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
        "state_words",
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
        "redirect_target",
        "redirect_code",
        "redirected_here",
        *CERTIFICATE_WATCH_FIELDS,
    ]
    # Shown collapsed under "Technical details", below the summary, checks and audit trail.
    fieldsets = [
        ("Record", {"fields": ["hostname", "workspace", "state_words", "last_error",
                               "created_by"]}),
        ("Redirect", {"fields": ["redirect_target", "redirect_code", "redirected_here"]}),
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
    add_fieldsets = [(None, {"fields": ["hostname", "workspace"]}),
                     ("Redirect", {"fields": ["redirect_to", "redirect_code", "include_www"]})]

    # --- add goes through services.domain_register ---------------------------------------

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = DomainAddForm
            kwargs["fields"] = ["hostname", "workspace"]
            form_class = super().get_form(request, obj, change=change, **kwargs)
            add_request = cast(_AddRequest, request)

            # mypy cannot check a base class that is only known at run time (the class
            # modelform_factory built just above), hence the one ignore.
            class BoundAddForm(form_class):  # type: ignore[valid-type,misc]
                def __init__(self, *args: Any, **kw: Any) -> None:
                    super().__init__(*args, request_user=request.user, **kw)
                    # The page-level message for the pair's notes reads them from here.
                    add_request._vd_add_form = self

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
                    *((name, label, reverse("admin:domains_customdomain_act",
                                            args=[obj.pk, name]))
                      for name, (label, _, _) in PAGE_ACTIONS.items()
                      # The edge holds nothing for a domain that is not routed yet.
                      if name != "push_to_edge" or obj.status in EDGE_ROUTED_STATUSES),
                    ("redirect", "Set redirect\u2026",
                     reverse("admin:domains_customdomain_redirect", args=[obj.pk])),
                ] if can_act and obj.status != DomainStatus.REMOVED else [],
                title=obj.hostname,
                subtitle=None,
                hostname_unicode=support.hostname_unicode(obj.hostname),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self) -> list[URLPattern]:
        act = path("<int:object_id>/act/<str:name>/", self.admin_site.admin_view(self.act_view),
                   name="domains_customdomain_act")
        redirect = path("<int:object_id>/redirect/",
                        self.admin_site.admin_view(self.redirect_view),
                        name="domains_customdomain_redirect")
        return [act, redirect, *super().get_urls()]

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: Any = None
                     ) -> HttpResponse:
        form = getattr(request, "_vd_add_form", None)
        for note in getattr(form, "notes", []):
            self.message_user(request, note, messages.INFO)
        return super().response_add(request, obj, post_url_continue)

    def redirect_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Set, change or clear a domain's redirect (services.domain_set_redirect)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not super().has_change_permission(request):
            raise PermissionDenied
        domain = self.get_object(request, str(object_id))
        if domain is None:
            raise Http404
        page = reverse("admin:domains_customdomain_change", args=[domain.pk])
        if "apply" in request.POST:
            form = RedirectForm(request.POST)
            if form.is_valid():
                target = form.cleaned_data["redirect_to"].strip() or None
                try:
                    services.domain_set_redirect(
                        domain=domain, redirect_to=target,
                        redirect_code=form.cleaned_data["redirect_code"], by=request.user,
                        source="admin")
                except DomainError as exc:
                    form.add_error("redirect_to" if exc.field == "redirect_to" else None,
                                   exc.message)
                else:
                    self.message_user(request, f"Redirect of {domain.hostname}: "
                                      + (f"to {target}." if target else "none."),
                                      messages.SUCCESS)
                    return HttpResponseRedirect(page)
        else:
            form = RedirectForm(initial={
                "redirect_to": domain.redirect_to.hostname if domain.redirect_to else "",
                "redirect_code": domain.redirect_code or RedirectCode.PERMANENT_REDIRECT})
        return TemplateResponse(request, "admin/domains/customdomain/redirect.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta,
            "original": domain, "form": form, "page_url": page,
            "title": f"Redirect of {domain.hostname}"})

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
        status = DomainStatus(obj.status)
        return format_html('<span class="vd-badge vd-tone-{}">{}</span>',
                           support.state_tone(status), support.state_words(status))

    @admin.display(description="State")
    def state_words(self, obj: CustomDomain) -> str:
        return f"{support.state_words(DomainStatus(obj.status))} ({obj.status})"

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

    @admin.display(description="Redirects to")
    def redirect_target(self, obj: CustomDomain) -> str:
        if obj.redirect_to is None:
            return "Nothing: serves its workspace."
        live = obj.is_edge_routed and selectors.edge_redirect_target(obj) is not None
        state = "answered at the edge" if live else "not yet: the edge waits for both"
        return f"{obj.redirect_to.hostname} ({state})"

    @admin.display(description="Redirected here from")
    def redirected_here(self, obj: CustomDomain) -> str:
        names = [d.hostname for d in obj.redirects.filter(status__in=LIVE_STATUSES)]
        return ", ".join(sorted(names)) or "None."

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
                  call=lambda **kw: services.domain_prevalidate(mode=Prevalidation.ACM, **kw))

    @admin.action(description="Pre-validate: token on the customer's current server",
                  permissions=["change"])
    def prevalidate_self_hosted(self, request: HttpRequest,
                                queryset: QuerySet[CustomDomain]) -> None:
        self._run(request, queryset, verb="Pre-validation (self-hosted) requested",
                  call=lambda **kw: services.domain_prevalidate(mode=Prevalidation.SELF_HOSTED,
                                                                **kw))

    @admin.action(description="Remove (detach and clean up)", permissions=["change"])
    def remove_domains(self, request: HttpRequest, queryset: QuerySet[CustomDomain]
                       ) -> HttpResponse | None:
        return self._remove(request, queryset, action="remove_domains", verb="Removed",
                            release=False)

    @admin.action(description="Remove and release the hostname (no TXT proof for the next "
                  "workspace)", permissions=["delete_domain"])
    def release_hostnames(self, request: HttpRequest, queryset: QuerySet[CustomDomain]
                          ) -> HttpResponse | None:
        return self._remove(request, queryset, action="release_hostnames", verb="Released",
                            release=True)

    def _remove(self, request: HttpRequest, queryset: QuerySet[CustomDomain], *, action: str,
                verb: str, release: bool) -> HttpResponse | None:
        """Removal asks first when other domains redirect to a selected one: removing a
        target removes its redirects too, or nothing (services.domain_remove_target)."""
        confirmed = request.POST.get("remove_redirects") == "yes"
        targets = [(d, services.domain_live_redirects(d)) for d in queryset]
        affected = [(d, r) for d, r in targets if r]
        if affected and not confirmed:
            return TemplateResponse(request, "admin/domains/customdomain/remove_redirects.html", {
                **self.admin_site.each_context(request), "opts": self.model._meta,
                "title": "Remove the redirects too?", "affected": affected,
                "selected": [d.pk for d, _ in targets], "action": action, "verb": verb,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME})
        taken_along: set[int] = set()

        def remove_one(*, domain: CustomDomain, by: Any, source: str) -> None:
            if domain.pk in taken_along:
                return  # selected too, and already removed with its target
            taken_along.update(d.pk for d in services.domain_live_redirects(domain))
            services.domain_remove_target(domain=domain, by=by, source=source,
                                          remove_redirects=confirmed, release=release)

        self._run(request, queryset, verb=verb, call=remove_one)
        return None

    def has_delete_domain_permission(self, request: HttpRequest) -> bool:
        # Row deletion stays off (has_delete_permission); releasing needs Django's delete perm.
        return request.user.has_perm("domains.delete_customdomain")


@admin.register(CapacityAlert)
class CapacityAlertAdmin(admin.ModelAdmin):
    """CloudFront quotas our account hit; written by the engine, read-only here."""

    list_display = ("code", "is_open", "occurrences", "last_hostname", "first_seen_at",
                    "last_seen_at", "resolved_at")
    list_filter = [("resolved_at", admin.EmptyFieldListFilter)]
    readonly_fields = (*list_display, "message")

    @admin.display(boolean=True, description="Open")
    def is_open(self, obj: CapacityAlert) -> bool:
        return obj.is_open

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DomainEvent)
class DomainEventAdmin(ReadOnlyAdmin):
    """The audit trail, read-only: it is append-only by design."""

    list_display = ["created_at", "domain", "kind", "source", "actor", "from_status",
                    "to_status", "message"]
    list_filter = ["kind", "source"]
    search_fields = ["domain__hostname", "message"]
    list_select_related = ["domain", "actor"]
    ordering = ["-created_at", "-id"]
