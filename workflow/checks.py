"""Checks: claim the domains that are due, gather what DNS, ACM and CloudFront say, and apply
the verdict `workflow.check_decisions` reaches for each.

Called by Celery tasks and management commands alike. Every function takes ids and
reloads what it needs, so a late or repeated call acts on the current state.

This module is the executor: it claims, reads (DNS for the batch, concurrently with the
certificates; the DNS doctor; the CDN state a decision needs), performs the calls out a
verdict asks for (creating a tenant or distribution, alerts, queued tasks) and writes the
verdict. What to do with what was read is decided in `workflow.check_decisions`, pure
functions tested as a table.

Concurrency rules (STYLE.md, "Concurrency"):
- a check claims its domains (`schedule.domains_claim`) by pushing `next_check_at` forward
  (a lease) in one statement
  before any DNS or AWS call, so two beats or ten workers never check a domain twice at once
  and a crash mid-check cannot loop;
- results are written only if the status is still the one the check saw (the plain waits
  of a batch in one UPDATE per status, which keeps that condition per row);
- status changes go through `lifecycle.domain_transition` (compare-and-swap).

A removed domain that is due is handed to `workflow.cleanup`; the CDN attachment of a
domain that is ready happens here, as the last step of its pending check.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar, assert_never, cast

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from domains import dns_doctor, dns_first, hostnames, queueing
from domains.integrations import acm, cdn, dns
from domains.integrations.cdn import ValidationTokenHost
from domains.integrations.errors import IntegrationError
from domains.models import LIVE_STATUSES, CustomDomain, DomainStatus, EventKind, Prevalidation
from domains.task_names import TaskName
from workflow import capacity_alerts, certificate_budget, certificates, lifecycle
from workflow.check_decisions import (
    CERTIFICATE_READ_INTERVAL,
    TRANSIENT_RETRY,
    Alert,
    AlertKind,
    ChecksDict,
    Effect,
    Outcome,
    PendingInputs,
    PrevalidationFix,
    TenantCertificate,
    TenantInputs,
    TenantPlan,
    Verdict,
    acm_alert,
    activation_verdict,
    attach_refused_verdict,
    attached_record,
    budget_held_verdict,
    certificate_read_needed,
    checks_of,
    deploying_verdict,
    dns_record,
    doctor_wanted,
    live_verdict,
    managed_view,
    ownership,
    pending_verdict,
    pending_wants_caa,
    prevalidation_fix,
    prevalidation_reads,
    tenant_acm_certificate,
    tenant_acm_view,
    tenant_caa_verdict,
    tenant_created_message,
    tenant_pending_verdict,
    tenant_plan,
    tenant_vanished,
    tenant_wants_state,
)
from workflow.cleanup import domain_cleanup
from workflow.schedule import domains_claim

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["CERTIFICATE_READ_INTERVAL", "TRANSIENT_RETRY", "CheckOutcome", "domain_check",
           "domains_check_batch"]

# A check that raised a permanent integration error or an unexpected exception: our side
# or AWS's answer outside a verdict path, never the customer's fault, so the domain is not
# failed for it. It is retried at this slower pace for as long as it lasts (the error is
# in last_error and the admin's "has error" filter), and recovers by itself once fixed.
CHECK_ERROR_RETRY = timedelta(minutes=5)
ACM_THREADS = 16
# What the DNS doctor found is kept in the worker's memory this long at most (less for a
# hostname whose answer's TTL is shorter): a hostname's facts under its routing answer, so
# an unchanged answer (a domain checked every few seconds in its fast window) is diagnosed
# again without a lookup; and the answers a zone's hostnames share (NS, DNSSEC, wildcard,
# CAA up the tree), so a zone whose hostnames are spread over many batches is asked about
# once. A constant: it bounds how stale "why" can be; no operator needs to tune it.
DOCTOR_FACTS_TTL = 300
# Past this many hostnames the memory is emptied (a worker's share stays a few MB).
DOCTOR_MEMORY_HOSTS = 50_000
# Emptying Django's cache (tests do between tests) empties every worker's memory too.
DOCTOR_GENERATION_KEY = "domains:checks:doctor:generation"


@dataclass
class CheckOutcome:
    domain_id: int
    hostname: str
    outcome: str  # an Outcome, or the cleanup's own outcome for a removed domain
    status: str = ""
    detail: str = ""

    def __post_init__(self) -> None:
        # Plain strings, as before the enums: callers count, print and serialise them.
        self.outcome = str(self.outcome)
        self.status = str(self.status)


# --- the batch ------------------------------------------------------------------------------


def domain_check(*, domain_id: int, source: str = "system:check", force: bool = False
                 ) -> CheckOutcome:
    outcomes = domains_check_batch(domain_ids=[domain_id], source=source, force=force)
    if outcomes:
        return outcomes[0]
    return CheckOutcome(domain_id, "", Outcome.SKIPPED,
                        detail="not due or claimed by another worker")


def domains_check_batch(*, domain_ids: Iterable[int], source: str = "system:check",
                  force: bool = False, now: datetime | None = None) -> list[CheckOutcome]:
    """Check a batch: claim, resolve DNS concurrently, read certificates, then decide each."""
    now = now or timezone.now()
    won = domains_claim(domain_ids, now=now, force=force)
    if not won:
        return []
    domains = list(CustomDomain.objects.select_related("workspace").filter(pk__in=won))
    outcomes: list[CheckOutcome] = []

    for domain in [d for d in domains if d.status == DomainStatus.REMOVED]:
        outcomes.append(_guarded(domain, _cleanup_outcome))
    live = [d for d in domains if d.status in LIVE_STATUSES]
    for domain in [d for d in domains if d not in live and d.status != DomainStatus.REMOVED]:
        # Failed domains have nothing left to check; drop them from the schedule.
        CustomDomain.objects.filter(pk=domain.pk).update(next_check_at=None)
        outcomes.append(CheckOutcome(domain.pk, domain.hostname, Outcome.SKIPPED, domain.status))
    if not live:
        return outcomes

    arns = [d.certificate_arn for d in live if certificate_read_needed(d, now)]
    # ACM reads run in threads while DNS resolves: the two wait on different servers.
    with ThreadPoolExecutor(max_workers=max(1, min(ACM_THREADS, len(arns)))) as pool:
        pending_certs = pool.map(certificates.certificate_describe_or_none, arns)
        dns_results = dns.check_many(
            [d.hostname for d in live],
            txt_for=[d.hostname for d in live
                     if d.ownership_required and d.ownership_verified_at is None],
            # Apex domains: A/AAAA records to the anycast IPs instead of a CNAME.
            apex_for=[d.hostname for d in live
                      if hostnames.apex_supported() and hostnames.is_apex(d.hostname)],
        )
        certs = dict(zip(arns, pending_certs, strict=True))
    diagnoses = _dns_doctor(live, dns_results, now=now)
    waits: list[tuple[CustomDomain, Verdict]] = []
    for domain in live:
        result = dns_results[domain.hostname]
        decided = _guarded(domain, partial(
            _decide, result=result, cert=certs.get(domain.certificate_arn), now=now,
            source=source, diagnosis=diagnoses.get(domain.hostname, [])))
        if isinstance(decided, CheckOutcome):
            outcomes.append(decided)
        elif decided.plain_wait:
            waits.append((domain, decided))
        else:
            outcomes.append(_guarded(domain, partial(_apply, verdict=decided, source=source,
                                                     now=now)))
    return outcomes + _save_waits(waits, now=now, source=source)


def _dns_doctor(live: list[CustomDomain], results: dict[str, dns.DnsResult], *,
                now: datetime) -> dict[str, list[dns_doctor.DiagnosisDict]]:
    """Why DNS is wrong, for the domains whose DNS is (docs/dns-doctor.md).

    Which domains are looked at is `check_decisions.doctor_wanted`; the diagnosis is made
    with this check's time from facts looked up now, or kept from an earlier check whose
    routing answer was the same (`_DoctorMemory`).
    """
    wanted: dict[str, tuple[str, bool]] = {}
    for domain in live:
        light = doctor_wanted(domain, results[domain.hostname].routing)
        if light is not None:
            wanted[domain.hostname] = (hostnames.zone_of(domain.hostname), light)
    if not wanted:
        return {}
    memory = _doctor_memory()
    keys = {host: (host, light, results[host].routing) for host, (_, light) in wanted.items()}
    facts = {host: f for host, key in keys.items() if (f := memory.recall(key)) is not None}
    missing = {host: wanted[host] for host in wanted if host not in facts}
    if missing:
        try:
            found = dns.gather_facts_many(missing, memory.zones)
        except Exception:  # the doctor only explains; it never stops a check
            log.exception("DNS doctor lookups failed")
            found = {}
        facts.update(found)
        for host, f in found.items():
            memory.remember(keys[host], f)
    apex = hostnames.apex_supported()
    apex_ips = tuple(settings.VEDOMAINS_CDN_APEX_IPS)
    return {
        host: dns_doctor.diagnosis_dicts(dns_doctor.diagnose(
            f, target=settings.VEDOMAINS_CNAME_TARGET, routing_ok=results[host].routing.ok,
            apex=apex and hostnames.is_apex(host), apex_ips=apex_ips, now=now))
        for host, f in facts.items()
    }


_AnswerKey = tuple[str, bool, dns.RoutingCheck]


@dataclass
class _DoctorMemory:
    """The doctor's answers in this worker's memory (DOCTOR_FACTS_TTL at most).

    In memory rather than in Django's cache: a pass over the pending crowd would write an
    entry per hostname and per zone, which a local-memory cache (development, the
    benchmarks) culls at 300 entries, and which other workers rarely need within minutes.
    """

    generation: str = ""
    zones: dns.FactsCache = field(default_factory=dns.FactsCache)
    zones_until: float = 0.0
    facts: dict[_AnswerKey, tuple[float, dns.DnsFacts]] = field(default_factory=dict)

    def recall(self, key: _AnswerKey) -> dns.DnsFacts | None:
        kept = self.facts.get(key)
        return kept[1] if kept is not None and kept[0] > time.monotonic() else None

    def remember(self, key: _AnswerKey, facts: dns.DnsFacts) -> None:
        """Facts a lookup could not complete are not kept, nor any past their shortest TTL."""
        if facts.transient or facts.dnssec_broken or facts.incomplete:
            return
        ttls = [t for t in (facts.cname_ttl, facts.address_ttl, facts.negative_ttl)
                if t is not None]
        keep = min([DOCTOR_FACTS_TTL, *ttls])
        if keep <= 0:  # a TTL of 0: the zone asks not to be cached at all
            return
        if len(self.facts) >= DOCTOR_MEMORY_HOSTS:
            self.facts.clear()
        self.facts[key] = (time.monotonic() + keep, facts)


_memory = _DoctorMemory()


def _doctor_memory() -> _DoctorMemory:
    """This worker's memory, emptied when it is older than DOCTOR_FACTS_TTL (the zones'
    answers) or when Django's cache was emptied (everything)."""
    global _memory
    try:
        cache.add(DOCTOR_GENERATION_KEY, secrets.token_hex(8), timeout=None)
        generation = str(cache.get(DOCTOR_GENERATION_KEY) or "")
    except Exception:  # without the cache, the memory still expires with time
        log.exception("DNS doctor generation read failed")
        generation = _memory.generation
    if generation != _memory.generation:
        _memory = _DoctorMemory(generation=generation)
    if _memory.zones_until <= time.monotonic():
        _memory.zones = dns.FactsCache()
        _memory.zones_until = time.monotonic() + DOCTOR_FACTS_TTL
    return _memory


