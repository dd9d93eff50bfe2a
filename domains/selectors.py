"""Reads: who may see what, and the shapes the interfaces show."""

from __future__ import annotations

from typing import Any, assert_never

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Case, Prefetch, Q, QuerySet, Value, When

from domains import dns_doctor, hostnames
from domains.integrations import edge_store
from domains.models import (
    LIVE_STATUSES,
    CustomDomain,
    DomainEvent,
    DomainStatus,
    EventKind,
    Membership,
    PlanGrace,
    Workspace,
)


def membership_role(*, user: User | AnonymousUser, workspace: Workspace) -> str | None:
    if isinstance(user, AnonymousUser) or not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(user=user, workspace=workspace)
        .values_list("role", flat=True)
        .first()
    )


def staff_may(user: User | AnonymousUser, *perms: str) -> bool:
    """Staff powers follow Django permissions: `is_staff` alone grants nothing.

    True for an active staff user holding any of `perms` ("domains.delete_customdomain").
    A staff user without them is treated as the plain user they are.
    """
    if not (getattr(user, "is_staff", False) and getattr(user, "is_active", False)):
        return False
    return any(user.has_perm(perm) for perm in perms)


# Staff who may see every workspace's domains: Django's change permission implies view.
DOMAIN_READ_PERMS = ("domains.view_customdomain", "domains.change_customdomain",
                     "domains.delete_customdomain")
# Staff who may address any workspace: to read it, or to register a domain into it.
WORKSPACE_READ_PERMS = ("domains.view_workspace", "domains.change_workspace",
                        "domains.add_customdomain")


def workspaces_visible_to(user: User | AnonymousUser) -> QuerySet[Workspace]:
    if staff_may(user, *WORKSPACE_READ_PERMS):
        return Workspace.objects.all()
    if isinstance(user, AnonymousUser) or not user.is_authenticated:
        return Workspace.objects.none()
    return Workspace.objects.filter(memberships__user=user)


def domains_visible_to(user: User | AnonymousUser) -> QuerySet[CustomDomain]:
    qs = CustomDomain.objects.select_related("workspace")
    if staff_may(user, *DOMAIN_READ_PERMS):
        return qs
    if isinstance(user, AnonymousUser) or not user.is_authenticated:
        return qs.none()
    return qs.filter(workspace__memberships__user=user)


def live_domain_for_hostname(hostname: str) -> CustomDomain | None:
    """The record currently holding `hostname` (at most one, by constraint)."""
    return (
        CustomDomain.objects.select_related("workspace")
        .filter(hostname=hostname)
        .exclude(status=DomainStatus.REMOVED)
        .first()
    )


def domain_dns_records(domain: CustomDomain) -> list[dict[str, str]]:
    """The DNS records the customer must create, in the order they should create them."""
    records = [
        {
            "purpose": "routing",
            "type": "CNAME",
            "name": domain.hostname,
            "value": settings.VEDOMAINS_CNAME_TARGET,
        }
    ]
    if hostnames.is_apex(domain.hostname) and hostnames.apex_supported():
        # An apex cannot hold a CNAME: A/AAAA records to the anycast static IPs instead.
        records = [
            {"purpose": "routing", "type": "AAAA" if ":" in ip else "A",
             "name": domain.hostname, "value": ip}
            for ip in settings.VEDOMAINS_CDN_APEX_IPS
        ]
    for rec in domain.validation_records or []:
        records.append(
            {
                "purpose": "certificate_validation",
                "type": rec.get("type", "CNAME"),
                "name": rec["name"].rstrip("."),
                "value": rec["value"].rstrip("."),
            }
        )
    if domain.ownership_required and domain.ownership_verified_at is None:
        records.append(
            {
                "purpose": "ownership",
                "type": "TXT",
                "name": domain.ownership_record_name,
                "value": domain.ownership_record_value,
            }
        )
    return records


def domain_http_validation(domain: CustomDomain) -> list[dict[str, str]]:
    """Self-hosted pre-validation: each URL the customer's CURRENT server must redirect.

    [{"domain", "redirect_from", "redirect_to"}] as CloudFront gave them; empty otherwise.
    """
    certificate = (domain.checks or {}).get("certificate") or {}
    return [dict(v) for v in certificate.get("http_validation") or []]


# The seed frontend's vocabulary for `GET /api/domains/verify/<domain>`; it shows `message`.
SEED_VERIFIED = "verified"
SEED_INVALID_CNAME = "invalid_cname"
SEED_PENDING = "pending_validation"
SEED_ERROR = "error"


