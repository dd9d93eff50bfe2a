"""What people ask for: register, check now, remove, push to the edge, and who may.

API views and admin actions are thin interfaces over these functions. Each service changes
state, writes its DomainEvent and schedules its follow-up work (`transaction.on_commit`) in
one call, through `workflow.lifecycle` (compare-and-swap status changes). What the system
does on its own schedule lives in `checks`, `cleanup`, `edge_sync` and `certificates`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from domains import selectors
from domains.actors import Actor
from domains.errors import (
    Conflict,
    InvalidInput,
    InvalidTransition,
    NotEntitled,
    PermissionDeniedError,
    Throttled,
)
from domains.hostnames import (
    HostnameError,
    apex_supported,
    is_apex,
    normalize_hostname,
    validate_custom_hostname,
)
from domains.integrations import cdn, dns
from domains.integrations.errors import IntegrationError
from domains.models import (
    EDGE_ROUTED_STATUSES,
    LIVE_STATUSES,
    WRITE_ROLES,
    CustomDomain,
    DomainStatus,
    EventKind,
    Prevalidation,
    RedirectCode,
    Workspace,
)
from domains.queueing import enqueue_after_commit, enqueue_all_after_commit
from domains.task_names import TaskName
from notifications import outbox
from workflow import certificate_budget
from workflow.lifecycle import actor_or_none, domain_transition, event_record

log = logging.getLogger(__name__)



# --- helpers ------------------------------------------------------------------------------


def ownership_token_for(*, workspace_id: int, hostname: str) -> str:
    """The TXT token a workspace proves it controls `hostname` with.

    Derived (not random) so a workspace can be told the token before it holds a record,
    which is how a real owner proves a claim held by someone else. Derived from the
    workspace's immutable id, never its slug: a token must not pass to another
    workspace with a name. Tokens already stored on records keep being the ones checked.
    """
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"workspace-id:{workspace_id}:{hostname}".encode(),
        hashlib.sha256,
    ).hexdigest()
    return digest[:32]


def workspace_check_write_access(
    *, user: User | AnonymousUser, workspace: Workspace, action: str = "change"
) -> None:
    """Owners and admins may write; staff only with Django's `<action>_customdomain` perm."""
    if selectors.staff_may(user, f"domains.{action}_customdomain"):
        return
    role = selectors.membership_role(user=user, workspace=workspace)
    if role is None:
        raise PermissionDeniedError("You are not a member of this workspace.", code="not_member")
    if role not in WRITE_ROLES:
        raise PermissionDeniedError(
            "Only workspace owners and admins can change custom domains.", code="role_read_only"
        )


# --- register -----------------------------------------------------------------------------


PREVALIDATION_MODES = tuple(Prevalidation)