def _cleanup_outcome(domain: CustomDomain) -> CheckOutcome:
    return CheckOutcome(domain.pk, domain.hostname, domain_cleanup(domain_id=domain.pk),
                        DomainStatus.REMOVED)


def _guarded(domain: CustomDomain, fn: Callable[[CustomDomain], T]) -> T | CheckOutcome:
    """One domain's failure must not stop the batch; it is recorded and retried later."""
    try:
        return fn(domain)
    except Exception as exc:
        log.exception("check of %s failed", domain.hostname)
        transient = not (isinstance(exc, IntegrationError) and exc.permanent)
        CustomDomain.objects.filter(pk=domain.pk).update(
            last_error=str(exc)[:2000],
            next_check_at=timezone.now() + (TRANSIENT_RETRY if transient else CHECK_ERROR_RETRY),
        )
        return CheckOutcome(domain.pk, domain.hostname, Outcome.ERROR, domain.status, str(exc))


# --- applying a verdict ---------------------------------------------------------------------


def _base_updates(now: datetime) -> dict[str, Any]:
    return {"last_checked_at": now, "check_count": F("check_count") + 1}


def _save_check(domain: CustomDomain, checks: ChecksDict, updates: dict[str, Any]) -> bool:
    """Write check results only if the status is still what this check saw."""
    return CustomDomain.objects.filter(pk=domain.pk, status=domain.status).update(
        checks=checks, updated_at=timezone.now(), **updates) == 1