def domain_seed_status(domain: CustomDomain) -> tuple[str, str]:
    """(status, message) in the seed's words, for a frontend written against the seed.

    The seed knew four answers; ours has more states, so each maps to the answer whose
    message tells the customer what to do next.
    """
    target = settings.VEDOMAINS_CNAME_TARGET
    dns_check = (domain.checks or {}).get("dns") if isinstance(domain.checks, dict) else None
    # The DNS doctor's words, where the last check found something to name.
    doctor = dns_doctor.in_words(dns_doctor.stored_diagnosis(domain.checks))
    # Exhaustive: a status added to DomainStatus fails the type check here.
    status = DomainStatus(domain.status)
    match status:
        case DomainStatus.ACTIVE:
            return SEED_VERIFIED, "Domain verified and mapped successfully"
        case DomainStatus.MISCONFIGURED:
            return SEED_INVALID_CNAME, (
                f"{doctor or f'Please ensure CNAME points to {target}.'} The domain stops "
                "serving if it is not fixed within the grace period."
            )
        case DomainStatus.FAILED:
            return SEED_ERROR, (domain.last_error
                                or "Could not verify domain. Check DNS configuration.")
        case DomainStatus.REMOVED:
            return SEED_ERROR, "This domain was removed; register it again to use it."
        case DomainStatus.DEPLOYING:
            return SEED_PENDING, ("DNS and the TLS certificate are ready; CloudFront is "
                                  "deploying the domain. It goes live within minutes.")
        case DomainStatus.PENDING_VALIDATION:
            pass  # what to do next depends on the last check (below)
        case _:
            assert_never(status)
    if dns_check is None:
        return SEED_PENDING, f"Add a CNAME record for {domain.hostname} pointing to {target}."
    if dns_check.get("transient"):
        if doctor:  # SERVFAIL that the doctor could explain (DNSSEC)
            return SEED_ERROR, doctor
        return SEED_ERROR, (
            "Could not verify domain right now (DNS did not answer). Check DNS configuration; "
            "we retry automatically."
        )
    if not dns_check.get("ok"):
        return SEED_INVALID_CNAME, doctor or f"Please ensure CNAME points to {target}"
    if domain.ownership_required and domain.ownership_verified_at is None:
        return SEED_PENDING, (
            f"Add the TXT record {domain.ownership_record_name} to prove you own the domain."
        )
    if doctor:  # DNS points at us, but e.g. a CAA record stops the certificate
        return SEED_PENDING, doctor
    waiting = _pending_wait_words(domain.checks if isinstance(domain.checks, dict) else {})
    if waiting:
        return SEED_PENDING, waiting
    return SEED_PENDING, (
        "DNS is set up correctly; the TLS certificate is being issued. This usually takes a "
        "few minutes."
    )


def _pending_wait_words(checks: dict[str, Any]) -> str:
    """DNS is right but nothing is requested yet: a CAA record that forbids Amazon, a held
    certificate budget, or a wait on AWS (workflow.checks writes these in words)."""
    caa = checks.get("caa") or {}
    if caa.get("ok") is False and caa.get("detail"):
        return str(caa["detail"])
    certificate = checks.get("certificate") or {}
    if certificate.get("held") and certificate.get("detail"):
        return str(certificate["detail"])
    for name in ("cdn", "certificate"):
        record = checks.get(name) or {}
        if record.get("wait") and record.get("detail"):
            return str(record["detail"])
    return ""


def edge_truth_for_hostname(hostname: str) -> CustomDomain | None:
    """The record whose state the edge item for `hostname` must reflect.

    The live record when there is one, else the most recent record (a tombstone).
    """
    live = live_domain_for_hostname(hostname)
    if live is not None:
        return live
    return (
        CustomDomain.objects.select_related("workspace")
        .filter(hostname=hostname)
        .order_by("-edge_version", "-id")
        .first()
    )


def edge_item_for(domain: CustomDomain) -> dict[str, Any]:
    """The DynamoDB item (plain values) the edge should hold for this record."""
    active = domain.is_edge_routed
    return {
        "domain": domain.hostname,
        "workspaceId": domain.workspace.slug,
        "status": "active" if active else "inactive",
        "createdAt": edge_store.item_timestamp(domain.created_at),
        "verifiedAt": edge_store.item_timestamp(domain.verified_at),
        "updatedAt": edge_store.item_timestamp(domain.updated_at),
        "version": domain.edge_version,
        **edge_redirect_attributes(domain),
    }


def edge_redirect_target(domain: CustomDomain) -> CustomDomain | None:
    """The target a redirect domain's edge item names, or None while it must not name one.

    A redirect is projected only while its target is routed at the edge, is a domain of the
    same workspace and is not itself a redirect (docs/redirects.md): until then (a pair
    registered together, or a target that stopped routing) the redirect domain serves its
    workspace like any domain, and the edge never redirects to a host that does not answer.
    """
    if domain.redirect_to_id is None or domain.redirect_code is None:
        return None
    target = domain.redirect_to
    if (target is None or target.pk == domain.pk or target.workspace_id != domain.workspace_id
            or not target.is_edge_routed or target.redirect_to_id is not None):
        return None
    return target


