"""The name of every Celery task of the apps, at the bottom of the import graph.

Queue a task by one of these, never by a string typed at the call: each app's `tasks`
module sits at the top of its app (it calls everything there), so the lifecycle, the
outbox and the services below it cannot import the task objects, and a misspelt or stale
string would only fail when the message reached a worker. Each app's `tasks.py` registers
its tasks under their members here, and `tests/test_task_names.py` checks that the two
sets are the same.

The naming rule, for services and tasks alike: `<entity>_<action>[_<qualifier>]`, as STYLE.md
names services (`domain_check`, `edge_sync_pending`). A task has the name of the service it
runs, so `tasks.domain_check` calls `checks.domain_check`, and its Celery name is
`<app>.tasks.<that name>` (the app whose `tasks.py` holds it); the member is the
name in capitals. The entity is plural for a pass over many rows (`domains_dispatch`,
`certificates_sweep_expired`), and two names never differ by that plural alone: the batch form of
`domain_check` is `domains_check_batch`.
"""

from __future__ import annotations

from enum import StrEnum


class TaskName(StrEnum):
    # Checks and the certificate, the edge, removal (routed to the `checks` queue unless
    # settings.CELERY_TASK_ROUTES says otherwise).
    DOMAIN_CHECK = "workflow.tasks.domain_check"
    DOMAINS_CHECK_BATCH = "workflow.tasks.domains_check_batch"
    DOMAINS_DISPATCH = "workflow.tasks.domains_dispatch"
    PENDING_DNS_SWEEP = "workflow.tasks.pending_dns_sweep"
    DOMAIN_REQUEST_CERTIFICATE = "workflow.tasks.domain_request_certificate"
    DOMAIN_CLEANUP = "workflow.tasks.domain_cleanup"
    EDGE_SYNC_HOSTNAME = "edge.tasks.edge_sync_hostname"
    EDGE_SYNC_PENDING = "edge.tasks.edge_sync_pending"
    EDGE_RECONCILE = "edge.tasks.edge_reconcile"
    # Webhooks, owner emails, the certificate sweep, plans, capacity.
    WEBHOOK_DELIVER = "notifications.tasks.webhook_deliver"
    NOTIFICATION_SEND = "notifications.tasks.notification_send"
    NOTIFICATIONS_DISPATCH = "notifications.tasks.notifications_dispatch"
    CERTIFICATES_SWEEP_EXPIRED = "workflow.tasks.certificates_sweep_expired"
    PLAN_GRACES_ENFORCE = "veai.tasks.plan_graces_enforce"
    CAPACITY_ALERT_EMAIL = "workflow.tasks.capacity_alert_email"
