"""The Celery app: Redis broker, settings from Django, the beat schedule."""

from __future__ import annotations

import os

from celery import Celery

# Log context, task timings and outcomes, logging set-up, beat's queue-depth publisher:
# importing it connects Celery's signals, which is all it does.
import vedomains_site.observability.celery_hooks  # noqa: F401
from domains.task_names import TaskName

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vedomains_site.settings")

# Beat intervals no deployment needs to change, so not settings: the edge
# table's reconciliation catches what a lost push missed, hourly; expired certificates of
# removed domains are deleted daily (they cost nothing meanwhile); due webhook retries and
# emails (and any whose own task was lost) go out within half a minute.
RECONCILE_INTERVAL_SECONDS = 3600.0
NOTIFY_DISPATCH_INTERVAL_SECONDS = 30.0
CERTIFICATE_SWEEP_INTERVAL_SECONDS = 86400.0

app = Celery("vedomains")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _setup_periodic_tasks(sender: Celery, **_: object) -> None:
    from django.conf import settings

    # The dispatcher only selects what is due: each domain's own next_check_at carries the
    # adaptive schedule, so a short tick costs one indexed query.
    sender.add_periodic_task(
        settings.VEDOMAINS_DISPATCH_INTERVAL_SECONDS,
        sender.signature(TaskName.DOMAINS_DISPATCH.value),
        name="dispatch due domain checks",
    )
    if settings.VEDOMAINS_DNS_SWEEP_INTERVAL_SECONDS > 0:
        # DNS-ready first: a CNAME just set is seen within a tick or two, not at the
        # domain's backed-off next check (workflow/dns_sweep.py).
        sender.add_periodic_task(
            settings.VEDOMAINS_DNS_SWEEP_INTERVAL_SECONDS,
            sender.signature(TaskName.PENDING_DNS_SWEEP.value),
            name="look up the DNS of pending domains",
        )
    sender.add_periodic_task(
        60.0,
        sender.signature(TaskName.EDGE_SYNC_PENDING.value),
        name="push unconfirmed edge changes",
    )
    sender.add_periodic_task(
        RECONCILE_INTERVAL_SECONDS,
        sender.signature(TaskName.EDGE_RECONCILE.value),
        name="reconcile the edge table with Django",
    )
    # Webhook retries and emails that are due (and any whose task was lost).
    sender.add_periodic_task(
        NOTIFY_DISPATCH_INTERVAL_SECONDS,
        sender.signature(TaskName.NOTIFICATIONS_DISPATCH.value),
        name="send due webhooks and notification emails",
    )
    sender.add_periodic_task(
        CERTIFICATE_SWEEP_INTERVAL_SECONDS,
        sender.signature(TaskName.CERTIFICATES_SWEEP_EXPIRED.value),
        name="delete expired certificates of removed domains",
    )
    # Downgraded workspaces over their limit: warn the owners, then detach extras.
    sender.add_periodic_task(
        float(settings.VEDOMAINS_PLAN_ENFORCE_INTERVAL_SECONDS),
        sender.signature(TaskName.PLAN_GRACES_ENFORCE.value),
        name="enforce plan limits after the grace period",
    )