def _raise_alert(alert: Alert) -> None:
    match alert.kind:
        case AlertKind.CAPACITY:
            capacity_alerts.capacity_alert_raise(code=alert.code, message=alert.message,
                                                 hostname=alert.hostname)
        case AlertKind.UNEXPECTED:
            capacity_alerts.unexpected_answer_alert_raise(code=alert.code, message=alert.message,
                                                          hostname=alert.hostname)
        case _:
            assert_never(alert.kind)


def _announce(domain: CustomDomain, verdict: Verdict) -> None:
    """The verdict's alerts and queued tasks, before its results are written."""
    for alert in verdict.alerts:
        _raise_alert(alert)
    for task_name in verdict.enqueue:
        queueing.enqueue_after_commit(task_name, domain.pk)


def _apply(domain: CustomDomain, verdict: Verdict, *, source: str, now: datetime
           ) -> CheckOutcome:
    """Write a verdict: its results with the compare-and-swap on the status the check saw,
    and its status change (if any) in the same transaction."""
    _announce(domain, verdict)
    updates = {**_base_updates(now), **verdict.updates}
    t = verdict.transition
    if t is None:
        if not _save_check(domain, verdict.checks, updates):
            return CheckOutcome(domain.pk, domain.hostname, Outcome.SKIPPED, domain.status,
                                "changed during check")
        return CheckOutcome(domain.pk, domain.hostname, verdict.outcome, verdict.status,
                            verdict.detail)
    with transaction.atomic():
        # Both or neither: results about a status the domain no longer has are not kept.
        _save_check(domain, verdict.checks, updates)
        applied = lifecycle.domain_transition(
            domain=domain, to=t.to, allowed_from=t.allowed_from, source=source,
            message=t.message, data=t.data, updates=t.updates)
    task_name = t.enqueue_if_applied if applied else t.enqueue_if_lost
    if task_name:
        queueing.enqueue_after_commit(task_name, domain.pk)
    if applied or t.lost is None:
        return CheckOutcome(domain.pk, domain.hostname, verdict.outcome, verdict.status,
                            verdict.detail)
    return CheckOutcome(domain.pk, domain.hostname, t.lost,
                        verdict.status if t.lost_status is None else t.lost_status,
                        verdict.detail if t.lost_detail is None else t.lost_detail)