def domain_register(
    *, workspace: Workspace, hostname: object, by: Actor, source: str = "api",
    prevalidation: str = "", redirect_to: object = None, redirect_code: object = None,
) -> CustomDomain:
    """Claim `hostname` for `workspace`; checks and the certificate request follow.

    `prevalidation` ("acm" | "self-hosted"): the certificate is issued before the customer
    moves the CNAME (a live site elsewhere); see docs/cdn.md. `redirect_to`: the domain is a
    redirect to that domain of the same workspace (docs/redirects.md).
    """
    host = _register_validate_hostname(hostname)
    code = redirect_code_check(redirect_code) if redirect_to is not None else None
    if redirect_to is not None:
        # Unlocked here so a bad target is a 400 before any DNS work; again under the lock.
        redirect_target_check(workspace=workspace, hostname=host, target=redirect_to)
    # Before the plan checks: at the limit, a name already held here is a 409, not a 403.
    _register_refuse_if_held_here(host=host, workspace=workspace)
    needs_acm = _register_check_prevalidation(prevalidation)
    _register_check_entitlement(workspace)
    if needs_acm:
        _register_check_account_quota()
    # Today's certificate budget already spent: say so now rather than hold the request.
    certificate_budget.certificate_budget_check(workspace=workspace)
    token = ownership_token_for(workspace_id=workspace.pk, hostname=host)
    # Before the transaction, so no lock is held during DNS I/O.
    proof = _register_takeover_proof(workspace=workspace, host=host, token=token)
    try:
        with transaction.atomic():
            # Lock the workspace row: concurrent registrations then count domains one at a time.
            Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
            _register_check_workspace_quotas(workspace)
            holder = (
                CustomDomain.objects.select_for_update()
                .filter(hostname=host)
                .exclude(status=DomainStatus.REMOVED)
                .first()
            )
            if holder is not None:
                _release_holder(holder=holder, workspace=workspace, by=by, source=source,
                                proof=proof)
            target = (redirect_target_check(workspace=workspace, hostname=host,
                                            target=redirect_to, lock=True)
                      if redirect_to is not None else None)
            domain = _register_create(workspace=workspace, host=host, token=token, proof=proof,
                                      by=by, source=source, prevalidation=prevalidation,
                                      needs_acm=needs_acm, redirect_to=target,
                                      redirect_code=code)
    except IntegrityError as exc:
        # Another request registered the same hostname between our check and our insert.
        raise Conflict(
            f"'{host}' was just claimed by another request.", code="hostname_taken",
            field="hostname",
        ) from exc
    return domain


def _register_validate_hostname(hostname: object) -> str:
    try:
        return validate_custom_hostname(hostname)
    except HostnameError as exc:
        raise InvalidInput(exc.message, code=exc.code, field="hostname") from exc


def _register_check_prevalidation(prevalidation: str) -> bool:
    """Validate the mode; True when the engine must request an ACM certificate."""
    if prevalidation not in PREVALIDATION_MODES:
        raise InvalidInput("prevalidation must be one of: acm, self-hosted (or empty).",
                           code="invalid", field="prevalidation")
    managed = cdn.strategy().managed_certificates
    if prevalidation and not managed:
        raise InvalidInput(
            "Pre-validation needs the saas-tenant CDN strategy; this platform validates every "
            "certificate by DNS before attaching anyway.",
            code="prevalidation_unavailable", field="prevalidation")
    return not managed or prevalidation == Prevalidation.ACM


def _register_check_entitlement(workspace: Workspace) -> None:
    if workspace.domain_limit <= 0:
        raise NotEntitled(
            f"The {workspace.plan_label} plan does not include custom domains; "
            "upgrade to a paid plan.",
            code="plan_not_entitled",
        )


def _register_check_account_quota() -> None:
    pending_certs = CustomDomain.objects.filter(
        status=DomainStatus.PENDING_VALIDATION
    ).count()
    if pending_certs >= settings.VEDOMAINS_ACM_MAX_PENDING:
        # ACM limits how many certificates an account may request; stay under it rather
        # than fail every request once it is reached.
        raise Throttled(
            "Too many domains are waiting for certificates right now; try again later.",
            code="certificate_quota",
        )


def _register_takeover_proof(*, workspace: Workspace, host: str, token: str) -> bool:
    """True when another workspace holds `host` and this one proved DNS control by TXT.

    Only a TXT proof from the DNS owner releases a claim held by another workspace; without
    one, the Conflict tells the caller which record to create.
    """
    holder = selectors.live_domain_for_hostname(host)
    if holder is None or holder.workspace_id == workspace.id or (
        holder.status == DomainStatus.FAILED
    ):
        return False
    if _ownership_proven(host, token):
        return True
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
                    "name": f"{dns.OWNERSHIP_TXT_PREFIX}.{host}",
                    "value": f"vedomains-verification={token}",
                }
            ]
        },
    )


