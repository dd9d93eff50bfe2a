"""Every state change of a domain goes through here.

API views, admin actions, Celery tasks and management commands are thin interfaces over
these functions. Each service changes state, writes its DomainEvent and schedules its
follow-up work (`transaction.on_commit`) in one call. Status changes are compare-and-swap
(`filter(pk=…, status=old).update(…)`), so two workers can never both apply a transition.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from domains import notifications, selectors
from domains.errors import (
    Conflict,
    InvalidInput,
    InvalidTransition,
    NotEntitled,
    PermissionDeniedError,
    Throttled,
)
from domains.hostnames import HostnameError, validate_custom_hostname
from domains.integrations import cdn
from domains.models import (
    EDGE_ROUTED_STATUSES,
    WRITE_ROLES,
    CustomDomain,
    DomainEvent,
    DomainStatus,
    EventKind,
    Workspace,
)

log = logging.getLogger(__name__)

User = AbstractBaseUser
LIVE_STATUSES = (
    DomainStatus.PENDING_VALIDATION,
    DomainStatus.DEPLOYING,
    DomainStatus.ACTIVE,
    DomainStatus.MISCONFIGURED,
)


# --- helpers ------------------------------------------------------------------------------


def _actor(by: User | AnonymousUser | None) -> User | None:
    return by if by is not None and getattr(by, "is_authenticated", False) else None  # type: ignore[return-value]


def event_record(
    *,
    domain: CustomDomain,
    kind: str,
    source: str,
    by: User | None = None,
    message: str = "",
    from_status: str = "",
    to_status: str = "",
    data: dict[str, Any] | None = None,
) -> DomainEvent:
    return DomainEvent.objects.create(
        domain=domain,
        kind=kind,
        source=source,
        actor=_actor(by),
        message=message,
        from_status=from_status,
        to_status=to_status,
        data=data or {},
    )


def enqueue_after_commit(task_name: str, *args: object) -> None:
    """Send a task once the surrounding transaction has committed."""
    from domains import tasks

    task = getattr(tasks, task_name)
    transaction.on_commit(lambda: tasks.send(task, *args))


def ownership_token_for(*, workspace_slug: str, hostname: str) -> str:
    """The TXT token a workspace proves it controls `hostname` with.

    Derived (not random) so a workspace can be told the token before it holds a record,
    which is how a real owner proves a claim held by someone else.
    """
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"{workspace_slug}:{hostname}".encode(), hashlib.sha256
    ).hexdigest()
    return digest[:32]


def check_write_access(*, user: User | AnonymousUser, workspace: Workspace) -> None:
    if getattr(user, "is_staff", False):
        return
    role = selectors.membership_role(user=user, workspace=workspace)
    if role is None:
        raise PermissionDeniedError("You are not a member of this workspace.", code="not_member")
    if role not in WRITE_ROLES:
        raise PermissionDeniedError(
            "Only workspace owners and admins can change custom domains.", code="role_read_only"
        )


def transition(
    *,
    domain: CustomDomain,
    to: str,
    allowed_from: Iterable[str],
    source: str,
    by: User | None = None,
    message: str = "",
    data: dict[str, Any] | None = None,
    updates: dict[str, Any] | None = None,
) -> bool:
    """Compare-and-swap the status; True when this call applied it, False when another did.

    Must run inside a transaction (callers use `transaction.atomic`), so the event row and
    the follow-up tasks commit with the status change or not at all.
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
    # Webhooks and owner emails (issue 8): outbox rows in this transaction, sent after commit.
    notifications.on_status_changed(domain=domain, event=event)
    if edge_change:
        enqueue_after_commit("sync_edge", domain.hostname)
    return True


# --- register -----------------------------------------------------------------------------


PREVALIDATION_MODES = ("", "acm", "self-hosted")


