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

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import F
from django.utils import timezone

from domains.actors import Actor
from domains.models import EDGE_ROUTED_STATUSES, CustomDomain, DomainEvent, EventKind
from domains.queueing import enqueue_after_commit, enqueue_all_after_commit
from domains.task_names import TaskName
from notifications import outbox


def actor_or_none(by: Actor) -> User | None:
    """The user to record as actor: anonymous callers and the system record none."""
    if by is None or isinstance(by, AnonymousUser) or not by.is_authenticated:
        return None
    return by


def event_record(
    *,
    domain: CustomDomain,
    kind: str,
    source: str,
    by: Actor = None,
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
    by: Actor = None,
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
