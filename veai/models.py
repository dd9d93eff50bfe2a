"""Records of the ve.ai integration: identities, mirrored workspaces and members,
the seed's adoption, held slugs.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from domains.models import CustomDomain, Workspace


class ExternalIdentity(models.Model):
    """A main-app account (token issuer + subject) and the local user it signs in as.

    The subject, never the username, is the identity: usernames are generated and may be
    changed by staff without breaking sign-in.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identity"
    )
    issuer = models.CharField(max_length=300)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "external identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="uniq_external_identity"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} ({self.issuer})"


class ExternalWorkspace(models.Model):
    """The main app's workspace id, the last version applied from it, and its tombstone.

    `version` only grows (compare-and-swap), so a late, older update is refused; a deleted
    workspace keeps its row (and version) so an update sent before the delete cannot
    resurrect it. `workspace` is null only for a delete that arrived before any upsert.
    """

    external_id = models.CharField(max_length=200, unique=True)
    workspace = models.OneToOneField(
        Workspace, null=True, blank=True, on_delete=models.PROTECT, related_name="external"
    )
    version = models.BigIntegerField(default=0)
    # The plan the main app sent and its subscription state ("active" or "cancelled");
    # Workspace.plan holds the effective one (free while cancelled).
    plan = models.CharField(max_length=20, blank=True, default="")
    # Which field orders this resource's versions ("version" or "updated_at"); fixed by the
    # first applied request, so the two number spaces are never compared.
    version_field = models.CharField(max_length=10, blank=True, default="")
    subscription_status = models.CharField(max_length=20, blank=True, default="active")
    deleted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.external_id} v{self.version}"


class ExternalMembership(models.Model):
    """Last applied version of one member's role (or removal) in a main-app workspace."""

    external_workspace = models.ForeignKey(
        ExternalWorkspace, on_delete=models.CASCADE, related_name="member_versions"
    )
    subject = models.CharField(max_length=255)
    role = models.CharField(max_length=20, blank=True, default="")
    version = models.BigIntegerField(default=0)
    version_field = models.CharField(max_length=10, blank=True, default="")
    removed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["external_workspace", "subject"], name="uniq_external_member"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} in {self.external_workspace_id} v{self.version}"


class SeedAdoption(models.Model):
    """One item of the seed's `domain-workspace-mappings` table on its way into Django.

    The adoption command is resumable: each run continues from these rows (a certificate
    it requested, a conflict it reported) instead of starting over.
    """

    class State(models.TextChoices):
        WAITING_CERTIFICATE = "waiting_certificate", "Waiting for the certificate"
        ADOPTED = "adopted", "Adopted"
        SKIPPED = "skipped", "Skipped (see detail)"

    hostname = models.CharField(max_length=253, unique=True)
    workspace_slug = models.CharField(max_length=200)
    seed_status = models.CharField(max_length=40)
    seed_item = models.JSONField(default=dict)
    state = models.CharField(max_length=30, choices=State.choices)
    reason = models.CharField(max_length=60, blank=True, default="")
    detail = models.TextField(blank=True, default="")
    certificate_arn = models.CharField(max_length=2048, blank=True, default="")
    domain = models.ForeignKey(
        CustomDomain, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.hostname}: {self.state}"


class SlugHold(models.Model):
    """A workspace slug freed by a rename, held for its old workspace for a while.

    The edge keeps routing that workspace's domains to the old slug (its workspaceId) until
    its cache entries expire, and longer while DynamoDB is unreachable (the stale window):
    another workspace given the slug meanwhile would receive that traffic.
    """

    slug = models.CharField(max_length=63, unique=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    held_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.slug} (held until {self.held_until:%Y-%m-%d %H:%M:%S})"