def domain_register(
    *, workspace: Workspace, hostname: object, by: User | None, source: str = "api",
    prevalidation: str = "",
) -> CustomDomain:
    try:
        host = validate_custom_hostname(hostname)
    except HostnameError as exc:
        raise InvalidInput(exc.message, code=exc.code, field="hostname") from exc
    if prevalidation not in PREVALIDATION_MODES:
        raise InvalidInput("prevalidation must be one of: acm, self-hosted (or empty).",
                           code="invalid", field="prevalidation")
    managed = cdn.strategy().managed_certificates
    if prevalidation and not managed:
        raise InvalidInput(
            "Pre-validation needs the saas-tenant CDN strategy; this platform validates every "
            "certificate by DNS before attaching anyway.",
            code="prevalidation_unavailable", field="prevalidation")
    needs_acm = not managed or prevalidation == "acm"

    limit = workspace.domain_limit
    if limit <= 0:
        raise NotEntitled(
            f"The {workspace.get_plan_display()} plan does not include custom domains; "
            "upgrade to a paid plan.",
            code="plan_not_entitled",
        )
    pending_certs = CustomDomain.objects.filter(
        status=DomainStatus.PENDING_VALIDATION
    ).count() if needs_acm else 0
    if needs_acm and pending_certs >= settings.VEDOMAINS_ACM_MAX_PENDING:
        # ACM limits how many certificates an account may request; stay under it rather
        # than fail every request once it is reached.
        raise Throttled(
            "Too many domains are waiting for certificates right now; try again later.",
            code="certificate_quota",
        )

    token = ownership_token_for(workspace_slug=workspace.slug, hostname=host)
    holder = selectors.live_domain_for_hostname(host)
    proof = False
    if holder is not None and holder.workspace_id != workspace.id and holder.status != (
        DomainStatus.FAILED
    ):
        # Only a TXT proof from the DNS owner releases a claim held by another workspace;
        # the lookup happens before the transaction so no lock is held during DNS I/O.
        proof = _ownership_proven(host, token)
        if not proof:
            raise Conflict(
                f"'{host}' is already claimed by another workspace. If you control its DNS, "
                f"create the TXT record below and register again.",
                code="hostname_taken",
                field="hostname",
                details={
                    "dns_records": [
                        {
                            "purpose": "ownership",
                            "type": "TXT",
                            "name": f"{settings.VEDOMAINS_OWNERSHIP_TXT_PREFIX}.{host}",
                            "value": f"vedomains-verification={token}",
                        }
                    ]
                },
            )

    try:
        with transaction.atomic():
            # Lock the workspace row: concurrent registrations then count domains one at a time.
            Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
            live_count = CustomDomain.objects.filter(
                workspace=workspace, status__in=LIVE_STATUSES
            ).count()
            if live_count >= limit:
                raise NotEntitled(
                    f"The {workspace.get_plan_display()} plan allows {limit} custom domains "
                    "and this workspace has reached that limit.",
                    code="domain_limit_reached",
                )
            # Counted under the workspace lock, so parallel requests cannot overshoot it.
            cap = settings.VEDOMAINS_ACM_MAX_PENDING_PER_WORKSPACE
            if cap > 0 and CustomDomain.objects.filter(
                workspace=workspace, status=DomainStatus.PENDING_VALIDATION
            ).count() >= cap:
                raise Throttled(
                    f"This workspace already has {cap} domains waiting for certificates; "
                    "finish or remove some of them, then try again.",
                    code="workspace_certificate_quota",
                )
            holder = (
                CustomDomain.objects.select_for_update()
                .filter(hostname=host)
                .exclude(status=DomainStatus.REMOVED)
                .first()
            )
            if holder is not None:
                _release_holder(holder=holder, workspace=workspace, by=by, source=source,
                                proof=proof)
            previous = CustomDomain.objects.filter(hostname=host).exclude(workspace=workspace)
            ownership_required = settings.VEDOMAINS_OWNERSHIP_TXT == "always" or (
                previous.filter(activated_at__isnull=False).exists()
            )
            last_version = (
                CustomDomain.objects.filter(hostname=host).aggregate(v=Max("edge_version"))["v"]
                or 0
            )
            now = timezone.now()
            domain = CustomDomain.objects.create(
                hostname=host,
                workspace=workspace,
                created_by=_actor(by),
                ownership_token=token,
                ownership_required=ownership_required,
                ownership_verified_at=now if proof else None,
                next_check_at=now,
                fast_checks_until=now + settings.VEDOMAINS_FAST_CHECK_WINDOW,
                edge_version=last_version,
                edge_synced_version=last_version,
                prevalidation=prevalidation,
            )
            event_record(
                domain=domain,
                kind=EventKind.REGISTERED,
                source=source,
                by=by,
                to_status=domain.status,
                message=f"Registered for workspace {workspace.slug}",
                data={"ownership_required": ownership_required, "ownership_proven": proof},
            )
            if needs_acm:
                enqueue_after_commit("request_certificate", domain.pk)
            else:
                # CloudFront manages the certificate: the first check creates the tenant.
                enqueue_after_commit("check_domain", domain.pk)
    except IntegrityError as exc:
        # Another request registered the same hostname between our check and our insert.
        raise Conflict(
            f"'{host}' was just claimed by another request.", code="hostname_taken",
            field="hostname",
        ) from exc
    return domain


