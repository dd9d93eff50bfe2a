"""Input validation and output shapes for the domains API.

Input serializers check types and shapes only; the hostname rules, entitlement and
conflicts live in `workflow.services.domain_register`, so the API, the admin and the
commands apply the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from domains import selectors
from domains.dns_doctor import DiagnosisCode, DiagnosisDict, stored_diagnosis
from domains.hostnames import to_unicode
from domains.models import (
    LIVE_STATUSES,
    CustomDomain,
    DomainStatus,
    Prevalidation,
    Workspace,
    slug_validator,
)

# Longer than any valid hostname (253) so normalization, not a length check, explains what is
# wrong with e.g. a URL; short enough that nobody makes the server process megabytes.
MAX_HOSTNAME_INPUT = 1024


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers: DRF's turns `42` into "42", which then failed with
    a misleading reason ("needs at least two labels")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(
                f"'{self.field_name}' must be a string (in double quotes), not "
                f"{type(data).__name__ if data is not None else 'null'}.",
                code="not_a_string")
        return super().to_internal_value(data)


class RefusesUnknownFields(serializers.Serializer):
    """A body field the serializer does not declare is a 400 naming it (it was ignored, so a
    typo went unnoticed and a 2 MB `pad` field was accepted).

    The accepted names are the declared fields: declaring a field is all it takes to
    accept it. Errors in declared fields come first, so a missing `hostname` is still the
    error's `field`; the unknown names follow in `details.errors`.
    """

    # Sent by the browsable API's HTML forms, never data.
    IGNORED_FIELDS = frozenset({"csrfmiddlewaretoken"})

    def to_internal_value(self, data: Any) -> Any:
        unknown: list[str] = []
        if isinstance(data, Mapping):
            unknown = sorted(str(k) for k in data if k not in self.fields
                             and k not in self.IGNORED_FIELDS)
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not unknown or not isinstance(exc.detail, dict):
                raise
            errors: dict[Any, Any] = dict(exc.detail)
        else:
            if not unknown:
                return value
            errors = {}
        accepted = ", ".join(name for name, field in self.fields.items() if not field.read_only)
        for name in unknown[:10]:
            shown = name if len(name) <= 40 else f"{name[:40]}\u2026"
            errors[shown] = [ErrorDetail(
                f"Unknown field '{shown}'; this request accepts only: {accepted}.",
                code="unknown_field")]
        raise serializers.ValidationError(errors)


def workspace_slug_field(**kwargs: Any) -> serializers.CharField:
    return StrictCharField(
        max_length=63, validators=[slug_validator], help_text="The workspace slug (workspaceId).",
        **kwargs,
    )


# --- input --------------------------------------------------------------------------------


class DomainRegisterSerializer(RefusesUnknownFields):
    # min_length only documents what allow_blank=False already enforces: without it the
    # schema calls "" a valid hostname (drf-spectacular adds minLength to query parameters
    # only).
    hostname = StrictCharField(
        min_length=1,
        max_length=MAX_HOSTNAME_INPUT,
        help_text="The custom hostname, e.g. `gallery.client.com`. Unicode names are "
        "accepted and stored in their punycode form.",
    )
    workspace = workspace_slug_field()
    prevalidation = serializers.ChoiceField(
        choices=Prevalidation.values, required=False, default=Prevalidation.NONE.value,
        help_text="Only for a hostname that already serves a live site elsewhere: have the "
        "certificate issued BEFORE you move the CNAME, so the switch has no TLS gap. `acm`: "
        "one extra DNS record (certificate_validation in dns_records); `self-hosted`: a "
        "redirect on your current web server (http_validation). Empty (the default): only "
        "the routing CNAME.",
    )
    redirect_to = serializers.CharField(
        required=False, allow_null=True, max_length=MAX_HOSTNAME_INPUT,
        help_text="Make this domain a redirect to another custom domain of the same "
        "workspace (e.g. an old domain to the new one). The edge answers every request with "
        "`redirect_code` and the same path and query on the target, once the target is live.",
    )
    redirect_code = serializers.ChoiceField(
        choices=[301, 308], required=False, default=308,
        help_text="308 (default) keeps the method and body; 301 for old clients.",
    )
    include_www = serializers.BooleanField(
        required=False, default=False,
        help_text="Register the apex and its www name together (`client.com` with "
        "`www.client.com`, or the other way round): the hostname given is the primary, the "
        "other redirects to it, and the answer's `pair` holds its record and DNS records. "
        "Where apex domains cannot be served, only the www name is registered and `notes` "
        "says to forward the apex at the registrar.",
    )


class DomainUpdateSerializer(RefusesUnknownFields):
    redirect_to = serializers.CharField(
        allow_null=True, max_length=MAX_HOSTNAME_INPUT,
        help_text="Another custom domain of the same workspace to redirect to, or null to "
        "serve the workspace on this domain again.",
    )
    redirect_code = serializers.ChoiceField(choices=[301, 308], required=False, default=308)


class LegacyRegisterSerializer(RefusesUnknownFields):
    """The seed frontend's body: `{"subdomain", "domain", "workspaceId"}`."""

    subdomain = StrictCharField(
        max_length=MAX_HOSTNAME_INPUT, required=False, allow_blank=True, default="",
        help_text="Left part of the hostname (`gallery`); empty to register `domain` itself.",
    )
    domain = StrictCharField(
        min_length=1, max_length=MAX_HOSTNAME_INPUT, help_text="e.g. `client.com`"
    )
    # camelCase because that is the seed frontend's wire name.
    workspaceId = workspace_slug_field()
    # Optional and additive: as `redirect_to`, `redirect_code`, `include_www` on our path.
    redirectTo = serializers.CharField(
        required=False, allow_null=True, max_length=MAX_HOSTNAME_INPUT,
        help_text="As `redirect_to` on `POST /api/domains/`.")
    redirectCode = serializers.ChoiceField(choices=[301, 308], required=False,
                                           default=308)
    includeWww = serializers.BooleanField(required=False, default=False,
                                          help_text="As `include_www` on `POST /api/domains/`.")


