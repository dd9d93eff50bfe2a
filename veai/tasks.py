"""Celery tasks of the ve.ai integration: the plan limits beat."""

from __future__ import annotations

from celery import shared_task

from domains.task_names import TaskName
from veai import plans


@shared_task(acks_late=True, name=TaskName.PLAN_GRACES_ENFORCE)
def plan_graces_enforce() -> dict[str, int]:
    """Beat: open, close, warn and detach over-limit workspaces whose step is due."""
    report = plans.plan_graces_enforce()
    return {"opened": report.opened, "resolved": report.resolved, "warned": report.warned,
            "detached": len(report.detached)}