def _release_holder(
    *, holder: CustomDomain, workspace: Workspace, by: User | None, source: str, proof: bool
) -> None:
    """Free `holder`'s hostname for `workspace`, or raise Conflict."""
    if holder.workspace_id == workspace.id and holder.status != DomainStatus.FAILED:
        raise Conflict(
            f"'{holder.hostname}' is already registered in this workspace.",
            code="already_registered",
            field="hostname",
        )
    if holder.status == DomainStatus.FAILED:
        reason = "A new registration replaced this failed claim."
    elif proof:
        reason = f"Workspace {workspace.slug} proved ownership with the TXT record."
    else:
        raise Conflict(
            f"'{holder.hostname}' is already claimed by another workspace.",
            code="hostname_taken",
            field="hostname",
        )
    applied = transition(
        domain=holder,
        to=DomainStatus.REMOVED,
        allowed_from=[holder.status],
        source=source,
        by=by,
        message=reason,
        updates={"removed_at": timezone.now(), "next_check_at": timezone.now()},
    )
    if not applied:
        raise Conflict("The hostname changed hands during this request; try again.",
                       code="hostname_taken", field="hostname")
    event_record(domain=holder, kind=EventKind.RELEASED, source=source, by=by, message=reason,
                 data={"to_workspace": workspace.slug})
    enqueue_after_commit("cleanup_domain", holder.pk)


def _ownership_proven(hostname: str, token: str) -> bool:
    from domains.integrations import dns
    from domains.integrations.errors import IntegrationError

    try:
        values = dns.lookup_txt(f"{settings.VEDOMAINS_OWNERSHIP_TXT_PREFIX}.{hostname}")
    except IntegrationError:
        return False
    return f"vedomains-verification={token}" in values


# --- check on demand, remove --------------------------------------------------------------


def domain_request_check(
    *, domain: CustomDomain, by: User | None, source: str = "api"
) -> CustomDomain:
    """Make the domain due now and switch it to fast checks for a while."""
    if domain.status == DomainStatus.REMOVED:
        raise InvalidTransition("A removed domain cannot be checked.", code="domain_removed")
    now = timezone.now()
    with transaction.atomic():
        CustomDomain.objects.filter(pk=domain.pk).update(
            next_check_at=now,
            fast_checks_until=now + settings.VEDOMAINS_FAST_CHECK_WINDOW,
            updated_at=now,
        )
        event_record(domain=domain, kind=EventKind.CHECK_REQUESTED, source=source, by=by)
        enqueue_after_commit("check_domain", domain.pk)
    domain.refresh_from_db()
    return domain


def domain_prevalidate(
    *, domain: CustomDomain, mode: str, by: User | None, source: str = "admin"
) -> CustomDomain:
    """Switch a pending domain to pre-validation (issue 13): certificate before the CNAME.

    `acm`: an ACM certificate validated by a DNS record becomes the tenant's certificate;
    `self-hosted`: CloudFront's HTTP token, served by the customer's current web server.
    """
    if mode not in ("acm", "self-hosted"):
        raise InvalidInput("mode must be acm or self-hosted.", code="invalid", field="mode")
    if not cdn.strategy().managed_certificates:
        raise InvalidInput("Pre-validation needs the saas-tenant CDN strategy.",
                           code="prevalidation_unavailable", field="mode")
    now = timezone.now()
    with transaction.atomic():
        changed = CustomDomain.objects.filter(
            pk=domain.pk, status=DomainStatus.PENDING_VALIDATION).update(
            prevalidation=mode, next_check_at=now, updated_at=now,
            fast_checks_until=now + settings.VEDOMAINS_FAST_CHECK_WINDOW)
        if not changed:
            raise InvalidTransition("Only a domain waiting for validation can be pre-validated.",
                                    code="not_pending")
        event_record(domain=domain, kind=EventKind.CHECK_REQUESTED, source=source, by=by,
                     message=f"Pre-validation requested ({mode}).", data={"prevalidation": mode})
        if mode == "acm":
            enqueue_after_commit("request_certificate", domain.pk)
        enqueue_after_commit("check_domain", domain.pk)
    domain.refresh_from_db()
    return domain


def domain_remove(
    *, domain: CustomDomain, by: User | None, source: str = "api", reason: str = ""
) -> CustomDomain:
    """Mark removed at once (the hostname is free again), then clean up AWS in the background."""
    if domain.status == DomainStatus.REMOVED:
        raise InvalidTransition("The domain is already removed.", code="domain_removed")
    now = timezone.now()
    with transaction.atomic():
        applied = transition(
            domain=domain,
            to=DomainStatus.REMOVED,
            allowed_from=LIVE_STATUSES + (DomainStatus.FAILED,),
            source=source,
            by=by,
            message=reason or "Removed",
            # A tombstone even for a domain that never routed: a push still in flight
            # for it then cannot resurrect it.
            updates={"removed_at": now, "next_check_at": now,
                     "edge_version": F("edge_version") + 1},
        )
        if not applied:
            raise InvalidTransition(
                "The domain changed while it was being removed; reload and try again.",
                code="concurrent_change",
            )
        enqueue_after_commit("cleanup_domain", domain.pk)
    return domain


def domain_push_to_edge(*, domain: CustomDomain, by: User | None, source: str = "admin") -> None:
    """Re-send the hostname's edge item (admin's "Push to edge")."""
    with transaction.atomic():
        event_record(domain=domain, kind=EventKind.EDGE_PUSH_REQUESTED, source=source, by=by)
        enqueue_after_commit("sync_edge", domain.hostname)