class DomainListQuerySerializer(serializers.Serializer):
    workspace = workspace_slug_field(required=False)
    status = serializers.ChoiceField(
        choices=DomainStatus.choices,
        required=False,
        help_text="Only domains in this status. Removed domains are listed only when asked "
        "for with `status=removed`.",
    )


# --- output -------------------------------------------------------------------------------


class DnsRecordSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(
        choices=["routing", "certificate_validation", "ownership"],
        help_text="routing: points the hostname at ve.ai; certificate_validation: lets the "
        "certificate authority issue TLS; ownership: proves you control the name.",
    )
    type = serializers.CharField(help_text="CNAME or TXT")
    name = serializers.CharField()
    value = serializers.CharField()


class HttpValidationSerializer(serializers.Serializer):
    domain = serializers.CharField()
    redirect_from = serializers.CharField(
        help_text="The URL on your CURRENT web server that must redirect ...")
    redirect_to = serializers.CharField(help_text="... to this URL (HTTP 301 or 302).")


class CheckResultSerializer(serializers.Serializer):
    """The last result of one check (documentation only; a check may add keys)."""

    ok = serializers.BooleanField(help_text="Whether the check passed.")
    detail = serializers.CharField(allow_blank=True, help_text="What was found.")
    at = serializers.DateTimeField(help_text="When the check ran.")


class DiagnosisSerializer(serializers.Serializer):
    """One thing wrong with the domain's DNS (the DNS doctor; docs/dns-doctor.md)."""

    code = serializers.ChoiceField(
        choices=[(c.value, c.name) for c in DiagnosisCode],
        help_text="Stable code of the mistake (docs/dns-doctor.md).")
    message = serializers.CharField(help_text="What is wrong, in the customer's words.")
    fix = serializers.CharField(help_text="What to do, and where (the DNS provider's screen).")
    docs_url = serializers.CharField(
        allow_blank=True, help_text="The provider's (or a generic) help page; may be empty.")


class RemovalSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class AtRiskDomainSerializer(serializers.Serializer):
    hostname = serializers.CharField()
    detach_after = serializers.DateTimeField()


