"""Read-only admin pages for the ve.ai integration's records.

Written by the sync API, sign-in, the plan beat and the adoption command only, so staff see
them without being able to edit them into disagreement with the main app.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from domains.models import PlanGrace
from veai.models import ExternalIdentity, ExternalWorkspace, SeedAdoption


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ExternalWorkspace)
class ExternalWorkspaceAdmin(_ReadOnly):
    list_display = ["external_id", "workspace", "plan", "subscription_status", "version",
                    "deleted_at", "updated_at"]
    list_filter = ["subscription_status", "plan"]
    search_fields = ["external_id", "workspace__slug"]
    list_select_related = ["workspace"]


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(_ReadOnly):
    list_display = ["subject", "issuer", "user", "created_at", "last_seen_at"]
    search_fields = ["subject", "user__username", "user__email"]
    list_select_related = ["user"]


@admin.register(PlanGrace)
class PlanGraceAdmin(_ReadOnly):
    list_display = ["workspace", "plan", "limit", "live_at_start", "started_at",
                    "detach_after", "warned_at", "detached_at", "resolved_at"]
    list_filter = ["plan"]
    search_fields = ["workspace__slug"]
    list_select_related = ["workspace"]


@admin.register(SeedAdoption)
class SeedAdoptionAdmin(_ReadOnly):
    list_display = ["hostname", "workspace_slug", "seed_status", "state", "reason",
                    "updated_at"]
    list_filter = ["state", "reason", "seed_status"]
    search_fields = ["hostname", "workspace_slug"]