def _save_waits(waits: list[tuple[CustomDomain, Verdict]], *, now: datetime, source: str
                ) -> list[CheckOutcome]:
    """The batch's plain waits (no status change, nothing to call): one UPDATE for the rows
    that saw the same status and write the same fields.

    The status the check saw stays in the UPDATE's condition, so it is still a
    compare-and-swap per row: a row whose status changed meanwhile is not written, and is
    reported skipped.
    """
    groups: dict[tuple[str, tuple[str, ...]], list[tuple[CustomDomain, Verdict]]] = {}
    for domain, verdict in waits:
        groups.setdefault((domain.status, tuple(sorted(verdict.updates))), []).append(
            (domain, verdict))
    outcomes: list[CheckOutcome] = []
    for (status, fields), group in groups.items():
        if len(group) == 1:
            domain, verdict = group[0]
            outcomes.append(_guarded(domain, partial(_apply, verdict=verdict, source=source,
                                                     now=now)))
            continue
        try:
            written = _write_group(status, fields, group, now=now)
        except Exception:
            log.exception("writing %d check results at once failed; one by one", len(group))
            outcomes += [_guarded(d, partial(_apply, verdict=v, source=source, now=now))
                         for d, v in group]
            continue
        if len(written) != len(group):
            log.info("%d of %d check results not written: the status changed meanwhile",
                     len(group) - len(written), len(group))
        outcomes += [
            CheckOutcome(d.pk, d.hostname, v.outcome, v.status, v.detail) if d.pk in written
            else CheckOutcome(d.pk, d.hostname, Outcome.SKIPPED, d.status,
                              "changed during check")
            for d, v in group]
    return outcomes


