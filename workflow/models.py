"""Records of the domain workflow: the daily certificate budget, capacity alerts."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from domains.models import Workspace


class CertificateBudgetDay(models.Model):
    """How many certificates were requested on one (UTC) day: per workspace, or platform-wide
    (`workspace` null). Counted in the database so every worker sees the same figure, and
    incremented only under the limit (workflow.certificate_budget)."""

    day = models.DateField()
    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="+")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "workspace_id"]
        constraints = [
            models.UniqueConstraint(fields=["day", "workspace"],
                                    condition=Q(workspace__isnull=False),
                                    name="uniq_cert_budget_workspace_day"),
            models.UniqueConstraint(fields=["day"], condition=Q(workspace__isnull=True),
                                    name="uniq_cert_budget_platform_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.workspace_id or 'platform'}: {self.count}"


class CapacityAlert(models.Model):
    """A CloudFront quota or capacity limit our account hit: a platform problem.

    One row per error code, open while the limit keeps being hit; the dashboard shows open
    ones, staff get one email when a row opens, and the affected domains stay pending and
    are retried. Resolved by the next successful attach.
    """

    code = models.CharField(max_length=100, unique=True)
    message = models.TextField(blank=True, default="")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    occurrences = models.PositiveIntegerField(default=0)
    last_hostname = models.CharField(max_length=253, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.code} ({'open' if self.resolved_at is None else 'resolved'})"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None
