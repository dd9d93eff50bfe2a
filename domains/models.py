"""Records: workspaces, their custom domains, and the audit trail.

Fields, constraints and cheap properties only; every state change goes through
`workflow.lifecycle` (by way of services, checks, cleanup and the other modules above it).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower

from domains.hostnames import HostnameError, normalize_hostname
from domains.integrations.acm import AcmStatus
from domains.integrations.cdn import ManagedCertificateStatus
from domains.integrations.dns import OWNERSHIP_TXT_PREFIX

# A workspace slug is used as a DNS label (`<slug>.ve.ai`), so it must be one.
slug_validator = RegexValidator(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
    "A workspace slug is 1-63 lowercase letters, digits or hyphens, "
    "not starting or ending with a hyphen.",
)




class Plan(models.TextChoices):
    """The plans vedomains has a default limit for (VEDOMAINS_PLAN_LIMITS).

    Not a closed set: the main app owns plans, and the sync may set any plan name with its
    `domain_limit`. These are the names the local default table knows.
    """

    FREE = "free", "Free"
    PRO = "pro", "Pro"
    BUSINESS = "business", "Business"
    ENTERPRISE = "enterprise", "Enterprise"


class Workspace(models.Model):
    slug = models.CharField(max_length=63, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    # Any plan name the main app uses (see Plan); a name outside the default table needs
    # `domain_limit_override`.
    plan = models.CharField(max_length=20, default=Plan.FREE)
    domain_limit_override = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Set by the main app's sync: this workspace's domain limit, whatever the "
        "plan's default (VEDOMAINS_PLAN_LIMITS). Empty: the default.")
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="workspaces"
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def domain_limit(self) -> int:
        if self.domain_limit_override is not None:
            return int(self.domain_limit_override)
        return default_plan_limit(self.plan)

    @property
    def plan_label(self) -> str:
        return Plan(self.plan).label if self.plan in Plan.values else self.plan


def default_plan_limit(plan: str) -> int:
    """The local default table's limit; 0 for a plan it does not name."""
    return int(settings.VEDOMAINS_PLAN_LIMITS.get(plan, 0))


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


# Roles that may add, verify and remove domains; members may only read.
WRITE_ROLES = frozenset({Role.OWNER, Role.ADMIN})


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="uniq_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"


class DomainStatus(models.TextChoices):
    PENDING_VALIDATION = "pending_validation", "Pending validation"
    # Certificate issued and DNS right; CloudFront is still deploying the tenant (or
    # distribution). Active (and the owner's email and webhook) only once it is Deployed.
    DEPLOYING = "deploying", "Deploying"
    ACTIVE = "active", "Active"
    MISCONFIGURED = "misconfigured", "Misconfigured"
    FAILED = "failed", "Failed"
    REMOVED = "removed", "Removed"


# Statuses in which the edge routes the hostname: a misconfigured domain keeps serving
# through its grace period, in case the DNS change was a mistake the customer reverts.
EDGE_ROUTED_STATUSES = frozenset({DomainStatus.ACTIVE, DomainStatus.MISCONFIGURED})


# `certificate_status` once the certificate is issued: ACM says ISSUED, a
# CloudFront-managed certificate says issued. One set, for every module that asks.
CERTIFICATE_ISSUED_STATUSES = frozenset({AcmStatus.ISSUED, ManagedCertificateStatus.ISSUED})


class Prevalidation(models.TextChoices):
    """Pre-validation: the certificate is issued BEFORE the customer moves the CNAME, for a
    live site. ACM: an ACM certificate validated by a DNS record, set as the tenant's
    certificate; SELF_HOSTED: CloudFront's HTTP token served by the customer's current
    server. NONE: the default path (CloudFront validates once the CNAME points)."""

    NONE = "", "None"
    ACM = "acm", "ACM (DNS record)"
    SELF_HOSTED = "self-hosted", "Self-hosted HTTP token"


# Statuses that hold the hostname and count against the plan; checks keep visiting them.
LIVE_STATUSES = (
    DomainStatus.PENDING_VALIDATION,
    DomainStatus.DEPLOYING,
    DomainStatus.ACTIVE,
    DomainStatus.MISCONFIGURED,
)


class RedirectCode(models.IntegerChoices):
    # 308 keeps the method and body (a POST stays a POST); 301 is what old clients know.
    MOVED_PERMANENTLY = 301, "301 Moved Permanently"
    PERMANENT_REDIRECT = 308, "308 Permanent Redirect"