def _register_check_workspace_quotas(workspace: Workspace, adding: int = 1) -> None:
    """The plan's domain limit and the per-workspace certificate cap (under the lock).

    `adding`: how many records this registration creates (2 for a www/apex pair: a
    redirect domain is a domain like any other, with its own certificate and tenant).
    """
    limit = workspace.domain_limit
    live_count = CustomDomain.objects.filter(
        workspace=workspace, status__in=LIVE_STATUSES
    ).count()
    if live_count + adding > limit:
        deadline = selectors.open_plan_grace_deadline(workspace)
        when = ("" if deadline is None else
                f" Domains above the limit will be detached after {outbox.datetime_iso(deadline)}"
                " unless the workspace is back within its plan.")
        pair = ("" if adding == 1 else
                f" The pair needs {adding} more (the redirect domain counts too).")
        raise NotEntitled(
            f"The {workspace.plan_label} plan allows {limit} custom domains "
            f"and this workspace has {live_count}.{pair}{when}",
            code="domain_limit_reached",
            details={"domain_limit": limit, "domains_used": live_count,
                     "grace_until": None if deadline is None else outbox.datetime_iso(deadline)},
        )
    # Counted under the workspace lock, so parallel requests cannot overshoot it.
    cap = settings.VEDOMAINS_ACM_MAX_PENDING_PER_WORKSPACE
    if cap > 0 and CustomDomain.objects.filter(
        workspace=workspace, status=DomainStatus.PENDING_VALIDATION
    ).count() + adding > cap:
        raise Throttled(
            f"This workspace already has {cap} domains waiting for certificates; "
            "finish or remove some of them, then try again.",
            code="workspace_certificate_quota",
        )


def _register_create(*, workspace: Workspace, host: str, token: str, proof: bool,
                     prevalidation: str = "", needs_acm: bool = True,
                     by: Actor, source: str,
                     redirect_to: CustomDomain | None = None,
                     redirect_code: int | None = None) -> CustomDomain:
    """Insert the record, its REGISTERED event and its first check after commit."""
    ownership_required = ownership_proof_required(hostname=host, workspace=workspace)
    # Continue the hostname's edge versions, so this record's first push outranks any
    # tombstone an earlier record left at the edge.
    last_version = (
        CustomDomain.objects.filter(hostname=host).aggregate(v=Max("edge_version"))["v"] or 0
    )
    now = timezone.now()
    domain = CustomDomain.objects.create(
        hostname=host,
        workspace=workspace,
        created_by=actor_or_none(by),
        ownership_token=token,
        ownership_required=ownership_required,
        ownership_verified_at=now if proof else None,
        next_check_at=now,
        fast_checks_until=now + timedelta(seconds=settings.VEDOMAINS_FAST_CHECK_WINDOW_SECONDS),
        edge_version=last_version,
        edge_synced_version=last_version,
        prevalidation=prevalidation,
        redirect_to=redirect_to,
        redirect_code=redirect_code if redirect_to is not None else None,
    )
    registered = event_record(
        domain=domain,
        kind=EventKind.REGISTERED,
        source=source,
        by=by,
        to_status=domain.status,
        message=f"Registered for workspace {workspace.slug}",
        data={"ownership_required": ownership_required, "ownership_proven": proof,
              **({"redirect_to": redirect_to.hostname, "redirect_code": redirect_code}
                 if redirect_to is not None else {})},
    )
    # The main app hears of the new domain now, not only when it leaves pending.
    enqueue_all_after_commit(outbox.outbox_registered(domain=domain, event=registered))
    if domain.prevalidation == Prevalidation.ACM:
        # Pre-validation is the intent: the certificate comes before the CNAME moves.
        enqueue_after_commit(TaskName.DOMAIN_REQUEST_CERTIFICATE, domain.pk)
    else:
        # The first check requests the certificate once the CNAME shows intent, or creates
        # the tenant whose certificate CloudFront manages.
        enqueue_after_commit(TaskName.DOMAIN_CHECK, domain.pk)
    return domain