def _write_group(status: str, fields: tuple[str, ...],
                 group: list[tuple[CustomDomain, Verdict]], *, now: datetime) -> set[int]:
    """One UPDATE for rows that saw `status`; the ids it wrote.

    On PostgreSQL an `UPDATE ... FROM (VALUES ...) RETURNING id`: Django's bulk_update
    builds a CASE per field and row, which cost more CPU than the round trips it saved
    (a profile of the pass over the pending crowd). Elsewhere (SQLite in development)
    bulk_update, then the rows that moved on are read back.
    """
    stamp = timezone.now()
    by_name = {f.name: f for f in CustomDomain._meta.concrete_fields}
    model_fields = [by_name[name] for name in ("checks", *fields)]
    if connection.vendor != "postgresql":
        rows = []
        for domain, verdict in group:
            row = CustomDomain(pk=domain.pk, checks=verdict.checks, last_checked_at=now,
                               updated_at=stamp, **verdict.updates)
            row.check_count = F("check_count") + 1  # bulk_update writes an expression as is
            rows.append(row)
        CustomDomain.objects.filter(status=status).bulk_update(
            rows, ["checks", "last_checked_at", "check_count", "updated_at", *fields])
        ids = [d.pk for d, _ in group]
        return set(CustomDomain.objects.filter(pk__in=ids, status=status, last_checked_at=now)
                   .values_list("pk", flat=True))
    quote = connection.ops.quote_name
    columns = [quote(str(f.column)) for f in model_fields]  # concrete fields: never None
    row_sql = "(%s, " + ", ".join(f"%s::{f.db_type(connection)}" for f in model_fields) + ")"
    params: list[Any] = []
    for domain, verdict in group:
        params.append(domain.pk)
        for f in model_fields:
            value = verdict.checks if f.name == "checks" else verdict.updates[f.name]
            params.append(f.get_db_prep_save(value, connection))
    sql = (
        f"UPDATE {quote(CustomDomain._meta.db_table)} AS d "
        f"SET {', '.join(f'{c} = v.{c}' for c in columns)}, "
        "last_checked_at = %s, check_count = d.check_count + 1, updated_at = %s "
        f"FROM (VALUES {', '.join([row_sql] * len(group))}) AS v(id, {', '.join(columns)}) "
        "WHERE d.id = v.id AND d.status = %s RETURNING d.id"
    )
    with connection.cursor() as cursor:
        # The SET clause's two values come first in the statement, then the rows.
        cursor.execute(sql, [now, stamp, *params, status])
        return {row[0] for row in cursor.fetchall()}


# --- gathering the inputs of a decision -------------------------------------------------------


def _decide(domain: CustomDomain, result: dns.DnsResult, cert: acm.Certificate | None, *,
            now: datetime, source: str,
            diagnosis: list[dns_doctor.DiagnosisDict] | None = None) -> Verdict | CheckOutcome:
    """The verdict for one domain; the calls out it needs on the way are made here (a
    CheckOutcome when one of them already wrote the result)."""
    routing = result.routing
    checks = checks_of(domain)
    checks["dns"] = dns_record(routing, now, diagnosis)
    status = DomainStatus(domain.status)
    match status:
        case DomainStatus.PENDING_VALIDATION:
            return _decide_pending(domain, result, cert, checks, now=now, source=source)
        case DomainStatus.DEPLOYING:
            state = (cdn.strategy_for_resource(domain.cdn_resource_id).state(
                resource_id=domain.cdn_resource_id) if domain.cdn_resource_id else None)
            return deploying_verdict(domain, state, checks, {}, now=now)
        case DomainStatus.ACTIVE | DomainStatus.MISCONFIGURED:
            if not routing.transient:
                # Certificate renewal watch: at most one ACM look per domain per interval.
                # It adds its record ("certificate_renewal") to this check's.
                certificates.certificate_watch_live(
                    domain=domain, routing_ok=routing.ok,
                    checks=cast(dict[str, Any], checks), now=now)
            return live_verdict(domain, routing, checks, {}, now=now)
        case DomainStatus.FAILED | DomainStatus.REMOVED:
            raise ValueError(f"{domain.hostname}: a {status} domain is not checked")
        case _:
            assert_never(status)