class WorkspacePlanSerializer(serializers.Serializer):
    """A workspace's plan state (GET /api/workspaces/<slug>/)."""

    workspace = serializers.CharField(help_text="The workspace's slug (its workspaceId).")
    plan = serializers.CharField()
    domain_limit = serializers.IntegerField(help_text="Live domains the plan allows.")
    domains_used = serializers.IntegerField(
        help_text="Live domains (pending, active or misconfigured).")
    can_register = serializers.BooleanField()
    over_limit = serializers.BooleanField()
    grace_until = serializers.DateTimeField(
        allow_null=True, help_text="After a downgrade below the live count: when the domains "
        "in `at_risk` will be detached unless the workspace is back within its plan.")
    warned_at = serializers.DateTimeField(allow_null=True)
    at_risk = AtRiskDomainSerializer(many=True)


class DomainSerializer(serializers.ModelSerializer):
    workspace: serializers.SlugRelatedField[Workspace] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True)
    diagnosis = serializers.SerializerMethodField(
        help_text="What the last check found wrong with the DNS, most important first; "
        "empty when nothing is.",
    )
    dns_records = serializers.SerializerMethodField()
    checks = serializers.SerializerMethodField(
        help_text="Last result of each check, keyed by check name (dns, ownership, "
        "certificate, cdn, ...).",
    )
    edge_synced = serializers.BooleanField(
        source="edge_in_sync", read_only=True,
        help_text="Whether the edge holds this record's latest state.",
    )
    hostname_unicode = serializers.SerializerMethodField(
        help_text="The hostname as browsers show it (`bücher.client.com`); `hostname` is its "
        "ASCII (punycode) form, the one DNS and certificates use. Equal for ASCII names.",
    )
    removal = serializers.SerializerMethodField(
        help_text="Removed domains only: why (`code`: plan_limit, workspace_deleted, "
        "dns_not_pointing, removed_by_member, removed_by_staff, removed) and the audit "
        "message. Null otherwise.",
    )
    http_validation = serializers.SerializerMethodField(
        help_text="Self-hosted pre-validation only: redirects your current web server must "
        "answer until the certificate is issued. Empty otherwise.",
    )
    redirect_to = serializers.SerializerMethodField(
        help_text="The domain this one redirects to (null: it serves the workspace).")
    redirect_active = serializers.SerializerMethodField(
        help_text="Whether the edge answers with the redirect now: both this domain and its "
        "target are live. Until then this domain serves the workspace directly.")
    redirects = serializers.SerializerMethodField(
        help_text="The domains of this workspace that redirect to this one.")

    class Meta:
        model = CustomDomain
        fields = [
            "hostname",
            "hostname_unicode",
            "workspace",
            "status",
            "dns_records",
            "checks",
            "diagnosis",
            "last_error",
            "certificate_status",
            "prevalidation",
            "http_validation",
            "redirect_to",
            "redirect_code",
            "redirect_active",
            "redirects",
            "ownership_required",
            "edge_synced",
            "created_at",
            "updated_at",
            "last_checked_at",
            "next_check_at",
            "verified_at",
            "activated_at",
            "removed_at",
            "removal",
        ]
        read_only_fields = fields

    @extend_schema_field(RemovalSerializer(allow_null=True))
    def get_removal(self, obj: CustomDomain) -> dict[str, str] | None:
        return selectors.domain_removal(obj)

    def get_hostname_unicode(self, obj: CustomDomain) -> str:
        return to_unicode(obj.hostname)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_redirect_to(self, obj: CustomDomain) -> str | None:
        return obj.redirect_to.hostname if obj.redirect_to_id and obj.redirect_to else None

    def get_redirect_active(self, obj: CustomDomain) -> bool:
        return obj.is_edge_routed and selectors.edge_redirect_target(obj) is not None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_redirects(self, obj: CustomDomain) -> list[str]:
        found = getattr(obj, "live_redirects", None)
        if found is None:
            found = obj.redirects.filter(status__in=LIVE_STATUSES)
        return sorted(d.hostname for d in found)

    @extend_schema_field(DnsRecordSerializer(many=True))
    def get_dns_records(self, obj: CustomDomain) -> list[dict[str, str]]:
        return selectors.domain_dns_records(obj)

    @extend_schema_field(HttpValidationSerializer(many=True))
    def get_http_validation(self, obj: CustomDomain) -> list[dict[str, str]]:
        return selectors.domain_http_validation(obj)

    # Passed through as stored: a check may carry more keys (reason, chain, code) than the
    # three every check has, and a client showing them should not wait for an API change.
    @extend_schema_field(serializers.DictField(child=CheckResultSerializer()))
    def get_checks(self, obj: CustomDomain) -> dict[str, Any]:
        return obj.checks if isinstance(obj.checks, dict) else {}

    @extend_schema_field(DiagnosisSerializer(many=True))
    def get_diagnosis(self, obj: CustomDomain) -> list[DiagnosisDict]:
        return stored_diagnosis(obj.checks)