def _register_refuse_if_held_here(*, host: str, workspace: Workspace) -> None:
    holder = selectors.live_domain_for_hostname(host)
    if holder is not None and holder.workspace_id == workspace.id and (
        holder.status != DomainStatus.FAILED
    ):
        raise Conflict(f"'{host}' is already registered in this workspace.",
                       code="already_registered", field="hostname")


def hostname_needs_proof(*, hostname: str, workspace: Workspace) -> bool:
    """Has another workspace ever held a record for `hostname` that it did not release?

    Whatever that record's status: a claim that failed or was removed may have
    left the customer's CNAME, and the ACM validation CNAME that ACM reuses per name and
    account, pointing at us; only that workspace's explicit release (`domain_release`) frees
    the name for others without the TXT proof.
    """
    return (
        CustomDomain.objects.filter(hostname=hostname, released_at__isnull=True)
        .exclude(workspace=workspace)
        .exists()
    )


def ownership_proof_required(*, hostname: str, workspace: Workspace) -> bool:
    """The registration's TXT rule, for every path that gives `workspace` the name
    (registration, seed adoption): always, or when another workspace held it unreleased."""
    return settings.VEDOMAINS_OWNERSHIP_TXT == "always" or (
        hostname_needs_proof(hostname=hostname, workspace=workspace)
    )


def ownership_proven(*, hostname: str, workspace: Workspace) -> bool:
    """Does `_vedomains-challenge.<hostname>` carry this workspace's token now?"""
    return _ownership_proven(
        hostname, ownership_token_for(workspace_id=workspace.pk, hostname=hostname))


def ownership_txt_record(*, hostname: str, workspace: Workspace) -> dict[str, str]:
    """The TXT record that proves `workspace` controls `hostname`'s DNS."""
    token = ownership_token_for(workspace_id=workspace.pk, hostname=hostname)
    return {"purpose": "ownership", "type": "TXT",
            "name": f"{dns.OWNERSHIP_TXT_PREFIX}.{hostname}",
            "value": f"vedomains-verification={token}"}