class CustomDomain(models.Model):
    hostname = models.CharField(max_length=253)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="domains")
    status = models.CharField(
        max_length=20, choices=DomainStatus.choices, default=DomainStatus.PENDING_VALIDATION
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # Ownership proof: the TXT value expected at _vedomains-challenge.<hostname>.
    ownership_token = models.CharField(max_length=64)
    ownership_required = models.BooleanField(default=False)
    ownership_verified_at = models.DateTimeField(null=True, blank=True)

    certificate_arn = models.CharField(max_length=2048, blank=True, default="")
    certificate_status = models.CharField(max_length=40, blank=True, default="")
    certificate_requested_at = models.DateTimeField(null=True, blank=True)
    # [{"name", "type", "value"}] as ACM publishes them for DNS validation.
    validation_records = models.JSONField(default=list, blank=True)
    # Certificate renewal watch (written only by workflow.certificates): what ACM
    # said at the last daily look, and why renewal is in trouble (blank when it is not).
    certificate_not_after = models.DateTimeField(null=True, blank=True)
    certificate_renewal_status = models.CharField(max_length=40, blank=True, default="")
    certificate_checked_at = models.DateTimeField(null=True, blank=True)
    certificate_trouble = models.TextField(blank=True, default="")
    certificate_trouble_at = models.DateTimeField(null=True, blank=True)

    prevalidation = models.CharField(max_length=20, blank=True, default=Prevalidation.NONE,
                                     choices=Prevalidation.choices)
    cdn_resource_id = models.CharField(max_length=200, blank=True, default="")
    cdn_domain_name = models.CharField(max_length=253, blank=True, default="")

    # Last result of each check: {"dns": {"ok", "detail", "at", ...}, "ownership": ...}.
    checks = models.JSONField(default=dict, blank=True)
    check_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True)
    # The due time (`next_check_at`) the dispatcher last queued a check for, and when: a
    # due time is queued once (a backlog holds each domain once, not once per beat tick),
    # again only after VEDOMAINS_DISPATCH_LEASE_SECONDS (a lost message). Any reschedule makes a
    # new due time, so nothing has to clear these.
    dispatched_for = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # Checks run every few seconds until then (after registration or a user's "verify").
    fast_checks_until = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    misconfigured_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    # Set when the workspace released the hostname explicitly (services.domain_release):
    # only then may another workspace claim it without the ownership TXT proof.
    released_at = models.DateTimeField(null=True, blank=True)

    # A redirect domain: the edge answers every request for it with `redirect_code` and
    # `https://<redirect_to.hostname><path>?<query>` instead of serving the workspace, once
    # the target is routed (docs/redirects.md). Always a domain of the same workspace.
    redirect_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="redirects")
    redirect_code = models.PositiveSmallIntegerField(choices=RedirectCode.choices, null=True,
                                                     blank=True)

    # The edge item's version: monotonic per hostname across records, bumped by every
    # change the edge must see; the edge store refuses writes older than what it holds.
    edge_version = models.BigIntegerField(default=0)
    edge_synced_version = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["hostname"],
                condition=~Q(status="removed"),
                name="uniq_hostname_not_removed",
            ),
            models.CheckConstraint(
                condition=Q(status__in=DomainStatus.values), name="domain_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(hostname=Lower("hostname")), name="domain_hostname_lowercase"
            ),
            # A target and its code come together, and never the domain itself.
            models.CheckConstraint(
                condition=(Q(redirect_to__isnull=True, redirect_code__isnull=True)
                           # isnull=False too: a NULL code would make IN unknown, and a
                           # CHECK passes on unknown.
                           | Q(redirect_to__isnull=False, redirect_code__isnull=False,
                               redirect_code__in=RedirectCode.values))
                & ~Q(redirect_to=F("id")),
                name="domain_redirect_valid",
            ),
        ]
        indexes = [
            # The dispatcher's "what is due, most overdue first" reads this index in order
            # and stops at its limit; rows with no next check (failed, done) are not in it.
            models.Index(
                fields=["next_check_at"],
                condition=Q(next_check_at__isnull=False),
                name="domain_next_check_idx",
            ),
            models.Index(fields=["workspace", "status"], name="domain_ws_status_idx"),
            # The API lists a workspace's domains newest first: one page is read from this
            # index however many domains the workspace has.
            models.Index(fields=["workspace", "-created_at", "-id"], name="domain_ws_recent_idx"),
            models.Index(fields=["hostname"], name="domain_hostname_idx"),
            models.Index(fields=["created_at"], name="domain_created_idx"),
        ]

    def __str__(self) -> str:
        return self.hostname

    def clean(self) -> None:
        try:
            self.hostname = normalize_hostname(self.hostname)
        except HostnameError as exc:
            raise ValidationError({"hostname": exc.message}) from exc

    @property
    def is_edge_routed(self) -> bool:
        return self.status in EDGE_ROUTED_STATUSES

    @property
    def is_redirect(self) -> bool:
        return self.redirect_to_id is not None

    @property
    def edge_in_sync(self) -> bool:
        return self.edge_synced_version >= self.edge_version

    @property
    def ownership_record_name(self) -> str:
        return f"{OWNERSHIP_TXT_PREFIX}.{self.hostname}"

    @property
    def ownership_record_value(self) -> str:
        return f"vedomains-verification={self.ownership_token}"

    @property
    def cleanup_pending(self) -> bool:
        """A removed domain still holding AWS resources or an unsynced tombstone."""
        return self.status == DomainStatus.REMOVED and bool(
            self.cdn_resource_id or self.certificate_arn or not self.edge_in_sync
        )