class _SeedAnswerSerializer(DomainSerializer):
    """The record as on our paths, with `status` and `message` in the seed's words.

    The seed frontend reads `status` and shows `message`; the record's own status, which our
    paths call `status`, is `state` here.
    """

    status = serializers.SerializerMethodField(
        help_text="The seed's answer: `verified`, `invalid_cname`, `pending_validation` or "
        "`error`."
    )
    message = serializers.SerializerMethodField(help_text="What to tell the customer.")
    state = serializers.ChoiceField(
        source="status", choices=DomainStatus.choices, read_only=True,
        help_text="The record's status, as `status` on the other paths.",
    )

    class Meta(DomainSerializer.Meta):
        fields = [
            "status", "message", "state",
            *(name for name in DomainSerializer.Meta.fields if name != "status"),
        ]
        read_only_fields = fields

    @extend_schema_field(
        serializers.ChoiceField(
            choices=[
                selectors.SEED_VERIFIED, selectors.SEED_INVALID_CNAME, selectors.SEED_PENDING,
                selectors.SEED_ERROR,
            ]
        )
    )
    def get_status(self, obj: CustomDomain) -> str:
        return selectors.domain_seed_status(obj)[0]

    def get_message(self, obj: CustomDomain) -> str:
        return selectors.domain_seed_status(obj)[1]


class LegacyRegisterAnswerSerializer(_SeedAnswerSerializer):
    pass


class DomainRegisterAnswerSerializer(DomainSerializer):
    """The answer to a registration: the record, and with `include_www` its pair."""

    pair = serializers.SerializerMethodField(
        help_text="The other record of the pair (it redirects to this one), with its own "
        "DNS records; null when only this one was registered (see notes).")
    notes = serializers.SerializerMethodField(help_text="What to tell the customer.")

    class Meta(DomainSerializer.Meta):
        fields = [*DomainSerializer.Meta.fields, "pair", "notes"]
        read_only_fields = fields

    @extend_schema_field(DomainSerializer(allow_null=True))
    def get_pair(self, obj: CustomDomain) -> dict[str, Any] | None:
        other = self.context.get("pair")
        return DomainSerializer(other).data if other is not None else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_notes(self, obj: CustomDomain) -> list[str]:
        return list(self.context.get("notes", []))


class LegacyVerifySerializer(_SeedAnswerSerializer):
    check_requested = serializers.BooleanField(
        read_only=True,
        help_text="Whether this call queued a check (it does not when one is already due "
        "soon, when the caller may only read, or when the rate limit is reached).",
    )

    class Meta(_SeedAnswerSerializer.Meta):
        fields = [*_SeedAnswerSerializer.Meta.fields, "check_requested"]
        read_only_fields = fields


# --- errors (documentation of the shape `api.errors` produces) ---------------------


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable, e.g. `not_member`.")
    message = serializers.CharField(help_text="What went wrong and what to do about it.")
    field = serializers.CharField(
        required=False, help_text="The input field the error concerns (`body` for the body)."
    )
    details = serializers.DictField(
        required=False, help_text="Extra data, e.g. the DNS record that proves ownership."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
