"""Reads: who may see what, and the shapes the interfaces show."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from domains import hostnames
from domains.integrations import edge_store
from domains.models import CustomDomain, DomainStatus, Membership, Workspace


def membership_role(*, user: AbstractBaseUser | AnonymousUser, workspace: Workspace) -> str | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return (
        Membership.objects.filter(user=user, workspace=workspace)
        .values_list("role", flat=True)
        .first()
    )


def staff_may(user: AbstractBaseUser | AnonymousUser, *perms: str) -> bool:
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


def workspaces_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Workspace]:
    if staff_may(user, *WORKSPACE_READ_PERMS):
        return Workspace.objects.all()
    if not getattr(user, "is_authenticated", False):
        return Workspace.objects.none()
    return Workspace.objects.filter(memberships__user=user)


def domains_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[CustomDomain]:
    qs = CustomDomain.objects.select_related("workspace")
    if staff_may(user, *DOMAIN_READ_PERMS):
        return qs
    if not getattr(user, "is_authenticated", False):
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
    if domain.status == DomainStatus.ACTIVE:
        return SEED_VERIFIED, "Domain verified and mapped successfully"
    if domain.status == DomainStatus.MISCONFIGURED:
        return SEED_INVALID_CNAME, (
            f"Please ensure CNAME points to {target}. The domain stops serving if it is "
            "not fixed within the grace period."
        )
    if domain.status == DomainStatus.FAILED:
        return SEED_ERROR, domain.last_error or "Could not verify domain. Check DNS configuration."
    if domain.status == DomainStatus.REMOVED:
        return SEED_ERROR, "This domain was removed; register it again to use it."
    if domain.status == DomainStatus.DEPLOYING:
        return SEED_PENDING, ("DNS and the TLS certificate are ready; CloudFront is deploying "
                              "the domain. It goes live within minutes.")
    if dns_check is None:
        return SEED_PENDING, f"Add a CNAME record for {domain.hostname} pointing to {target}."
    if dns_check.get("transient"):
        return SEED_ERROR, (
            "Could not verify domain right now (DNS did not answer). Check DNS configuration; "
            "we retry automatically."
        )
    if not dns_check.get("ok"):
        return SEED_INVALID_CNAME, f"Please ensure CNAME points to {target}"
    if domain.ownership_required and domain.ownership_verified_at is None:
        return SEED_PENDING, (
            f"Add the TXT record {domain.ownership_record_name} to prove you own the domain."
        )
    waiting = _pending_wait_words(domain.checks if isinstance(domain.checks, dict) else {})
    if waiting:
        return SEED_PENDING, waiting
    return SEED_PENDING, (
        "DNS is set up correctly; the TLS certificate is being issued. This usually takes a "
        "few minutes."
    )


def _pending_wait_words(checks: dict[str, Any]) -> str:
    """DNS is right but nothing is requested yet: a CAA record that forbids Amazon, a held
    certificate budget, or a wait on AWS (domains.checks writes these in words)."""
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
    }