class EventKind(models.TextChoices):
    REGISTERED = "registered", "Registered"
    STATUS_CHANGED = "status_changed", "Status changed"
    CHECK_REQUESTED = "check_requested", "Check requested"
    CERTIFICATE_REQUESTED = "certificate_requested", "Certificate requested"
    CERTIFICATE_DELETED = "certificate_deleted", "Certificate deleted"
    # ACM no longer has the certificate (deleted by hand, or the local emulator restarted).
    CERTIFICATE_MISSING = "certificate_missing", "Certificate missing"
    CDN_ATTACHED = "cdn_attached", "Attached to CDN"
    CDN_DETACHED = "cdn_detached", "Detached from CDN"
    EDGE_PUSH_REQUESTED = "edge_push_requested", "Edge push requested"
    OWNERSHIP_VERIFIED = "ownership_verified", "Ownership verified"
    RELEASED = "released", "Released to another workspace"
    RELINQUISHED = "relinquished", "Released by its workspace"
    ERROR = "error", "Error"
    # Plan enforcement and adoption of the seed's table.
    PLAN_OVER_LIMIT = "plan_over_limit", "Over the plan's limit"
    PLAN_DETACH_WARNING = "plan_detach_warning", "Detachment warning (plan)"
    PLAN_DETACHED = "plan_detached", "Detached (plan)"
    PLAN_WITHIN_LIMIT = "plan_within_limit", "Within the plan's limit again"
    ADOPTED = "adopted", "Adopted from the seed's table"
    # A redirect set, changed or cleared (docs/redirects.md); registration records its own.
    REDIRECT_CHANGED = "redirect_changed", "Redirect changed"


class DomainEvent(models.Model):
    """Append-only audit trail: who or what changed a domain, and why."""

    domain = models.ForeignKey(CustomDomain, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=40, choices=EventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "api", "admin", "system:check", "command:check_domains", ...
    source = models.CharField(max_length=60)
    from_status = models.CharField(max_length=20, blank=True, default="")
    to_status = models.CharField(max_length=20, blank=True, default="")
    message = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["domain", "created_at"], name="event_domain_idx")]

    def __str__(self) -> str:
        return f"{self.domain_id} {self.kind} {self.created_at:%Y-%m-%d %H:%M:%S}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise ValueError("DomainEvent rows are append-only")
        super().save(*args, **kwargs)


class PlanGrace(models.Model):
    """A workspace over its plan's domain limit: when it started, when extras are detached.

    One open row per workspace (`resolved_at` null); an upgrade or removals resolve it.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="plan_graces")
    plan = models.CharField(max_length=20)
    limit = models.IntegerField()
    live_at_start = models.IntegerField()
    started_at = models.DateTimeField()
    detach_after = models.DateTimeField()
    warned_at = models.DateTimeField(null=True, blank=True)
    detached_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"], condition=Q(resolved_at__isnull=True),
                name="uniq_open_plan_grace",
            ),
        ]
        indexes = [models.Index(fields=["resolved_at", "detach_after"], name="plan_grace_due_idx")]

    def __str__(self) -> str:
        return f"{self.workspace_id} over {self.plan} limit {self.limit}"
