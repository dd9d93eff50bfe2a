"""Celery task for plan enforcement (issue 20); imported at the end of `domains.tasks`."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from domains import plans


@shared_task(acks_late=True, name="domains.tasks.enforce_plan_limits")
def enforce_plan_limits() -> dict[str, Any]:
    """Beat: close, warn and detach over-limit workspaces whose step is due."""
    report = plans.plan_graces_enforce()
    return {"opened": report.opened, "resolved": report.resolved, "warned": report.warned,
            "detached": len(report.detached)}
