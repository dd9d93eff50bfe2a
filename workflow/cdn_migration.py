"""Move live domains between the two CDN strategies without dropping traffic.

Each domain advances one step per pass and records where it is in `checks["migration"]`,
so the command is resumable: run it again (or keep running it) until nothing is left.

To tenants (per-domain distribution -> SaaS Manager tenant):
  1. create the tenant with the domain's own, already issued ACM certificate (no TLS gap)
     and OnDomainTakeover=allow: CloudFront moves the alias from the old distribution to the
     tenant once DNS points at it (it does: the CNAME target is CloudFront), never serving
     it from neither;
  2. wait until the tenant is Deployed;
  3. the record points at the tenant; the old distribution (alias-less now) is disabled and
     deleted by later passes.

Back (tenant -> per-domain distribution), for leaving SaaS Manager:
  1. an ACM certificate validated by DNS (requested here; the customer must add its
     validation CNAME: the command lists who still has to);
  2. a distribution cloned from the template, with that certificate and no alias yet, Deployed;
  3. the tenant is disabled and, once that is Deployed, the domain moves to the distribution
     with UpdateDomainAssociation (AWS requires a disabled source: a short window in which
     CloudFront is deploying the move); the tenant is deleted by later passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from domains.integrations import acm, cdn
from domains.integrations.errors import IntegrationError
from domains.models import EDGE_ROUTED_STATUSES, CustomDomain, EventKind
from workflow import lifecycle

TO_TENANTS = "saas-tenant"
TO_DISTRIBUTIONS = "distribution-per-domain"


@dataclass
class MigrationReport:
    counts: dict[str, int] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)

    def add(self, outcome: str, hostname: str) -> None:
        key = outcome.split(":")[0]
        self.counts[key] = self.counts.get(key, 0) + 1
        if outcome.startswith("waiting") and len(self.waiting) < 100:
            self.waiting.append(f"{hostname}: {outcome}")


def _on_tenant(domain: CustomDomain) -> bool:
    # Tenant ids are "dt_..."; distribution ids are 13-14 upper-case characters.
    return domain.cdn_resource_id.startswith("dt_")


def domains_to_migrate(*, to: str) -> list[int]:
    qs = CustomDomain.objects.filter(status__in=EDGE_ROUTED_STATUSES).exclude(cdn_resource_id="")
    ids = []
    for pk, resource, checks in qs.order_by("pk").values_list("pk", "cdn_resource_id", "checks"):
        on_tenant = resource.startswith("dt_")
        in_flight = bool((checks or {}).get("migration"))
        if in_flight or on_tenant != (to == TO_TENANTS):
            ids.append(pk)
    return ids


def _save(domain: CustomDomain, state: dict[str, Any] | None, **fields: Any) -> None:
    checks = dict(domain.checks or {})
    if state is None:
        checks.pop("migration", None)
    else:
        checks["migration"] = {**state, "at": timezone.now().isoformat()}
    CustomDomain.objects.filter(pk=domain.pk).update(checks=checks, updated_at=timezone.now(),
                                                     **fields)
    domain.checks = checks
    for key, value in fields.items():
        setattr(domain, key, value)


def domain_migrate_step(*, domain_id: int, to: str, dry_run: bool = False) -> str:
    """Advance one domain by one step; returns what happened (or would)."""
    domain = CustomDomain.objects.select_related("workspace").get(pk=domain_id)
    state = dict((domain.checks or {}).get("migration") or {})
    if dry_run:
        return f"would migrate ({state.get('step', 'start')})"
    if to == TO_TENANTS:
        return _to_tenant(domain, state)
    return _to_distribution(domain, state)


def _finish_old(domain: CustomDomain, state: dict[str, Any], strategy: Any) -> str:
    detachment = strategy.detach(resource_id=state["old"])
    # An old tenant's managed certificate stays in our ACM unless we delete it (nothing
    # documented deletes it with the tenant): kept in the state until it is gone.
    managed = detachment.certificate_arn or state.get("managed_certificate", "")
    if managed and managed != domain.certificate_arn:
        state = {**state, "managed_certificate": managed}
    else:
        managed = ""
    if not detachment.done:
        _save(domain, {**state, "step": "deleting-old"})
        return "waiting: old resource " + detachment.detail
    if managed:
        # The app's IAM policy deletes only tagged certificates. A failure here (already
        # gone, or refused) is left to the delete below to report.
        with contextlib.suppress(IntegrationError):
            acm.tag_as_ours(managed)
        try:
            acm.delete_certificate(managed)
        except IntegrationError as exc:
            _save(domain, {**state, "step": "deleting-old"})
            return f"waiting: the old tenant's managed certificate: {exc.message}"
    _save(domain, None)
    return "migrated"


def _to_tenant(domain: CustomDomain, state: dict[str, Any]) -> str:
    tenants = cdn.SaasTenant()
    if state.get("step") == "deleting-old":
        return _finish_old(domain, state, cdn.DistributionPerDomain())
    if not domain.certificate_arn:
        return "skipped: no certificate to carry over"
    if not state.get("new"):
        attachment = tenants.attach(
            hostname=domain.hostname, certificate_arn=domain.certificate_arn,
            reference=f"vedomains-{domain.pk}", workspace_id=domain.workspace.slug,
            takeover=True)
        state = {"to": TO_TENANTS, "old": domain.cdn_resource_id, "new": attachment.resource_id,
                 "step": "deploying"}
        _save(domain, state)
    tenant = tenants.state(resource_id=state["new"])
    if tenant is None:
        _save(domain, None)
        return "waiting: the new tenant vanished; starting over"
    if not tenant.deployed or domain.hostname not in tenant.domains:
        return f"waiting: tenant {tenant.status}"
    with transaction.atomic():
        _save(domain, {**state, "step": "deleting-old"}, cdn_resource_id=state["new"])
        lifecycle.event_record(domain=domain, kind=EventKind.CDN_ATTACHED, source="system:migrate",
                              message="Moved to a CloudFront SaaS Manager tenant.",
                              data={"strategy": TO_TENANTS, "resource_id": state["new"],
                                    "from": state["old"]})
    return _finish_old(domain, {**state, "step": "deleting-old"}, cdn.DistributionPerDomain())


def _to_distribution(domain: CustomDomain, state: dict[str, Any]) -> str:
    tenants, dists = cdn.SaasTenant(), cdn.DistributionPerDomain()
    if state.get("step") == "deleting-old":
        return _finish_old(domain, state, tenants)
    arn = domain.certificate_arn
    if not arn:
        arn = acm.request_certificate(hostname=domain.hostname,
                                      key=f"vedomains:{domain.pk}:{domain.hostname}",
                                      tags={"vedomains-domain-id": str(domain.pk)})
        _save(domain, {"to": TO_DISTRIBUTIONS, "old": domain.cdn_resource_id, "step": "cert"},
              certificate_arn=arn)
    cert = acm.describe_certificate(arn)
    CustomDomain.objects.filter(pk=domain.pk).update(validation_records=cert.validation_records,
                                                     certificate_status=cert.status)
    if not cert.issued:
        records = ", ".join(f"{r['name']} CNAME {r['value']}" for r in cert.validation_records)
        return f"waiting: certificate {cert.status} (customer adds {records or 'its record'})"
    state.setdefault("old", domain.cdn_resource_id)
    if not state.get("new"):
        new_id = dists.create_without_alias(hostname=domain.hostname, certificate_arn=arn,
                                            reference=f"vedomains-{domain.pk}-back")
        state = {**state, "to": TO_DISTRIBUTIONS, "new": new_id, "step": "new-deploying"}
        _save(domain, state)
    new = dists.state(resource_id=state["new"])
    if new is None or not new.deployed:
        return "waiting: new distribution deploying"
    old = tenants.state(resource_id=state["old"])
    if old is not None and old.enabled:
        tenants.disable(resource_id=state["old"])
        return "waiting: tenant disabling"
    if old is not None and not old.deployed:
        return "waiting: tenant disabling"
    if old is not None and domain.hostname in old.domains:
        tenants.move_domain_to_distribution(hostname=domain.hostname,
                                            distribution_id=state["new"])
    with transaction.atomic():
        _save(domain, {**state, "step": "deleting-old"}, cdn_resource_id=state["new"])
        lifecycle.event_record(domain=domain, kind=EventKind.CDN_ATTACHED, source="system:migrate",
                              message="Moved to a per-domain distribution.",
                              data={"strategy": TO_DISTRIBUTIONS, "resource_id": state["new"],
                                    "from": state["old"]})
    return _finish_old(domain, {**state, "step": "deleting-old"}, tenants)


def domains_migrate(*, to: str, dry_run: bool = False, limit: int | None = None,
                    progress: Callable[[int], None] | None = None) -> MigrationReport:
    report = MigrationReport()
    ids = domains_to_migrate(to=to)[:limit]
    for pk in ids:
        domain = CustomDomain.objects.only("hostname").get(pk=pk)
        try:
            outcome = domain_migrate_step(domain_id=pk, to=to, dry_run=dry_run)
        except IntegrationError as exc:
            outcome = f"waiting: {exc.message}" if not exc.permanent else f"error: {exc.message}"
        report.add(outcome, domain.hostname)
        if progress:
            progress(1)
    return report
