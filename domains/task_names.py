"""The name of every Celery task of this app, at the bottom of the import graph.

Queue a task by one of these, never by a string typed at the call: `domains.tasks` sits at
the top of the layers (it calls everything), so the lifecycle, the outbox and the services
below it cannot import the task objects, and a misspelt or stale string would only fail when
the message reached a worker. `tasks.py` registers each task under its member here, and
`tests/test_task_names.py` checks that the two sets are the same.

The naming rule, for services and tasks alike: `<entity>_<action>[_<qualifier>]`, as STYLE.md
names services (`domain_check`, `edge_sync_pending`). A task has the name of the service it
runs, so `tasks.domain_check` calls `checks.domain_check`, and its Celery name is
`domains.tasks.<that name>`; the member is the name in capitals. The entity is plural for a
pass over many rows (`domains_dispatch`, `certificates_sweep_expired`), and two names never
differ by that plural alone: the batch form of `domain_check` is `domains_check_batch`.
"""

from __future__ import annotations

from enum import StrEnum


class TaskName(StrEnum):
    # Checks and the certificate, the edge, removal (routed to the `checks` queue unless
    # settings.CELERY_TASK_ROUTES says otherwise).
    DOMAIN_CHECK = "domains.tasks.domain_check"
    DOMAINS_CHECK_BATCH = "domains.tasks.domains_check_batch"
    DOMAINS_DISPATCH = "domains.tasks.domains_dispatch"
    PENDING_DNS_SWEEP = "domains.tasks.pending_dns_sweep"
    DOMAIN_REQUEST_CERTIFICATE = "domains.tasks.domain_request_certificate"
    DOMAIN_CLEANUP = "domains.tasks.domain_cleanup"
    EDGE_SYNC_HOSTNAME = "domains.tasks.edge_sync_hostname"
    EDGE_SYNC_PENDING = "domains.tasks.edge_sync_pending"
    EDGE_RECONCILE = "domains.tasks.edge_reconcile"
    # Webhooks, owner emails, the certificate sweep, plans, capacity.
    WEBHOOK_DELIVER = "domains.tasks.webhook_deliver"
    NOTIFICATION_SEND = "domains.tasks.notification_send"
    NOTIFICATIONS_DISPATCH = "domains.tasks.notifications_dispatch"
    CERTIFICATES_SWEEP_EXPIRED = "domains.tasks.certificates_sweep_expired"
    PLAN_GRACES_ENFORCE = "domains.tasks.plan_graces_enforce"
    CAPACITY_ALERT_EMAIL = "domains.tasks.capacity_alert_email"
