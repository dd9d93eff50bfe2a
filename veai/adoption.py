"""Adopting the seed's `domain-workspace-mappings` table into Django.

ve.ai may already run the seed's functions, so the table can hold their items. This makes
Django their source of truth without interrupting traffic:

- `active` items: the DNS is checked (the CNAME chain reaches our target) and a certificate
  is found ISSUED (the seed's `certificateArn`, or one requested here with DNS validation
  while the item keeps routing), then the domain is attached the new way (the configured
  CloudFront strategy) and recorded as an active domain. Only then is the DynamoDB item
  stamped with a version, in one conditional write that leaves what the edge reads
  untouched, and re-pushed by the usual edge sync. The item routes throughout.
- `pending_validation` items: registered like a new domain (plan limit, conflicts, a
  DNS-validated certificate); the seed's email-validated certificate is reported, not used.
- unknown workspaces, invalid hostnames and hostnames held by another workspace are
  reported and left as they are; an active item on a name that needs the ownership proof
  by the registration's rule (another workspace held it and never released it) waits,
  still routing, until the TXT record is there.

Every item's progress is kept in `SeedAdoption`, so a run can stop anywhere and the next
one continues; `dry_run` reads (table, DNS, ACM) but writes nothing anywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from domains import queueing, selectors
from domains.errors import DomainError, InvalidInput
from domains.hostnames import HostnameError, validate_custom_hostname
from domains.integrations import acm, cdn, dns, seed_table
from domains.integrations.errors import IntegrationError
from domains.models import CustomDomain, DomainStatus, EventKind, Workspace
from domains.task_names import TaskName
from veai import plans
from veai.models import SeedAdoption
from workflow import lifecycle, services

log = logging.getLogger(__name__)

SOURCE = "command:adopt_seed_table"


@dataclass
class ItemReport:
    hostname: str
    workspace: str
    seed_status: str
    outcome: str  # adopted | would_adopt | waiting_certificate | skipped | already_adopted
    reason: str = ""
    detail: str = ""
    dns_records: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in ("", [])}


class _Skip(Exception):
    def __init__(self, reason: str, detail: str,
                 dns_records: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.dns_records = dns_records or []


def _when(text: str) -> datetime | None:
    try:
        parsed = parse_datetime(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


def _next_version(hostname: str) -> int:
    last = CustomDomain.objects.filter(hostname=hostname).aggregate(v=Max("edge_version"))["v"]
    return int(last or 0) + 1


def _remember(item: seed_table.SeedItem, *, state: str, reason: str = "", detail: str = "",
              certificate_arn: str | None = None, domain: CustomDomain | None = None) -> None:
    defaults: dict[str, Any] = {
        "workspace_slug": item.workspace_id[:200], "seed_status": item.status[:40],
        "seed_item": item.raw, "state": state, "reason": reason, "detail": detail[:2000],
    }
    if certificate_arn is not None:
        defaults["certificate_arn"] = certificate_arn
    if domain is not None:
        defaults["domain"] = domain
    SeedAdoption.objects.update_or_create(hostname=item.domain[:253], defaults=defaults)


def seed_item_adopt(*, item: seed_table.SeedItem, dry_run: bool) -> ItemReport:
    """Adopt one item (or say what adopting it would do); never raises for one bad item."""
    report = ItemReport(item.domain, item.workspace_id, item.status, "skipped")
    try:
        return _adopt(item, report, dry_run=dry_run)
    except _Skip as skip:
        report.outcome, report.reason, report.detail = "skipped", skip.reason, skip.detail
        report.dns_records = skip.dns_records
    except IntegrationError as exc:
        # AWS or DNS trouble: nothing was recorded for this item; the next run retries it.
        report.outcome, report.reason, report.detail = "skipped", "transient", exc.message
    if not dry_run and report.reason not in ("transient", "vedomains_item"):
        _remember(item, state=SeedAdoption.State.SKIPPED, reason=report.reason,
                  detail=report.detail)
    return report


def _adopt(item: seed_table.SeedItem, report: ItemReport, *, dry_run: bool) -> ItemReport:
    if item.version is not None:
        raise _Skip("vedomains_item", "Written by vedomains (it has a version).")
    try:
        hostname = validate_custom_hostname(item.domain)
    except HostnameError as exc:
        raise _Skip("invalid_hostname", exc.message) from exc
    if hostname != item.domain:
        raise _Skip("invalid_hostname", f"Not in normalized form (would be {hostname}).")
    workspace = Workspace.objects.filter(slug=item.workspace_id).first()
    if workspace is None:
        raise _Skip("unknown_workspace",
                    f"No workspace '{item.workspace_id[:100]}' in Django: sync it first.")
    holder = selectors.live_domain_for_hostname(hostname)
    if holder is not None:
        if holder.workspace_id != workspace.id:
            raise _Skip("conflict", f"Held by workspace {holder.workspace.slug} in Django.")
        report.outcome = "already_adopted"
        if not dry_run:
            _remember(item, state=SeedAdoption.State.ADOPTED, domain=holder)
        return report
    if item.status == "pending_validation":
        return _adopt_pending(item, workspace, report, dry_run=dry_run)
    if item.status == "active":
        return _adopt_active(item, workspace, report, dry_run=dry_run)
    raise _Skip("unknown_status", f"Status '{item.status[:40]}' is not one the seed writes.")


def _adopt_pending(item: seed_table.SeedItem, workspace: Workspace, report: ItemReport, *,
                   dry_run: bool) -> ItemReport:
    if dry_run:
        report.outcome, report.detail = "would_adopt", "registered as pending (new certificate)"
        return report
    with transaction.atomic():
        try:
            domain = services.domain_register(workspace=workspace, hostname=item.domain,
                                              by=None, source=SOURCE)
        except DomainError as exc:
            raise _Skip(exc.code, exc.message) from exc
        version = max(domain.edge_version, 0) + 1
        CustomDomain.objects.filter(pk=domain.pk).update(edge_version=version,
                                                         edge_synced_version=version)
        lifecycle.event_record(domain=domain, kind=EventKind.ADOPTED, source=SOURCE,
                              message="Adopted from the seed's table (pending).",
                              data={"seed_item": item.raw})
        if not seed_table.stamp_version(item, version):
            # Changed under us (the seed's validator ran): roll back, retry next run.
            raise _Skip("changed", "The item changed during adoption; run again.")
        _remember(item, state=SeedAdoption.State.ADOPTED, domain=domain,
                  detail=f"seed certificate {item.certificate_arn} not reused"
                  if item.certificate_arn else "")
    report.outcome = "adopted"
    if item.certificate_arn:
        report.detail = (f"The seed's email-validated certificate {item.certificate_arn} is "
                         "not used; delete it once the domain is active.")
    return report


def _ownership_proof(hostname: str, workspace: Workspace) -> bool:
    """True when the registration's TXT rule applies and the proof is there; raises _Skip
    when it applies and the proof is missing (an active item is not given away on the seed's
    word: another workspace may have held the name and left its CNAME pointing at us)."""
    if not services.ownership_proof_required(hostname=hostname, workspace=workspace):
        return False
    if services.ownership_proven(hostname=hostname, workspace=workspace):
        return True
    raise _Skip("ownership_proof_required",
                "Another workspace held this name and never released it: the workspace must "
                "prove DNS control with the TXT record, then run again. The item keeps "
                "routing meanwhile.",
                [services.ownership_txt_record(hostname=hostname, workspace=workspace)])


def _issued_certificate(item: seed_table.SeedItem, ours: str) -> acm.Certificate | None:
    for arn in (item.certificate_arn, ours):
        if arn:
            cert = acm.describe_certificate(arn)
            if cert.issued:
                return cert
    return None


def _adopt_active(item: seed_table.SeedItem, workspace: Workspace, report: ItemReport, *,
                  dry_run: bool) -> ItemReport:
    hostname = item.domain
    routing = dns.check_many([hostname])[hostname].routing
    if not routing.ok:
        reason = "dns_lookup_failed" if routing.transient else "dns_not_pointing"
        raise _Skip(reason, f"Not adopted, still routed by its item: {routing.detail}")
    proven = _ownership_proof(hostname, workspace)
    row = SeedAdoption.objects.filter(hostname=hostname).first()
    ours = row.certificate_arn if row else ""
    cert = _issued_certificate(item, ours)
    if cert is None:
        return _wait_for_certificate(item, report, ours, dry_run=dry_run)
    if dry_run:
        report.outcome = "would_adopt"
        report.detail = f"attach with {cert.arn} ({cdn.strategy().name}), then mark active"
        return report
    strategy = cdn.strategy()
    try:
        attachment = strategy.attach(hostname=hostname, certificate_arn=cert.arn,
                                     reference=f"vedomains-adopt-{hostname}"[:128])
    except IntegrationError as exc:
        if not exc.permanent:
            raise
        # e.g. CNAMEAlreadyExists: the alias still sits on the seed's shared distribution.
        raise _Skip(exc.code or "attach_failed", exc.message) from exc
    now = timezone.now()
    version = _next_version(hostname)
    with transaction.atomic():
        domain = CustomDomain.objects.create(
            hostname=hostname, workspace=workspace, status=DomainStatus.ACTIVE,
            ownership_token=services.ownership_token_for(workspace_id=workspace.pk,
                                                         hostname=hostname),
            ownership_required=proven, ownership_verified_at=now if proven else None,
            certificate_arn=cert.arn, certificate_status=cert.status,
            certificate_requested_at=now, validation_records=cert.validation_records,
            cdn_resource_id=attachment.resource_id, cdn_domain_name=attachment.domain_name,
            verified_at=_when(item.verified_at) or now, activated_at=now,
            next_check_at=now + timedelta(seconds=settings.VEDOMAINS_ACTIVE_RECHECK_SECONDS),
            # The stamped seed item holds `version`; our full item (version + 1) replaces it
            # once this commits, through the usual conditional edge sync.
            edge_version=version + 1, edge_synced_version=version,
        )
        created = _when(item.created_at)
        if created is not None:
            CustomDomain.objects.filter(pk=domain.pk).update(created_at=created)
        lifecycle.event_record(
            domain=domain, kind=EventKind.ADOPTED, source=SOURCE, to_status=domain.status,
            message="Adopted from the seed's table: DNS checked, certificate issued, "
                    "attached.", data={"seed_item": item.raw})
        lifecycle.event_record(domain=domain, kind=EventKind.CDN_ATTACHED, source=SOURCE,
                              data={"strategy": strategy.name,
                                    "resource_id": attachment.resource_id})
        stamped = seed_table.stamp_version(item, version)
        if not stamped:
            transaction.set_rollback(True)
        else:
            _remember(item, state=SeedAdoption.State.ADOPTED, domain=domain,
                      certificate_arn=cert.arn)
            queueing.enqueue_after_commit(TaskName.EDGE_SYNC_HOSTNAME, hostname)
    if not stamped:
        try:
            strategy.detach(resource_id=attachment.resource_id)
        except IntegrationError as exc:
            log.error("%s: could not take down %s: %s", hostname, attachment.resource_id, exc)
        raise _Skip("changed", "The item changed during adoption; run again.")
    report.outcome = "adopted"
    report.detail = f"attached ({strategy.name}: {attachment.resource_id})"
    return report


def _wait_for_certificate(item: seed_table.SeedItem, report: ItemReport, ours: str, *,
                          dry_run: bool) -> ItemReport:
    if dry_run:
        report.outcome = "would_request_certificate"
        report.detail = "no ISSUED certificate: one would be requested (DNS validation)"
        return report
    if not ours:
        ours = acm.request_certificate(
            hostname=item.domain, key=f"vedomains-adopt:{item.domain}",
            tags={"vedomains-adopted": "true", "vedomains-workspace": item.workspace_id[:200]})
    cert = acm.describe_certificate(ours)
    _remember(item, state=SeedAdoption.State.WAITING_CERTIFICATE, reason="certificate_pending",
              detail=f"Waiting for {ours} ({cert.status}).", certificate_arn=ours)
    report.outcome = "waiting_certificate"
    report.detail = (f"Certificate {ours} is {cert.status}; the customer must create the "
                     "validation record, then run again.")
    report.dns_records = [{"purpose": "certificate_validation", **r}
                          for r in cert.validation_records]
    return report


@dataclass
class AdoptionSummary:
    items: list[ItemReport] = field(default_factory=list)
    over_limit: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.items:
            key = item.outcome if item.outcome != "skipped" else f"skipped:{item.reason}"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))


def seed_table_adopt(*, dry_run: bool, limit: int | None = None,
                     progress: Any = None) -> AdoptionSummary:
    """Adopt every item of the table (or the first `limit` not adopted yet)."""
    summary = AdoptionSummary()
    done = set(SeedAdoption.objects.filter(state=SeedAdoption.State.ADOPTED)
               .values_list("hostname", flat=True))
    touched: set[int] = set()
    for item in seed_table.scan_items():
        if item.domain in done:
            continue
        if limit is not None and len(summary.items) >= limit:
            break
        report = seed_item_adopt(item=item, dry_run=dry_run)
        summary.items.append(report)
        if report.outcome == "adopted":
            touched.add(Workspace.objects.values_list("pk", flat=True).get(
                slug=item.workspace_id))
        if progress is not None:
            progress(report)
    # Seed registrations never counted domains against a plan: adopted workspaces above
    # their limit enter the usual grace period (owners emailed) instead of being cut off.
    for workspace in Workspace.objects.filter(pk__in=touched):
        try:
            change = plans.workspace_plan_change(workspace=workspace, plan=workspace.plan,
                                                 source=SOURCE)
        except InvalidInput as exc:
            # A plan name set by hand with no limit known for it: the adoption stands; the
            # report says what staff must fix.
            summary.over_limit.append(f"{workspace.slug} (plan not checked: {exc.message})")
            continue
        if change.outcome == "over_limit":
            summary.over_limit.append(f"{workspace.slug} ({change.live} live, plan "
                                      f"{workspace.plan} allows {change.limit})")
    return summary