def _pending_ownership(domain: CustomDomain, result: dns.DnsResult, checks: ChecksDict, *,
                       now: datetime, source: str) -> bool:
    """Is ownership proven (or not required)? Records the TXT lookup when one was made."""
    ownership_ok, record = ownership(domain, result.txt, now)
    if record is None:
        return ownership_ok
    checks["ownership"] = record
    if ownership_ok:
        # Its own compare-and-swap with its event: the event exists only if the proof was
        # recorded, and a check that lost the race records neither.
        with transaction.atomic():
            if CustomDomain.objects.filter(
                pk=domain.pk, status=domain.status, ownership_verified_at__isnull=True
            ).update(ownership_verified_at=now) == 1:
                domain.ownership_verified_at = now
                lifecycle.event_record(domain=domain, kind=EventKind.OWNERSHIP_VERIFIED,
                                       source=source)
    return ownership_ok


def _decide_pending(domain: CustomDomain, result: dns.DnsResult, cert: acm.Certificate | None,
                    checks: ChecksDict, *, now: datetime, source: str) -> Verdict | CheckOutcome:
    """Pending: ownership, then the certificate, then give up, activate, or wait."""
    routing = result.routing
    ownership_ok = _pending_ownership(domain, result, checks, now=now, source=source)
    if _tenant_path(domain):
        return _decide_tenant(domain, result, cert, checks, ownership_ok, now=now,
                              source=source)
    if cert is None and routing.ok and domain.certificate_arn:
        # DNS has just started pointing at us and the batch skipped this certificate (see
        # certificate_read_needed): read it now rather than one check later.
        cert = certificates.certificate_describe_or_none(domain.certificate_arn)
    caa = (dns_first.caa_lookup(domain.hostname) if pending_wants_caa(domain, routing, cert)
           else None)
    verdict = pending_verdict(PendingInputs(domain, result, cert, ownership_ok, checks, {},
                                            now, caa))
    match verdict.effect:
        case Effect.NONE:
            return verdict
        case Effect.REPLACE_MISSING if cert is not None:
            _announce(domain, verdict)
            certificates.certificate_replace_missing(
                domain=domain, cert=cert, checks=dict(verdict.checks), now=now, source=source)
            return CheckOutcome(domain.pk, domain.hostname, verdict.outcome, verdict.status,
                                verdict.detail)
        case Effect.ATTACH if cert is not None:
            _announce(domain, verdict)
            return _attach_and_activate(domain, cert, verdict.checks, verdict.updates,
                                        now=now, source=source)
        case _:
            raise ValueError(f"{domain.hostname}: {verdict.effect} without a certificate")


def _alias_ours(domain: CustomDomain, exc: IntegrationError) -> bool:
    """CNAMEAlreadyExists while our own earlier record for this name (released by a TXT
    proof, or removed and registered again) is still being detached."""
    return exc.code == "CNAMEAlreadyExists" and CustomDomain.objects.filter(
        hostname=domain.hostname, status=DomainStatus.REMOVED
    ).exclude(cdn_resource_id="").exists()


def _attach_and_activate(domain: CustomDomain, cert: acm.Certificate, checks: ChecksDict,
                         updates: dict[str, Any], *, now: datetime, source: str) -> Verdict:
    resource_id = domain.cdn_resource_id
    # A record keeps the strategy it was attached with (a switch applies to new ones).
    strategy = cdn.strategy_for_resource(resource_id) if resource_id else cdn.strategy()
    if not resource_id:
        try:
            attachment = strategy.attach(hostname=domain.hostname, certificate_arn=cert.arn,
                                         reference=f"vedomains-{domain.pk}",
                                         workspace_id=domain.workspace.slug)
        except IntegrationError as exc:
            return attach_refused_verdict(domain, exc, checks, updates, now=now,
                                          ours=_alias_ours(domain, exc))
        resource_id = attachment.resource_id
        with transaction.atomic():
            # Recorded before activation and whatever the status, so a removal racing with
            # this check still detaches it.
            stored = CustomDomain.objects.filter(pk=domain.pk, cdn_resource_id="").update(
                cdn_resource_id=attachment.resource_id, cdn_domain_name=attachment.domain_name)
            if stored:
                lifecycle.event_record(domain=domain, kind=EventKind.CDN_ATTACHED, source=source,
                                       data={"strategy": strategy.name,
                                             "resource_id": resource_id})
        if not stored:
            resource_id = _keep_recorded_attachment(domain, attachment.resource_id, strategy)
    capacity_alerts.capacity_alerts_resolve()
    checks = checks.copy()
    checks["cdn"] = attached_record(strategy.name, resource_id, now)
    return activation_verdict(domain, strategy.state(resource_id=resource_id), checks, updates,
                              now=now, message="DNS, ownership and certificate verified; attached.")


