"""Read-only admin pages for the ve.ai integration's records.

Written by the sync API, sign-in, the plan beat and the adoption command only, so staff see
them without being able to edit them into disagreement with the main app.
"""

from __future__ import annotations

from django.contrib import admin

from domains.admin_read_only import ReadOnlyAdmin
from domains.models import PlanGrace
from veai.models import ExternalIdentity, ExternalWorkspace, SeedAdoption


@admin.register(ExternalWorkspace)
class ExternalWorkspaceAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "workspace", "plan", "subscription_status", "version",
                    "deleted_at", "updated_at"]
    list_filter = ["subscription_status", "plan"]
    search_fields = ["external_id", "workspace__slug"]
    list_select_related = ["workspace"]


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(ReadOnlyAdmin):
    list_display = ["subject", "issuer", "user", "created_at", "last_seen_at"]
    search_fields = ["subject", "user__username", "user__email"]
    list_select_related = ["user"]


@admin.register(PlanGrace)
class PlanGraceAdmin(ReadOnlyAdmin):
    list_display = ["workspace", "plan", "limit", "live_at_start", "started_at",
                    "detach_after", "warned_at", "detached_at", "resolved_at"]
    list_filter = ["plan"]
    search_fields = ["workspace__slug"]
    list_select_related = ["workspace"]


@admin.register(SeedAdoption)
class SeedAdoptionAdmin(ReadOnlyAdmin):
    list_display = ["hostname", "workspace_slug", "seed_status", "state", "reason",
                    "updated_at"]
    list_filter = ["state", "reason", "seed_status"]
    search_fields = ["hostname", "workspace_slug"]
