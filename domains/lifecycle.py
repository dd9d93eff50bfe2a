"""The lowest layer of every state change: the audit row, the status swap, the follow-up.

Services, checks, cleanup, certificates and notifications build on these three and nothing
here imports them back (the import-linter contract in pyproject.toml says so):
- `event_record` appends a DomainEvent;
- `domain_transition` compare-and-swaps the status (`filter(pk=…, status=old).update(…)`),
  so two workers can never both apply it, and writes its event and outbox rows with it;
- `enqueue_after_commit` queues a Celery task by its `TaskName` once the transaction
  commits. By name, because the tasks module sits at the top (it calls everything else):
  looking the task up in Celery's registry keeps this layer free of an import of it, and the
  enum (domains/task_names.py) keeps the name from being a string typed at the call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from celery import current_app
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from domains import outbox
from domains.models import EDGE_ROUTED_STATUSES, CustomDomain, DomainEvent, EventKind
from domains.task_names import TaskName

log = logging.getLogger(__name__)

def task_send(task_name: TaskName, *args: object) -> None:
    """Queue a task now; a broker outage must not fail the request that caused it.

    Nothing is lost when the send fails: the state it was about is already committed, and
    the dispatcher (for checks and cleanups) and the reconcile pass (for the edge) pick it up.
    """
    # Outside the try: an unknown name is a bug to raise, not a broker outage to log.
    task = current_app.tasks[task_name]
    try:
        task.apply_async(args=args, retry=True, retry_policy={"max_retries": 2})
    except Exception:
        log.warning("could not queue %s%r; the periodic pass will catch up", task_name, args,
                    exc_info=True)


def enqueue_after_commit(task_name: TaskName, *args: object) -> None:
    """Send a task once the surrounding transaction has committed (never for a rollback)."""
    transaction.on_commit(lambda: task_send(task_name, *args))


def enqueue_all_after_commit(queued: Iterable[tuple[TaskName, int]]) -> None:
    for task_name, pk in queued:
        enqueue_after_commit(task_name, pk)


def actor_or_none(by: AbstractBaseUser | AnonymousUser | None) -> AbstractBaseUser | None:
    """The user to record as actor: anonymous callers and the system record none."""
    if by is None or isinstance(by, AnonymousUser) or not by.is_authenticated:
        return None
    return by


def event_record(
    *,
    domain: CustomDomain,
    kind: str,
    source: str,
    by: AbstractBaseUser | None = None,
    message: str = "",
    from_status: str = "",
    to_status: str = "",
    data: dict[str, Any] | None = None,
) -> DomainEvent:
    return DomainEvent.objects.create(
        domain=domain,
        kind=kind,
        source=source,
        actor=actor_or_none(by),
        message=message,
        from_status=from_status,
        to_status=to_status,
        data=data or {},
    )


def domain_transition(
    *,
    domain: CustomDomain,
    to: str,
    allowed_from: Iterable[str],
    source: str,
    by: AbstractBaseUser | None = None,
    message: str = "",
    data: dict[str, Any] | None = None,
    updates: dict[str, Any] | None = None,
) -> bool:
    """Compare-and-swap the status; True when this call applied it, False when another did.

    Must run inside a transaction (callers use `transaction.atomic`), so the event row, the
    outbox rows and the follow-up tasks commit with the status change or not at all.
    """
    old = domain.status
    if old not in set(allowed_from):
        return False
    now = timezone.now()
    fields: dict[str, Any] = {"status": to, "updated_at": now, **(updates or {})}
    # The edge must hear about every change into or out of a routed status, and about any
    # change whose caller bumps the version itself (a removal tombstones even a pending name).
    edge_change = (old in EDGE_ROUTED_STATUSES) != (to in EDGE_ROUTED_STATUSES) or (
        "edge_version" in fields
    )
    if edge_change:
        fields.setdefault("edge_version", F("edge_version") + 1)
    applied = CustomDomain.objects.filter(pk=domain.pk, status=old).update(**fields) == 1
    if not applied:
        return False
    domain.refresh_from_db()
    event = event_record(
        domain=domain,
        kind=EventKind.STATUS_CHANGED,
        source=source,
        by=by,
        message=message,
        from_status=old,
        to_status=to,
        data=data,
    )
    # Webhooks and owner emails: outbox rows in this transaction, sent after commit.
    enqueue_all_after_commit(outbox.outbox_status_changed(domain=domain, event=event))
    if edge_change:
        enqueue_after_commit(TaskName.EDGE_SYNC_HOSTNAME, domain.hostname)
        redirects_follow_target(domain)
    return True


def redirects_follow_target(target: CustomDomain) -> None:
    """A redirect's edge item names its target only while the target routes
    (selectors.edge_redirect_target): when the target starts or stops routing, the routed
    redirects pointing at it get a new edge version and a push."""
    followers = CustomDomain.objects.filter(redirect_to=target,
                                            status__in=EDGE_ROUTED_STATUSES)
    hostnames = list(followers.values_list("hostname", flat=True))
    if hostnames:
        followers.update(edge_version=F("edge_version") + 1, updated_at=timezone.now())
        for hostname in hostnames:
            enqueue_after_commit(TaskName.EDGE_SYNC_HOSTNAME, hostname)