def _keep_recorded_attachment(domain: CustomDomain, ours: str,
                              strategy: cdn.CdnStrategy) -> str:
    """Another check recorded an attachment first: keep that one, take ours down.

    The lease makes this rare (a check outliving its lease), but a second distribution
    holding the alias must not be left behind.
    """
    recorded = (CustomDomain.objects.filter(pk=domain.pk)
                .values_list("cdn_resource_id", flat=True).first()) or ours
    if recorded != ours:
        log.warning("%s: duplicate attachment %s; keeping %s", domain.hostname, ours, recorded)
        try:
            strategy.detach(resource_id=ours)
        except IntegrationError as exc:
            log.error("%s: could not take down duplicate %s: %s", domain.hostname, ours, exc)
    return recorded


# --- CloudFront SaaS Manager tenants ------------------------------------------------------------


def _tenant_path(domain: CustomDomain) -> bool:
    """SaaS Manager: a tenant, with a CloudFront-managed certificate unless pre-validated.

    A record keeps the strategy it was attached with (a switch applies to new attachments).
    """
    if domain.cdn_resource_id:
        return cdn.strategy_for_resource(domain.cdn_resource_id).managed_certificates
    return cdn.strategy().managed_certificates


def _decide_tenant(domain: CustomDomain, result: dns.DnsResult,
                   acm_cert: acm.Certificate | None, checks: ChecksDict, ownership_ok: bool, *,
                   now: datetime, source: str) -> Verdict:
    """The tenant path, DNS first: gather what `check_decisions.tenant_pending_verdict`
    needs, creating the tenant on the way when `tenant_plan` says so."""
    routing = result.routing
    strategy = (cdn.strategy_for_resource(domain.cdn_resource_id) if domain.cdn_resource_id
                else cdn.strategy())
    updates: dict[str, Any] = {}
    enqueue: tuple[TaskName, ...] = ()
    if domain.prevalidation == Prevalidation.ACM:
        if acm_cert is None and domain.certificate_arn:
            acm_cert = certificates.certificate_describe_or_none(domain.certificate_arn)
        checks, updates, enqueue = tenant_acm_certificate(domain, acm_cert, checks, updates,
                                                          now)
    plan = tenant_plan(domain, routing, acm_cert, ownership_ok=ownership_ok, now=now)
    if plan.record is not None:
        checks["cdn"] = plan.record
    if plan.create:
        checks, held = _tenant_create(domain, strategy, checks, updates, plan, now=now,
                                      source=source)
        if held is not None:
            return replace(held, enqueue=enqueue + held.enqueue)
    if domain.cdn_resource_id:
        _apply_prevalidation(domain, strategy, acm_cert)

    cert: TenantCertificate | None = None
    alert_words = ""
    alerts: tuple[Alert, ...] = ()
    if plan.use_acm and acm_cert is not None:
        alerted = acm_alert(domain, acm_cert)
        if alerted is not None:
            alerts = (alerted[0],)
            alert_words = dns_first.wait_words(dns_first.AwsAnswer.ALERT_UNKNOWN)
        cert = tenant_acm_view(acm_cert, alerted[0] if alerted else None)
    elif not plan.use_acm and domain.cdn_resource_id:
        managed = strategy.certificate(resource_id=domain.cdn_resource_id)
        if managed is None and tenant_vanished(
                managed, strategy.state(resource_id=domain.cdn_resource_id)):
            # The tenant is gone (deleted outside the app, or a local emulator restarted):
            # forget it, and the next check creates one again.
            CustomDomain.objects.filter(pk=domain.pk,
                                        cdn_resource_id=domain.cdn_resource_id).update(
                cdn_resource_id="")
            log.warning("%s: tenant %s vanished; creating it again", domain.hostname,
                        domain.cdn_resource_id)
        if managed is not None:
            # CAA can explain a failed certificate: looked up only then.
            caa = dns_first.caa_lookup(domain.hostname) if managed.status == "failed" else None
            cert, alert_words, alert, record = managed_view(domain, managed, ready=plan.ready,
                                                            caa=caa, now=now)
            alerts = (alert,) if alert is not None else ()
            updates["certificate_status"] = managed.status
            checks["certificate"] = record
    state = (strategy.state(resource_id=domain.cdn_resource_id)
             if tenant_wants_state(domain, routing, cert) else None)
    return tenant_pending_verdict(TenantInputs(
        domain, result, ownership_ok, cert, alert_words, alerts, state, checks, updates, now,
        enqueue))