def edge_redirect_attributes(domain: CustomDomain) -> dict[str, Any]:
    """`redirectTo` / `redirectCode` for a routed redirect domain's item; {} otherwise."""
    target = edge_redirect_target(domain) if domain.is_edge_routed else None
    if target is None:
        return {}
    return {"redirectTo": target.hostname, "redirectCode": int(domain.redirect_code or 0)}


# --- plan state and removal reasons ---------------------------------------


def live_domains_in_detach_order(workspace: Workspace) -> QuerySet[CustomDomain]:
    """A workspace's live domains, the first to detach over a plan limit first.

    Redirect domains first, then newest first: the extras detached are redirects before any
    domain that serves the site (a pair over the limit loses its redirect, never its
    primary), then the newest domains; the oldest are kept. A redirect counts like any
    domain (docs/redirects.md). One rule for `veai.plans` (which detaches) and the plan
    state endpoint (which names what will be detached).
    """
    is_plain = Case(When(redirect_to__isnull=False, then=Value(0)), default=Value(1))
    return (CustomDomain.objects.filter(workspace=workspace, status__in=LIVE_STATUSES)
            .order_by(is_plain, "-created_at", "-id"))


def workspace_plan_state(workspace: Workspace) -> dict[str, Any]:
    """What the frontend shows about a workspace's plan: limit, usage, and any grace period.

    `at_risk` lists the live domains that will be detached at `grace_until` unless the
    workspace gets back within its limit: the first ones in `live_domains_in_detach_order`
    above the limit (the rule `veai.plans` applies at the deadline), so the answer
    matches what will happen.
    """
    live = list(live_domains_in_detach_order(workspace).values_list("hostname", flat=True))
    limit = workspace.domain_limit
    grace = PlanGrace.objects.filter(workspace=workspace, resolved_at__isnull=True).first()
    at_risk: list[dict[str, Any]] = []
    if grace is not None:
        excess = max(0, len(live) - max(0, grace.limit))
        at_risk = [{"hostname": h, "detach_after": grace.detach_after} for h in live[:excess]]
    return {
        "workspace": workspace.slug,
        "plan": workspace.plan,
        "domain_limit": limit,
        "domains_used": len(live),
        "can_register": len(live) < limit,
        "over_limit": len(live) > limit,
        "grace_until": grace.detach_after if grace is not None else None,
        "warned_at": grace.warned_at if grace is not None else None,
        "at_risk": at_risk,
    }


def open_plan_grace_deadline(workspace: Workspace) -> Any:
    """The detachment deadline of the workspace's open grace period, or None."""
    return (PlanGrace.objects.filter(workspace=workspace, resolved_at__isnull=True)
            .values_list("detach_after", flat=True).first())


REMOVAL_EVENTS_ATTR = "removal_events"


def removal_events_prefetch() -> Prefetch[str, QuerySet[DomainEvent], str]:
    """What `domain_removal` reads, fetched for a whole list in one query.

    A list of removed domains otherwise costs two queries a domain (the removal event and
    whether a plan detached it).
    """
    return Prefetch("events", to_attr=REMOVAL_EVENTS_ATTR, queryset=DomainEvent.objects.filter(
        Q(to_status=DomainStatus.REMOVED) | Q(kind=EventKind.PLAN_DETACHED)))


def domain_removal(domain: CustomDomain) -> dict[str, str] | None:
    """Why a removed domain was removed, as a stable code and the audit event's message.

    Codes: `plan_limit` (detached at the end of a downgrade's grace period),
    `workspace_deleted` (deleted in ve.ai), `dns_not_pointing` (misconfigured past its grace),
    `removed_by_member` (the API), `removed_by_staff` (admin, commands), `removed` (anything
    else). Derived from the audit trail, so old records get a reason too. Reads the events
    `removal_events_prefetch` fetched when the caller used it, else queries them.
    """
    if domain.status != DomainStatus.REMOVED:
        return None
    fetched: list[DomainEvent] | None = getattr(domain, REMOVAL_EVENTS_ATTR, None)
    events = fetched if fetched is not None else list(
        DomainEvent.objects.filter(Q(domain=domain), Q(to_status=DomainStatus.REMOVED)
                                   | Q(kind=EventKind.PLAN_DETACHED)))
    removals = [e for e in events if e.to_status == DomainStatus.REMOVED]
    if not removals:
        return {"code": "removed", "message": ""}
    event = max(removals, key=lambda e: (e.created_at, e.pk))
    plan_detached = any(e.kind == EventKind.PLAN_DETACHED and e.created_at >= event.created_at
                        for e in events)
    if plan_detached or event.source == "system:plan":
        code = "plan_limit"
    elif event.source == "service:sync":
        code = "workspace_deleted"
    elif event.from_status == DomainStatus.MISCONFIGURED and event.source.startswith("system"):
        code = "dns_not_pointing"
    elif event.source == "api":
        code = "removed_by_member"
    elif event.source.startswith(("admin", "command", "staff")):
        code = "removed_by_staff"
    else:
        code = "removed"
    return {"code": code, "message": event.message}