def _release_holder(
    *, holder: CustomDomain, workspace: Workspace, by: Actor, source: str,
    proof: bool,
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
    applied = domain_transition(
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
    enqueue_after_commit(TaskName.DOMAIN_CLEANUP, holder.pk)


def _ownership_proven(hostname: str, token: str) -> bool:
    try:
        values = dns.lookup_txt(f"{dns.OWNERSHIP_TXT_PREFIX}.{hostname}")
    except IntegrationError:
        return False
    return f"vedomains-verification={token}" in values


# --- check on demand, remove --------------------------------------------------------------


def domain_request_check(
    *, domain: CustomDomain, by: Actor, source: str = "api"
) -> CustomDomain:
    """Make the domain due now and switch it to fast checks for a while."""
    if domain.status == DomainStatus.REMOVED:
        raise InvalidTransition("A removed domain cannot be checked.", code="domain_removed")
    now = timezone.now()
    with transaction.atomic():
        CustomDomain.objects.filter(pk=domain.pk).update(
            next_check_at=now,
            fast_checks_until=now + timedelta(seconds=settings.VEDOMAINS_FAST_CHECK_WINDOW_SECONDS),
            updated_at=now,
        )
        event_record(domain=domain, kind=EventKind.CHECK_REQUESTED, source=source, by=by)
        enqueue_after_commit(TaskName.DOMAIN_CHECK, domain.pk)
    domain.refresh_from_db()
    return domain


def domain_prevalidate(
    *, domain: CustomDomain, mode: str, by: Actor, source: str = "admin"
) -> CustomDomain:
    """Switch a pending domain to pre-validation: its certificate before the CNAME moves.

    `acm`: an ACM certificate validated by a DNS record becomes the tenant's certificate;
    `self-hosted`: CloudFront's HTTP token, served by the customer's current web server.
    """
    if mode not in (Prevalidation.ACM, Prevalidation.SELF_HOSTED):
        raise InvalidInput("mode must be acm or self-hosted.", code="invalid", field="mode")
    if not cdn.strategy().managed_certificates:
        raise InvalidInput("Pre-validation needs the saas-tenant CDN strategy.",
                           code="prevalidation_unavailable", field="mode")
    now = timezone.now()
    with transaction.atomic():
        changed = CustomDomain.objects.filter(
            pk=domain.pk, status=DomainStatus.PENDING_VALIDATION).update(
            prevalidation=mode, next_check_at=now, updated_at=now,
            fast_checks_until=now + timedelta(seconds=settings.VEDOMAINS_FAST_CHECK_WINDOW_SECONDS))
        if not changed:
            raise InvalidTransition("Only a domain waiting for validation can be pre-validated.",
                                    code="not_pending")
        event_record(domain=domain, kind=EventKind.CHECK_REQUESTED, source=source, by=by,
                     message=f"Pre-validation requested ({mode}).", data={"prevalidation": mode})
        if mode == Prevalidation.ACM:
            enqueue_after_commit(TaskName.DOMAIN_REQUEST_CERTIFICATE, domain.pk)
        enqueue_after_commit(TaskName.DOMAIN_CHECK, domain.pk)
    domain.refresh_from_db()
    return domain


def domain_remove(
    *, domain: CustomDomain, by: Actor, source: str = "api", reason: str = ""
) -> CustomDomain:
    """Mark removed at once (the hostname is free again), then clean up AWS in the background."""
    if domain.status == DomainStatus.REMOVED:
        raise InvalidTransition("The domain is already removed.", code="domain_removed")
    now = timezone.now()
    with transaction.atomic():
        applied = domain_transition(
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
        enqueue_after_commit(TaskName.DOMAIN_CLEANUP, domain.pk)
    return domain


def domain_release(
    *, domain: CustomDomain, by: Actor, source: str = "api"
) -> CustomDomain:
    """The workspace gives the hostname up for good: any workspace may then claim it
    without the ownership TXT proof. Removes the domain if it is still live.

    Every record the workspace holds for the hostname is marked released, so none of them
    makes `hostname_needs_proof` ask a newcomer for proof.
    """
    now = timezone.now()
    with transaction.atomic():
        if domain.status != DomainStatus.REMOVED:
            domain_remove(domain=domain, by=by, source=source,
                          reason="Released by its workspace")
        CustomDomain.objects.filter(
            hostname=domain.hostname, workspace_id=domain.workspace_id, released_at__isnull=True
        ).update(released_at=now)
        event_record(domain=domain, kind=EventKind.RELINQUISHED, source=source, by=by,
                     message=f"Workspace {domain.workspace.slug} released the hostname: the "
                     "next workspace to register it needs no ownership proof.")
    domain.refresh_from_db()
    return domain


def domain_push_to_edge(
    *, domain: CustomDomain, by: Actor, source: str = "admin"
) -> None:
    """Re-send the hostname's edge item (admin's "Push to edge")."""
    if domain.status in (DomainStatus.PENDING_VALIDATION, DomainStatus.DEPLOYING,
                         DomainStatus.FAILED):
        # The edge has never held such a domain: a push would only add an audit row.
        raise InvalidTransition(
            f"'{domain.hostname}' is not routed by the edge yet; there is nothing to push.",
            code="not_routed")
    with transaction.atomic():
        event_record(domain=domain, kind=EventKind.EDGE_PUSH_REQUESTED, source=source, by=by)
        enqueue_after_commit(TaskName.EDGE_SYNC_HOSTNAME, domain.hostname)



# --- redirects (docs/redirects.md) --------------------------------------------------------


DEFAULT_REDIRECT_CODE = RedirectCode.PERMANENT_REDIRECT


def redirect_code_check(code: object) -> int:
    """301 or 308 (given as a number or its digits); absent means 308."""
    if code is None or code == "":
        return int(DEFAULT_REDIRECT_CODE)
    # Not str.isdigit(): it accepts "²" (int() then raises) and other scripts' digits.
    if isinstance(code, str) and re.fullmatch(r"[0-9]+", code.strip()):
        code = int(code.strip())
    if isinstance(code, bool) or code not in RedirectCode.values:
        raise InvalidInput("redirect_code must be 301 or 308 (a permanent redirect).",
                           code="invalid_redirect_code", field="redirect_code")
    return int(str(code))


def redirect_target_check(*, workspace: Workspace, hostname: str, target: object,
                          lock: bool = False) -> CustomDomain:
    """The live record `target` names, if `hostname` may redirect to it; else InvalidInput.

    The target is a domain of the same workspace that holds its hostname (pending, deploying,
    active or misconfigured), is not `hostname` itself and is not a redirect (no chains).
    Pending is allowed: a pair registered together has both pending, and the edge redirects
    only once the target routes. Another workspace's domain and a host nobody registered get
    the same answer, so it tells nothing about other workspaces.
    """
    if not isinstance(target, str) or not target.strip():
        raise InvalidInput("redirect_to must be the hostname of another domain of this "
                           "workspace.", code="invalid_redirect_target", field="redirect_to")
    try:
        host = normalize_hostname(target)
    except HostnameError as exc:
        raise InvalidInput(f"redirect_to: {exc.message}", code="invalid_redirect_target",
                           field="redirect_to") from exc
    if host == hostname:
        raise InvalidInput(f"'{host}' cannot redirect to itself.", code="redirect_to_self",
                           field="redirect_to")
    query = CustomDomain.objects.filter(hostname=host, status__in=LIVE_STATUSES)
    if lock:
        query = query.select_for_update()
    found = query.first()
    if found is None or found.workspace_id != workspace.pk:
        raise InvalidInput(
            f"'{host}' is not a custom domain of this workspace. A domain can redirect only "
            "to another custom domain of the same workspace (register it first); for any "
            "other site, use your DNS provider's forwarding.",
            code="redirect_target_unknown", field="redirect_to")
    if found.redirect_to_id is not None:
        raise InvalidInput(
            f"'{host}' is itself a redirect; point at the domain it redirects to: redirects "
            "do not chain.", code="redirect_chain", field="redirect_to")
    return found


@dataclass
class PairRegistration:
    """What registering with `include_www` made: the primary, its redirect (None when the
    apex cannot be served here), and what to tell the customer."""

    primary: CustomDomain
    redirect: CustomDomain | None
    notes: list[str] = field(default_factory=list)


def www_pair(hostname: object) -> tuple[str, str]:
    """(apex, www) for `client.com` or `www.client.com`; InvalidInput for anything else."""
    try:
        host = normalize_hostname(hostname)
    except HostnameError as exc:
        raise InvalidInput(exc.message, code=exc.code, field="hostname") from exc
    if host.startswith("www.") and is_apex(host[4:]):
        return host[4:], host
    if is_apex(host):
        return host, f"www.{host}"
    raise InvalidInput(
        f"include_www pairs an apex domain with its www name ('client.com' and "
        f"'www.client.com'); '{host}' is neither. Register it alone, or use redirect_to.",
        code="include_www_not_apex", field="include_www")


def domain_register_pair(
    *, workspace: Workspace, hostname: object, by: Actor, source: str = "api",
    prevalidation: str = "", redirect_code: object = None, redirect_to: object = None,
) -> PairRegistration:
    """Register `client.com` and `www.client.com` in one transaction: the name given is the
    primary, the other redirects to it. Without apex support only the www name is
    registered, and the notes say to forward the apex at the registrar.

    `redirect_to`: what the caller was asked for besides the pair; anything is refused
    here, once for every path (API, seed path, admin), never silently ignored."""
    if redirect_to is not None and redirect_to != "":
        raise InvalidInput("include_www and redirect_to cannot be combined: the pair already "
                           "makes one of the two a redirect.", code="invalid",
                           field="redirect_to")
    apex, www = www_pair(hostname)
    primary_given = normalize_hostname(hostname)
    code = redirect_code_check(redirect_code)
    if not apex_supported():
        domain = domain_register(workspace=workspace, hostname=www, by=by, source=source,
                                 prevalidation=prevalidation)
        return PairRegistration(domain, None, [
            f"'{apex}' is an apex domain, and DNS does not allow a CNAME at the apex, so only "
            f"'{www}' was registered. To serve visitors who type '{apex}', have your DNS "
            f"provider or registrar forward it to https://{www} (often called URL forwarding "
            "or a redirect)."])
    primary, secondary = (primary_given, www if primary_given == apex else apex)
    for host in (primary, secondary):
        _register_validate_hostname(host)
        _register_refuse_if_held_here(host=host, workspace=workspace)
    needs_acm = _register_check_prevalidation(prevalidation)
    _register_check_entitlement(workspace)
    if needs_acm:
        _register_check_account_quota()
    certificate_budget.certificate_budget_check(workspace=workspace)
    tokens = {h: ownership_token_for(workspace_id=workspace.pk, hostname=h)
              for h in (primary, secondary)}
    # Before the transaction, so no lock is held during DNS I/O.
    proofs = {h: _register_takeover_proof(workspace=workspace, host=h, token=tokens[h])
              for h in (primary, secondary)}
    try:
        with transaction.atomic():
            Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
            _register_check_workspace_quotas(workspace, adding=2)
            for host in (primary, secondary):
                holder = (CustomDomain.objects.select_for_update().filter(hostname=host)
                          .exclude(status=DomainStatus.REMOVED).first())
                if holder is not None:
                    _release_holder(holder=holder, workspace=workspace, by=by, source=source,
                                    proof=proofs[host])
            first = _register_create(workspace=workspace, host=primary, token=tokens[primary],
                                     proof=proofs[primary], by=by, source=source,
                                     prevalidation=prevalidation, needs_acm=needs_acm)
            second = _register_create(workspace=workspace, host=secondary,
                                      token=tokens[secondary], proof=proofs[secondary], by=by,
                                      source=source, prevalidation=prevalidation,
                                      needs_acm=needs_acm, redirect_to=first, redirect_code=code)
    except IntegrityError as exc:
        raise Conflict("One of the pair was just claimed by another request.",
                       code="hostname_taken", field="hostname") from exc
    return PairRegistration(first, second, [
        f"'{secondary}' redirects to '{primary}' ({code}) once both are live; each needs its "
        "own DNS records, listed with it."])


def domain_set_redirect(
    *, domain: CustomDomain, redirect_to: object, redirect_code: object = None,
    by: Actor, source: str = "api",
) -> CustomDomain:
    """Make `domain` a redirect to `redirect_to` (None: serve the workspace again)."""
    target_pk = _redirect_target_pk(workspace_id=domain.workspace_id, target=redirect_to)
    with transaction.atomic():
        # Both rows in one statement, in primary-key order: A->B and B->A at once take the
        # locks in the same order and one waits for the other instead of deadlocking.
        rows = {d.pk: d for d in CustomDomain.objects.select_for_update()
                .filter(pk__in={domain.pk, *([target_pk] if target_pk else [])})
                .order_by("pk")}
        if domain.pk not in rows:
            raise CustomDomain.DoesNotExist
        locked = rows[domain.pk]
        if locked.status not in LIVE_STATUSES:
            raise InvalidTransition("Only a live domain can be changed.", code="domain_removed")
        before = (locked.redirect_to.hostname if locked.redirect_to else None,
                  locked.redirect_code)
        if redirect_to is None:
            target, code = None, None
        else:
            code = redirect_code_check(redirect_code)
            pointing = list(locked.redirects.filter(status__in=LIVE_STATUSES)
                            .values_list("hostname", flat=True))
            if pointing:
                raise InvalidInput(
                    f"{', '.join(pointing)} redirect(s) to '{locked.hostname}', so it cannot "
                    "become a redirect itself: redirects do not chain. Point them elsewhere "
                    "first.", code="redirect_chain", field="redirect_to")
            target = redirect_target_check(workspace=locked.workspace, hostname=locked.hostname,
                                           target=redirect_to)
            if target.pk not in rows:
                # Another row took the hostname in between (rare): lock and check that one,
                # the only lock taken out of order.
                target = redirect_target_check(workspace=locked.workspace,
                                               hostname=locked.hostname, target=redirect_to,
                                               lock=True)
        after = (target.hostname if target else None, code)
        if after == before:
            return locked
        updates: dict[str, object] = {"redirect_to": target, "redirect_code": code,
                                      "updated_at": timezone.now()}
        if locked.status in EDGE_ROUTED_STATUSES:
            updates["edge_version"] = F("edge_version") + 1
            enqueue_after_commit(TaskName.EDGE_SYNC_HOSTNAME, locked.hostname)
        CustomDomain.objects.filter(pk=locked.pk).update(**updates)
        event_record(
            domain=locked, kind=EventKind.REDIRECT_CHANGED, source=source, by=by,
            message=(f"Redirects to {after[0]} ({after[1]})" if target
                     else f"No longer redirects to {before[0]}"),
            data={"from": {"redirect_to": before[0], "redirect_code": before[1]},
                  "to": {"redirect_to": after[0], "redirect_code": after[1]}})
    locked.refresh_from_db()
    return locked


def _redirect_target_pk(*, workspace_id: int, target: object) -> int | None:
    """The row `redirect_target_check` will most likely find, to lock it up front; None when
    there is none (the check inside the transaction then says why)."""
    if not isinstance(target, str):
        return None
    try:
        host = normalize_hostname(target)
    except HostnameError:
        return None
    return (CustomDomain.objects.filter(hostname=host, status__in=LIVE_STATUSES,
                                        workspace_id=workspace_id)
            .values_list("pk", flat=True).first())


def domain_live_redirects(domain: CustomDomain) -> list[CustomDomain]:
    # LIVE_STATUSES, the set the `redirects` field, the chain check and docs/redirects.md
    # use: a removal is never refused for a domain no answer lists as a redirect.
    return list(domain.redirects.filter(status__in=LIVE_STATUSES).order_by("hostname"))


def domain_remove_target(
    *, domain: CustomDomain, by: Actor, source: str = "api",
    remove_redirects: bool = False, release: bool = False,
) -> CustomDomain:
    """A person's removal (API, admin): refused while redirects point at the domain, unless
    they asked to remove those too. The system's own removals (grace period, plan) go
    through `domain_remove` and leave the redirects serving their workspace directly."""
    with transaction.atomic():
        # The target's row lock first: a registration or change naming it as redirect_to
        # locks it too (redirect_target_check), so none can slip in between this listing and
        # the removal.
        CustomDomain.objects.select_for_update().filter(pk=domain.pk).first()
        pointing = domain_live_redirects(domain)
        if pointing and not remove_redirects:
            names = ", ".join(d.hostname for d in pointing)
            raise Conflict(
                f"{names} redirect(s) to '{domain.hostname}'. Remove them too (API: "
                "remove_redirects=true; admin: confirm on the next page), or point them "
                "elsewhere first.", code="has_redirects", field="remove_redirects",
                details={"redirects": [d.hostname for d in pointing]})
        for redirect in pointing:
            domain_remove(domain=redirect, by=by, source=source,
                          reason=f"Removed with its target {domain.hostname}")
        if release:
            return domain_release(domain=domain, by=by, source=source)
        return domain_remove(domain=domain, by=by, source=source)