def _tenant_create(domain: CustomDomain, strategy: cdn.CdnStrategy, checks: ChecksDict,
                   updates: dict[str, Any], plan: TenantPlan, *, now: datetime, source: str
                   ) -> tuple[ChecksDict, Verdict | None]:
    """Create the tenant (DNS is ready, or pre-validation tries early); no verdict when done.

    A managed certificate is requested with the tenant, so CAA is looked at first and the
    request counts against the certificate budget (refunded when CloudFront refuses the
    call: nothing was requested then).
    """
    managed = not plan.use_acm
    if managed:
        checks, held = tenant_caa_verdict(domain, dns_first.caa_lookup(domain.hostname),
                                          checks, updates, now=now)
        if held is not None:
            return checks, held
        try:
            certificate_budget.certificate_budget_consume(workspace=domain.workspace,
                                                          kind="cloudfront-managed")
        except certificate_budget.CertificateBudgetExceeded as exc:
            return checks, budget_held_verdict(domain, exc.message, checks, updates, now=now)
    try:
        attachment = strategy.attach(
            hostname=domain.hostname,
            certificate_arn=domain.certificate_arn if plan.use_acm else "",
            reference=f"vedomains-{domain.pk}",
            workspace_id=domain.workspace.slug,
            # Self-hosted only while DNS still points at the customer's server: once it
            # points at us, CloudFront serves the token itself.
            validation_host=(ValidationTokenHost.SELF_HOSTED if plan.self_hosted
                             else ValidationTokenHost.CLOUDFRONT),
            # A hostname proven by TXT may still sit on its previous record's tenant:
            # CloudFront moves it once DNS points here, never serving it twice.
            takeover=domain.ownership_required,
            anycast_only=hostnames.is_apex(domain.hostname),
        )
    except IntegrationError as exc:
        if managed:
            certificate_budget.certificate_budget_refund(workspace=domain.workspace)
        return checks, attach_refused_verdict(domain, exc, checks, updates, now=now,
                                              ours=_alias_ours(domain, exc))
    capacity_alerts.capacity_alerts_resolve()
    with transaction.atomic():
        stored = CustomDomain.objects.filter(pk=domain.pk, cdn_resource_id="").update(
            cdn_resource_id=attachment.resource_id)
        if stored:
            lifecycle.event_record(
                domain=domain, kind=EventKind.CDN_ATTACHED, source=source,
                message=tenant_created_message(managed=managed),
                data={"strategy": strategy.name, "resource_id": attachment.resource_id})
    if not stored:
        _keep_recorded_attachment(domain, attachment.resource_id, strategy)
    domain.refresh_from_db(fields=["cdn_resource_id"])
    return checks, None


def _apply_prevalidation(domain: CustomDomain, strategy: cdn.CdnStrategy,
                         acm_cert: acm.Certificate | None) -> None:
    """Pre-validation asked for after the tenant was made: read what
    `prevalidation_fix` needs, then make the call it names."""
    arn: str | None = None
    managed: cdn.CertificateState | None = None
    match prevalidation_reads(domain, acm_cert):
        case "state":
            state = strategy.state(resource_id=domain.cdn_resource_id)
            arn = state.certificate_arn if state is not None else None
        case "certificate":
            managed = strategy.certificate(resource_id=domain.cdn_resource_id)
    fix = prevalidation_fix(domain, acm_cert, tenant_certificate_arn=arn, managed=managed)
    match fix:
        case PrevalidationFix.SET_ACM_CERTIFICATE:
            assert acm_cert is not None
            strategy.set_certificate(resource_id=domain.cdn_resource_id,
                                     certificate_arn=acm_cert.arn)
        case PrevalidationFix.SELF_HOSTED_TOKEN:
            strategy.request_managed_certificate(resource_id=domain.cdn_resource_id,
                                                 hostname=domain.hostname,
                                                 validation_host=ValidationTokenHost.SELF_HOSTED)
        case None:
            pass
        case _:
            assert_never(fix)
