"""Input validation and output shapes for the domains API.

Input serializers check types and shapes only; the hostname rules, entitlement and
conflicts live in `domains.services.domain_register`, so the API, the admin and the
commands apply the same rules.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from domains import selectors
from domains.hostnames import to_unicode
from domains.models import CustomDomain, DomainStatus, slug_validator

# Longer than any valid hostname (253) so normalization, not a length check, explains what is
# wrong with e.g. a URL; short enough that nobody makes the server process megabytes.
MAX_HOSTNAME_INPUT = 1024


def workspace_slug_field(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(
        max_length=63, validators=[slug_validator], help_text="The workspace slug (workspaceId).",
        **kwargs,
    )


# --- input --------------------------------------------------------------------------------


class DomainRegisterSerializer(serializers.Serializer):
    # min_length only documents what allow_blank=False already enforces: without it the
    # schema calls "" a valid hostname (drf-spectacular adds minLength to query parameters
    # only).
    hostname = serializers.CharField(
        min_length=1,
        max_length=MAX_HOSTNAME_INPUT,
        help_text="The custom hostname, e.g. `gallery.client.com`. Unicode names are "
        "accepted and stored in their punycode form.",
    )
    workspace = workspace_slug_field()
    prevalidation = serializers.ChoiceField(
        choices=["", "acm", "self-hosted"], required=False, default="",
        help_text="Only for a hostname that already serves a live site elsewhere: have the "
        "certificate issued BEFORE you move the CNAME, so the switch has no TLS gap. `acm`: "
        "one extra DNS record (certificate_validation in dns_records); `self-hosted`: a "
        "redirect on your current web server (http_validation). Empty (the default): only "
        "the routing CNAME.",
    )


class LegacyRegisterSerializer(serializers.Serializer):
    """The seed frontend's body: `{"subdomain", "domain", "workspaceId"}`."""

    subdomain = serializers.CharField(
        max_length=MAX_HOSTNAME_INPUT, required=False, allow_blank=True, default="",
        help_text="Left part of the hostname (`gallery`); empty to register `domain` itself.",
    )
    domain = serializers.CharField(
        min_length=1, max_length=MAX_HOSTNAME_INPUT, help_text="e.g. `client.com`"
    )
    # camelCase because that is the seed frontend's wire name.
    workspaceId = workspace_slug_field()


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
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
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

    class Meta:
        model = CustomDomain
        fields = [
            "hostname",
            "hostname_unicode",
            "workspace",
            "status",
            "dns_records",
            "checks",
            "last_error",
            "certificate_status",
            "prevalidation",
            "http_validation",
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


class LegacyVerifySerializer(_SeedAnswerSerializer):
    check_requested = serializers.BooleanField(
        read_only=True,
        help_text="Whether this call queued a check (it does not when one is already due "
        "soon, when the caller may only read, or when the rate limit is reached).",
    )

    class Meta(_SeedAnswerSerializer.Meta):
        fields = [*_SeedAnswerSerializer.Meta.fields, "check_requested"]
        read_only_fields = fields


# --- errors (documentation of the shape `domains.api.errors` produces) ---------------------


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
