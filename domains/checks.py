"""Checks: claim the domains that are due, read DNS and certificates, move each status.

Called by Celery tasks and management commands alike. Every function takes ids and
reloads what it needs, so a late or repeated call acts on the current state.

Concurrency rules (STYLE.md, "Concurrency"):
- a check claims its domains (`schedule.domains_claim`) by pushing `next_check_at` forward
  (a lease) in one statement
  before any DNS or AWS call, so two beats or ten workers never check a domain twice at once
  and a crash mid-check cannot loop;
- results are written only if the status is still the one the check saw;
- status changes go through `lifecycle.domain_transition` (compare-and-swap).

A removed domain that is due is handed to `domains.cleanup`; the CDN attachment of a
domain that is ready happens here, as the last step of its pending check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, assert_never

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from domains import (
    capacity_alerts,
    certificate_budget,
    certificates,
    dns_doctor,
    dns_first,
    hostnames,
    lifecycle,
)
from domains.cleanup import domain_cleanup
from domains.integrations import acm, cdn, dns
from domains.integrations.errors import IntegrationError
from domains.models import (
    CERTIFICATE_ISSUED_STATUSES,
    LIVE_STATUSES,
    CustomDomain,
    DomainStatus,
    EventKind,
)
from domains.schedule import domains_claim, next_interval
from domains.task_names import TaskName

log = logging.getLogger(__name__)

# A DNS lookup or AWS call that could not tell (timeout, throttling): look again soon.
TRANSIENT_RETRY = timedelta(seconds=60)
# A check that raised a permanent integration error or an unexpected exception: our side
# or AWS's answer outside a verdict path, never the customer's fault, so the domain is not
# failed for it. It is retried at this slower pace for as long as it lasts (the error is
# in last_error and the admin's "has error" filter), and recovers by itself once fixed.
CHECK_ERROR_RETRY = timedelta(minutes=5)
ACM_THREADS = 16
CERTIFICATE_READ_INTERVAL = timedelta(minutes=10)


@dataclass
class CheckOutcome:
    domain_id: int
    hostname: str
    outcome: str  # skipped | waiting | activated | misconfigured | fixed | failed | ...
    status: str = ""
    detail: str = ""


# --- the batch ------------------------------------------------------------------------------


def domain_check(*, domain_id: int, source: str = "system:check", force: bool = False
                 ) -> CheckOutcome:
    outcomes = domains_check_batch(domain_ids=[domain_id], source=source, force=force)
    if outcomes:
        return outcomes[0]
    return CheckOutcome(domain_id, "", "skipped", detail="not due or claimed by another worker")


def domains_check_batch(*, domain_ids: Iterable[int], source: str = "system:check",
                        force: bool = False, now: datetime | None = None
                        ) -> list[CheckOutcome]:
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
        outcomes.append(CheckOutcome(domain.pk, domain.hostname, "skipped", domain.status))
    if not live:
        return outcomes

    arns = [d.certificate_arn for d in live if _needs_certificate_read(d, now)]
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
    for domain in live:
        result = dns_results[domain.hostname]
        outcomes.append(_guarded(domain, lambda d, r=result: _evaluate(
            d, r, certs.get(d.certificate_arn), now=now, source=source,
            diagnosis=diagnoses.get(d.hostname, []))))
    return outcomes


def _dns_doctor(live: list[CustomDomain], results: dict[str, dns.DnsResult], *,
                now: datetime) -> dict[str, list[dns_doctor.DiagnosisDict]]:
    """Why DNS is wrong, for the domains whose DNS is (docs/dns-doctor.md).

    A domain pointing at us costs nothing more, except a pending one (a CAA record can
    still stop its certificate, an old address record beside the CNAME its visitors). A
    lookup that timed out is not asked again; one that failed with SERVFAIL is (DNSSEC
    shows that way).
    """
    wanted: dict[str, tuple[str, bool]] = {}
    for domain in live:
        routing = results[domain.hostname].routing
        if routing.transient and "SERVFAIL" not in routing.detail:
            continue
        if not routing.ok:
            wanted[domain.hostname] = (hostnames.zone_of(domain.hostname), False)
        elif (domain.status == DomainStatus.PENDING_VALIDATION
              and domain.certificate_status not in CERTIFICATE_ISSUED_STATUSES):
            wanted[domain.hostname] = (hostnames.zone_of(domain.hostname), True)
    if not wanted:
        return {}
    try:
        facts = dns.gather_facts_many(wanted)
    except Exception:  # the doctor only explains; it never stops a check
        log.exception("DNS doctor lookups failed")
        return {}
    apex = hostnames.apex_supported()
    apex_ips = tuple(settings.VEDOMAINS_CDN_APEX_IPS)
    return {
        host: dns_doctor.diagnosis_dicts(dns_doctor.diagnose(
            f, target=settings.VEDOMAINS_CNAME_TARGET, routing_ok=results[host].routing.ok,
            apex=apex and hostnames.is_apex(host), apex_ips=apex_ips, now=now))
        for host, f in facts.items()
    }


def _cleanup_outcome(domain: CustomDomain) -> CheckOutcome:
    return CheckOutcome(domain.pk, domain.hostname, domain_cleanup(domain_id=domain.pk),
                        DomainStatus.REMOVED)


def _guarded(domain: CustomDomain, fn: Callable[[CustomDomain], CheckOutcome]) -> CheckOutcome:
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
        return CheckOutcome(domain.pk, domain.hostname, "error", domain.status, str(exc))


def _needs_certificate_read(domain: CustomDomain, now: datetime) -> bool:
    """Read a pending certificate only when its status can change what happens next.

    ACM allows a few DescribeCertificate calls a second per account, and most pending
    domains are waiting for the customer's DNS. Their certificate is read when its
    validation records are not known yet, when the last check found the DNS pointing at us
    (activation needs an ISSUED certificate), and otherwise every CERTIFICATE_READ_INTERVAL.
    https://docs.aws.amazon.com/acm/latest/userguide/acm-limits.html
    """
    if domain.status != DomainStatus.PENDING_VALIDATION or not domain.certificate_arn:
        return False
    checks = domain.checks or {}
    if not domain.validation_records or (checks.get("dns") or {}).get("ok"):
        return True
    last_read = (checks.get("certificate") or {}).get("at")
    if not last_read:
        return True
    return now - datetime.fromisoformat(last_read) >= CERTIFICATE_READ_INTERVAL


# --- writing a result -----------------------------------------------------------------------


def _check_record(ok: bool, detail: str, now: datetime, **extra: Any) -> dict[str, Any]:
    return {"ok": ok, "detail": detail, "at": now.isoformat(), **extra}


def _save_check(domain: CustomDomain, checks: dict[str, Any], updates: dict[str, Any]) -> bool:
    """Write check results only if the status is still what this check saw."""
    return CustomDomain.objects.filter(pk=domain.pk, status=domain.status).update(
        checks=checks, updated_at=timezone.now(), **updates) == 1


def _save_check_and_transition(
    domain: CustomDomain, checks: dict[str, Any], updates: dict[str, Any], *, to: str,
    allowed_from: Iterable[str], source: str, message: str,
    data: dict[str, Any] | None = None, transition_updates: dict[str, Any] | None = None,
) -> bool:
    """The check's results and the status change it decided, in one transaction.

    True when this call applied the change; False when the domain moved on meanwhile
    (then neither is written: the results were about a status it no longer has).
    """
    with transaction.atomic():
        _save_check(domain, checks, updates)
        return lifecycle.domain_transition(
            domain=domain, to=to, allowed_from=allowed_from, source=source, message=message,
            data=data, updates=transition_updates,
        )


def _evaluate(domain: CustomDomain, result: dns.DnsResult, cert: acm.Certificate | None, *,
              now: datetime, source: str,
              diagnosis: list[dns_doctor.DiagnosisDict] | None = None) -> CheckOutcome:
    routing = result.routing
    checks = dict(domain.checks or {})
    checks["dns"] = _check_record(routing.ok, routing.detail, now, reason=routing.reason,
                                  chain=list(routing.chain), transient=routing.transient,
                                  diagnosis=diagnosis or [])
    updates: dict[str, Any] = {"last_checked_at": now, "check_count": F("check_count") + 1}

    if domain.status == DomainStatus.PENDING_VALIDATION:
        return _evaluate_pending(domain, result, cert, checks, updates, now=now, source=source)
    if domain.status == DomainStatus.DEPLOYING:
        return _evaluate_deploying(domain, checks, updates, now=now, source=source)
    return _evaluate_live(domain, routing, checks, updates, now=now, source=source)


# --- pending domains ------------------------------------------------------------------------


def _evaluate_pending(domain: CustomDomain, result: dns.DnsResult, cert: acm.Certificate | None,
                      checks: dict[str, Any], updates: dict[str, Any], *, now: datetime,
                      source: str) -> CheckOutcome:
    """Pending: ownership, then the certificate, then give up, activate, or wait."""
    routing = result.routing
    ownership_ok = _pending_ownership(domain, result, checks, updates, now=now, source=source)
    if _tenant_path(domain):
        return _evaluate_tenant_pending(domain, result, cert, checks, updates, ownership_ok,
                                        now=now, source=source)
    cert = _pending_certificate(domain, routing, cert, checks, updates, now=now)
    if cert is not None and cert.status == certificates.MISSING:
        # Gone from ACM: shown as such, and a new certificate is requested.
        certificates.certificate_replace_missing(domain=domain, cert=cert, checks=checks,
                                                 now=now, source=source)
        return CheckOutcome(domain.pk, domain.hostname, "waiting", domain.status,
                            cert.failure_reason)

    alert = _acm_alert(domain, cert)
    if alert:
        return _backoff_wait(domain, dns_first.AwsAnswer.ALERT_UNKNOWN, alert, checks, updates,
                             now=now, record="certificate")
    failure = _pending_failure(domain, result, cert, ownership_ok=ownership_ok, now=now)
    caa = checks.get("caa") or {}
    if failure and not domain.certificate_arn and caa.get("ok") is False:
        failure = str(caa.get("detail", failure))  # the exact record to add, in words
    if failure:
        applied = _save_check_and_transition(
            domain, checks, {**updates, "last_error": failure}, to=DomainStatus.FAILED,
            allowed_from=[DomainStatus.PENDING_VALIDATION], source=source, message=failure,
            transition_updates={"failed_at": now, "next_check_at": None},
        )
        return CheckOutcome(domain.pk, domain.hostname, "failed" if applied else "skipped",
                            DomainStatus.FAILED, failure)

    if routing.ok and ownership_ok and cert is not None and cert.issued:
        return _attach_and_activate(domain, cert, checks, updates, now=now, source=source)
    return _pending_wait(domain, routing, cert, checks, updates, ownership_ok=ownership_ok,
                         now=now)


def _acm_alert(domain: CustomDomain, cert: acm.Certificate | None) -> str:
    """An ACM failure that is not the customer's: page staff; "" otherwise."""
    if cert is None or not cert.failed:
        return ""
    verdict = dns_first.acm_certificate_verdict(cert.status, cert.failure_reason)
    if verdict != dns_first.CertificateVerdict.ALERT_UNKNOWN:
        return ""
    text = f"ACM reports the certificate {cert.status} ({cert.failure_reason or 'no reason'})"
    capacity_alerts.unexpected_answer_alert_raise(
        code=f"acm:{cert.status}:{cert.failure_reason}", message=f"{text}: {cert.arn}",
        hostname=domain.hostname)
    return text


def _pending_ownership(domain: CustomDomain, result: dns.DnsResult, checks: dict[str, Any],
                       updates: dict[str, Any], *, now: datetime, source: str) -> bool:
    """Is ownership proven (or not required)? Records the TXT lookup when one was made."""
    ownership_ok = not domain.ownership_required or domain.ownership_verified_at is not None
    if ownership_ok or result.txt is None:
        return ownership_ok
    expected = domain.ownership_record_value
    ownership_ok = expected in result.txt.values
    checks["ownership"] = _check_record(
        ownership_ok,
        "TXT record found." if ownership_ok else
        (result.txt.detail or f"Expected TXT {expected} at {domain.ownership_record_name}."),
        now, transient=result.txt.transient,
    )
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


def _pending_certificate(domain: CustomDomain, routing: dns.RoutingCheck,
                         cert: acm.Certificate | None, checks: dict[str, Any],
                         updates: dict[str, Any], *, now: datetime) -> acm.Certificate | None:
    """Record what ACM says of the certificate (requesting one if there is none yet)."""
    if cert is None and routing.ok and domain.certificate_arn:
        # DNS has just started pointing at us and the batch skipped this certificate (see
        # _needs_certificate_read): read it now rather than one check later.
        cert = certificates.certificate_describe_or_none(domain.certificate_arn)
    if cert is not None:
        updates["certificate_status"] = cert.status
        updates["validation_records"] = cert.validation_records
        checks["certificate"] = _check_record(
            cert.issued, cert.failure_reason or f"Certificate is {cert.status}.", now,
            status=cert.status)
    elif not domain.certificate_arn:
        # a certificate is requested only once the routing CNAME shows intent
        # (or pre-validation was asked for), so registering and removing names in a loop
        # spends none of the account's ACM requests.
        if dns_first.dns_ready(routing) or getattr(domain, "prevalidation", ""):
            caa_block = _caa_block(domain, checks, now)
            if caa_block:
                checks["certificate"] = _check_record(False, caa_block, now, caa=True)
            else:
                # Said as what it is: the request is queued (it may still be held by the
                # certificate budget); the CERTIFICATE_REQUESTED event comes with the ARN.
                checks["certificate"] = _check_record(False, "Requesting a certificate.", now)
                lifecycle.enqueue_after_commit(TaskName.DOMAIN_REQUEST_CERTIFICATE, domain.pk)
        else:
            checks["certificate"] = _check_record(
                False, "Requested once the CNAME points at us.", now)
    return cert


def _pending_failure(domain: CustomDomain, result: dns.DnsResult, cert: acm.Certificate | None,
                     *, ownership_ok: bool, now: datetime) -> str:
    """Why the domain fails now ("" while it may still come together).

    Give up when ACM gave up, or when nothing came together in the pending window. A DNS
    lookup that failed (timeout, SERVFAIL) is no verdict, so it cannot end the window; one
    still failing at twice the window is (the customer's nameservers are broken), so a
    claim cannot be held for ever.
    """
    routing = result.routing
    transient = routing.transient or (result.txt is not None and result.txt.transient)
    age = now - domain.created_at
    window = timedelta(seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS)
    if cert is not None and cert.failed:
        return f"The certificate could not be issued: {cert.failure_reason or cert.status}."
    if age <= window or (transient and age <= 2 * window):
        return ""
    if not routing.ok:
        return f"The domain was never pointed at us within {window}: {routing.detail}"
    if cert is not None and not cert.issued:
        return (f"The certificate was not validated within {window}; "
                "the validation CNAME is missing.")
    if not domain.certificate_arn:
        return "No certificate could be requested for this hostname."
    if not ownership_ok:
        return "The ownership TXT record was not found in time."
    return ""


def _pending_wait(domain: CustomDomain, routing: dns.RoutingCheck,
                  cert: acm.Certificate | _TenantCertificate | None,
                  checks: dict[str, Any], updates: dict[str, Any], *, ownership_ok: bool,
                  now: datetime) -> CheckOutcome:
    """Not there yet: save what was found and come back at the next interval."""
    updates["next_check_at"] = now + (
        min(TRANSIENT_RETRY, next_interval(domain, now)) if routing.transient
        else next_interval(domain, now)
    )
    updates["last_error"] = "" if not routing.transient else routing.detail
    _save_check(domain, checks, updates)
    waiting = [name for name, ok in (("dns", routing.ok), ("ownership", ownership_ok),
                                     ("certificate", bool(cert and cert.issued))) if not ok]
    return CheckOutcome(domain.pk, domain.hostname, "waiting", domain.status,
                        "waiting for " + ", ".join(waiting))


def _attach_and_activate(domain: CustomDomain, cert: acm.Certificate, checks: dict[str, Any],
                         updates: dict[str, Any], *, now: datetime, source: str) -> CheckOutcome:
    resource_id = domain.cdn_resource_id
    # A record keeps the strategy it was attached with (a switch applies to new ones).
    strategy = cdn.strategy_for_resource(resource_id) if resource_id else cdn.strategy()
    if not resource_id:
        try:
            attachment = strategy.attach(hostname=domain.hostname, certificate_arn=cert.arn,
                                         reference=f"vedomains-{domain.pk}",
                                         workspace_id=domain.workspace.slug)
        except IntegrationError as exc:
            return _attach_refused(domain, exc, checks, updates, now=now, source=source)
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
    checks["cdn"] = _check_record(True, f"Attached ({strategy.name}: {resource_id}).", now)
    return _activate_when_deployed(domain, strategy, resource_id, checks, updates, now=now,
                                   source=source,
                                   message="DNS, ownership and certificate verified; attached.")


def _attach_failed(domain: CustomDomain, exc: IntegrationError, checks: dict[str, Any],
                   updates: dict[str, Any], *, now: datetime, source: str) -> CheckOutcome:
    """The CDN refused the alias: fail the domain if that is final, else try again soon."""
    checks["cdn"] = _check_record(False, exc.message, now, code=exc.code)
    # CNAMEAlreadyExists while our own earlier record for this name (released by a TXT
    # proof, or removed and registered again) is still being detached: that alias goes
    # away shortly, so wait for it instead of failing the new owner.
    ours = exc.code == "CNAMEAlreadyExists" and CustomDomain.objects.filter(
        hostname=domain.hostname, status=DomainStatus.REMOVED
    ).exclude(cdn_resource_id="").exists()
    if exc.permanent and not ours:
        _save_check_and_transition(
            domain, checks, {**updates, "last_error": exc.message}, to=DomainStatus.FAILED,
            allowed_from=[DomainStatus.PENDING_VALIDATION], source=source,
            message=exc.message, data={"code": exc.code},
            transition_updates={"failed_at": now, "next_check_at": None},
        )
        return CheckOutcome(domain.pk, domain.hostname, "failed", DomainStatus.FAILED,
                            exc.message)
    _save_check(domain, checks, {**updates, "last_error": exc.message,
                                 "next_check_at": now + TRANSIENT_RETRY})
    return CheckOutcome(domain.pk, domain.hostname, "waiting", domain.status, exc.message)


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


# --- CloudFront SaaS Manager tenants and the deploying step ----------------------------------
# The tenant path: the tenant is created as soon as ownership allows (CloudFront must know the
# domain to serve the HTTP validation token); GetManagedCertificateDetails then drives the
# certificate; once DNS points at us and the certificate is issued the domain is "deploying"
# until CloudFront reports the tenant Deployed, and only then active (email, webhook, edge).


def _tenant_path(domain: CustomDomain) -> bool:
    """SaaS Manager: a tenant, with a CloudFront-managed certificate unless pre-validated.

    A record keeps the strategy it was attached with (a switch applies to new attachments).
    """
    if domain.cdn_resource_id:
        return cdn.strategy_for_resource(domain.cdn_resource_id).managed_certificates
    return cdn.strategy().managed_certificates


@dataclass(frozen=True)
class _TenantCertificate:
    issued: bool
    status: str
    failure: str = ""
    arn: str = ""


def _deploy_recheck() -> timedelta:
    return timedelta(seconds=settings.VEDOMAINS_CDN_DEPLOY_CHECK_SECONDS)


def _capacity_wait(domain: CustomDomain, exc: IntegrationError, checks: dict[str, Any],
                   updates: dict[str, Any], *, now: datetime) -> CheckOutcome:
    """A quota of ours: alert staff, keep the domain pending, try again later."""
    capacity_alerts.capacity_alert_raise(code=exc.code, message=exc.message,
                                         hostname=domain.hostname)
    detail = ("Waiting for capacity on our side (CloudFront quota reached); nothing to do on "
              "your side, we retry automatically.")
    checks["cdn"] = _check_record(False, detail, now, code=exc.code, capacity=True)
    retry = timedelta(seconds=settings.VEDOMAINS_CDN_CAPACITY_RETRY_SECONDS)
    _save_check(domain, checks, {**updates, "last_error": detail, "next_check_at": now + retry})
    return CheckOutcome(domain.pk, domain.hostname, "capacity", domain.status, exc.message)


def _evaluate_tenant_pending(domain: CustomDomain, result: dns.DnsResult,
                             acm_cert: acm.Certificate | None, checks: dict[str, Any],
                             updates: dict[str, Any], ownership_ok: bool, *, now: datetime,
                             source: str) -> CheckOutcome:
    """The tenant path, DNS first (domains.dns_first): no tenant and no certificate until
    the hostname resolves to us; live only once CloudFront serves it."""
    routing = result.routing
    ready = dns_first.dns_ready(routing)
    strategy = (cdn.strategy_for_resource(domain.cdn_resource_id) if domain.cdn_resource_id
                else cdn.strategy())
    use_acm = domain.prevalidation == "acm"
    if use_acm:
        # Pre-validation by DNS, on the customer's explicit request: an ACM certificate,
        # issued before the CNAME moves, becomes the tenant's certificate.
        if acm_cert is None and domain.certificate_arn:
            acm_cert = certificates.certificate_describe_or_none(domain.certificate_arn)
        if acm_cert is not None:
            updates["certificate_status"] = acm_cert.status
            updates["validation_records"] = acm_cert.validation_records
            checks["certificate"] = _check_record(
                acm_cert.issued, acm_cert.failure_reason or f"Certificate is {acm_cert.status}.",
                now, status=acm_cert.status)
        elif not domain.certificate_arn:
            checks["certificate"] = _check_record(False, "Certificate not requested yet.", now)
            lifecycle.enqueue_after_commit(TaskName.DOMAIN_REQUEST_CERTIFICATE, domain.pk)
    # Pre-validation may try the tenant before DNS moves (whether CloudFront accepts that is
    # unverified: docs/cdn.md); a refusal is a wait like any "not pointing at us yet".
    acm_issued = bool(acm_cert and acm_cert.issued)
    early = domain.prevalidation == "self-hosted" or (use_acm and acm_issued)
    can_attach = ownership_ok and (ready or early) and (not use_acm or acm_issued)
    if not domain.cdn_resource_id and not can_attach:
        if not ready and not early:
            checks["cdn"] = _check_record(
                False, "Nothing is created at CloudFront until the hostname points at us.", now)
    elif can_attach and not domain.cdn_resource_id:
        held = _tenant_create(domain, strategy, checks, updates, use_acm=use_acm,
                              self_hosted=domain.prevalidation == "self-hosted" and not ready,
                              now=now, source=source)
        if held is not None:
            return held

    if domain.cdn_resource_id:
        _apply_prevalidation(domain, strategy, acm_cert)

    cert: _TenantCertificate | None = None
    alert = ""
    if use_acm and acm_cert is not None:
        acm_alert = _acm_alert(domain, acm_cert)
        if acm_alert:
            alert = dns_first.wait_words(dns_first.AwsAnswer.ALERT_UNKNOWN)
        cert = _TenantCertificate(acm_cert.issued, acm_cert.status,
                                  f"The certificate could not be issued: "
                                  f"{acm_cert.failure_reason or acm_cert.status}."
                                  if acm_cert.failed and not acm_alert else "", acm_cert.arn)
    elif not use_acm and domain.cdn_resource_id:
        managed = strategy.certificate(resource_id=domain.cdn_resource_id)
        if managed is None and strategy.state(resource_id=domain.cdn_resource_id) is None:
            # The tenant is gone (deleted outside the app, or a local emulator restarted):
            # forget it, and the next check creates one again.
            CustomDomain.objects.filter(pk=domain.pk,
                                        cdn_resource_id=domain.cdn_resource_id).update(
                cdn_resource_id="")
            log.warning("%s: tenant %s vanished; creating it again", domain.hostname,
                        domain.cdn_resource_id)
        if managed is not None:
            cert, alert = _managed_verdict(domain, managed, ready=ready, now=now, checks=checks)
            updates["certificate_status"] = managed.status
            extra: dict[str, Any] = {"status": managed.status, "managed": True}
            if managed.token_host == "self-hosted" and managed.validation:
                extra["http_validation"] = [dict(v) for v in managed.validation]
            checks["certificate"] = _check_record(
                managed.issued, cert.failure or alert or managed.failure_reason
                or f"Certificate is {managed.status}.", now, **extra)
    state: cdn.ResourceState | None = None
    if routing.ok and domain.cdn_resource_id and cert is not None and cert.issued:
        state = strategy.state(resource_id=domain.cdn_resource_id)

    age = now - domain.created_at
    window = timedelta(seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS)
    transient = routing.transient or (result.txt is not None and result.txt.transient)
    failure = ""
    if cert is not None and cert.failure:
        failure = cert.failure
    elif age > window and (not transient or age > 2 * window):
        caa = checks.get("caa") or {}
        if not routing.ok:
            failure = f"The domain was never pointed at us within {window}: {routing.detail}"
        elif not ownership_ok:
            failure = "The ownership TXT record was not found in time."
        elif caa.get("ok") is False and not domain.cdn_resource_id:
            failure = str(caa.get("detail", ""))
        elif cert is not None and not cert.issued and not alert:
            failure = f"The certificate was not validated within {window}."
    if failure:
        with transaction.atomic():
            _save_check(domain, checks, {**updates, "last_error": failure})
            applied = lifecycle.domain_transition(
                domain=domain, to=DomainStatus.FAILED,
                allowed_from=[DomainStatus.PENDING_VALIDATION], source=source, message=failure,
                data={"certificate_status": cert.status if cert else ""},
                updates={"failed_at": now, "next_check_at": None},
            )
        return CheckOutcome(domain.pk, domain.hostname, "failed" if applied else "skipped",
                            DomainStatus.FAILED, failure)
    if alert:
        return _backoff_wait(domain, dns_first.AwsAnswer.ALERT_UNKNOWN, alert, checks, updates,
                             now=now, record="certificate")

    if state is not None and domain.cdn_resource_id:
        checks["cdn"] = _check_record(state.served(domain.hostname),
                                      state.serving_detail(domain.hostname), now,
                                      status=state.status)
        return _activate_when_deployed(domain, strategy, domain.cdn_resource_id, checks,
                                       updates, now=now, source=source, state=state,
                                       message="DNS points at us and the certificate is issued.")

    return _pending_wait(domain, routing, cert, checks, updates, ownership_ok=ownership_ok,
                         now=now)


def _tenant_create(domain: CustomDomain, strategy: cdn.CdnStrategy, checks: dict[str, Any],
                   updates: dict[str, Any], *, use_acm: bool, self_hosted: bool,
                   now: datetime, source: str) -> CheckOutcome | None:
    """Create the tenant (DNS is ready, or pre-validation tries early); None when done.

    A managed certificate is requested with the tenant, so CAA is looked at first and the
    request counts against the certificate budget (refunded when CloudFront refuses the
    call: nothing was requested then).
    """
    managed = not use_acm
    if managed:
        caa_block = _caa_block(domain, checks, now)
        if caa_block:
            checks["certificate"] = _check_record(False, caa_block, now, caa=True)
            if now - domain.created_at > timedelta(
                seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS):
                return _fail_pending(domain, caa_block, checks, updates, now=now,
                                     source=source)
            return _pending_hold(domain, caa_block, checks, updates, now=now)
        try:
            certificate_budget.certificate_budget_consume(workspace=domain.workspace,
                                                          kind="cloudfront-managed")
        except certificate_budget.CertificateBudgetExceeded as exc:
            held = f"Certificate request held: {exc.message}"
            checks["certificate"] = _check_record(False, held, now, held=True)
            return _pending_hold(domain, held, checks, updates, now=now)
    try:
        attachment = strategy.attach(
            hostname=domain.hostname,
            certificate_arn=domain.certificate_arn if use_acm else "",
            reference=f"vedomains-{domain.pk}",
            workspace_id=domain.workspace.slug,
            # Self-hosted only while DNS still points at the customer's server: once it
            # points at us, CloudFront serves the token itself.
            validation_host="self-hosted" if self_hosted else "cloudfront",
            # A hostname proven by TXT may still sit on its previous record's tenant:
            # CloudFront moves it once DNS points here, never serving it twice.
            takeover=domain.ownership_required,
            anycast_only=hostnames.is_apex(domain.hostname),
        )
    except IntegrationError as exc:
        if managed:
            certificate_budget.certificate_budget_refund(workspace=domain.workspace)
        return _attach_refused(domain, exc, checks, updates, now=now, source=source)
    capacity_alerts.capacity_alerts_resolve()
    with transaction.atomic():
        stored = CustomDomain.objects.filter(pk=domain.pk, cdn_resource_id="").update(
            cdn_resource_id=attachment.resource_id)
        if stored:
            lifecycle.event_record(
                domain=domain, kind=EventKind.CDN_ATTACHED, source=source,
                message=("Tenant created with the domain; CloudFront is validating its "
                         "certificate (not serving yet)." if managed else
                         "Tenant created with the pre-validated certificate (not serving yet)."),
                data={"strategy": strategy.name, "resource_id": attachment.resource_id})
    if not stored:
        _keep_recorded_attachment(domain, attachment.resource_id, strategy)
    domain.refresh_from_db(fields=["cdn_resource_id"])
    return None


def _managed_verdict(domain: CustomDomain, managed: cdn.CertificateState, *, ready: bool,
                     now: datetime, checks: dict[str, Any]) -> tuple[_TenantCertificate, str]:
    """(the certificate as the check sees it, the staff alert text or "")."""
    caa_forbids = False
    caa_text = ""
    if managed.status == "failed":
        caa = dns_first.caa_lookup(domain.hostname)
        caa_forbids = dns_first.caa_forbids_amazon(caa)
        caa_text = dns_first.caa_words(caa) if caa_forbids else ""
    verdict = dns_first.managed_certificate_verdict(managed.status, dns_ok=ready,
                                                    caa_forbids=caa_forbids)
    match verdict:
        case dns_first.CertificateVerdict.ISSUED | dns_first.CertificateVerdict.PENDING:
            return _TenantCertificate(managed.issued, managed.status, "", managed.arn), ""
        case dns_first.CertificateVerdict.FAIL_CUSTOMER:
            reason = caa_text or managed.failure_reason or f"Certificate is {managed.status}."
            return _TenantCertificate(False, managed.status, reason, managed.arn), ""
        case dns_first.CertificateVerdict.ALERT_UNKNOWN:
            text = (f"CloudFront reports the managed certificate {managed.status!r} while "
                    "the DNS is right")
            capacity_alerts.unexpected_answer_alert_raise(
                code=f"certificate:{managed.status}", message=text, hostname=domain.hostname)
            return (_TenantCertificate(False, managed.status, "", managed.arn),
                    dns_first.wait_words(dns_first.AwsAnswer.ALERT_UNKNOWN))
        case _:
            assert_never(verdict)


def _caa_block(domain: CustomDomain, checks: dict[str, Any], now: datetime) -> str:
    """Look at CAA before the first certificate request; the words when Amazon may not
    issue ("" when it may, or when the lookup could not tell)."""
    caa = dns_first.caa_lookup(domain.hostname)
    forbids = dns_first.caa_forbids_amazon(caa)
    words = dns_first.caa_words(caa) if forbids else ""
    checks["caa"] = _check_record(
        not forbids, words or (caa.detail if caa.transient else
                               "No CAA record stops Amazon from issuing."),
        now, found_at=caa.found_at, transient=caa.transient)
    return words


def _fail_pending(domain: CustomDomain, reason: str, checks: dict[str, Any],
                  updates: dict[str, Any], *, now: datetime, source: str) -> CheckOutcome:
    applied = _save_check_and_transition(
        domain, checks, {**updates, "last_error": reason}, to=DomainStatus.FAILED,
        allowed_from=[DomainStatus.PENDING_VALIDATION], source=source, message=reason,
        transition_updates={"failed_at": now, "next_check_at": None},
    )
    return CheckOutcome(domain.pk, domain.hostname, "failed" if applied else "skipped",
                        DomainStatus.FAILED, reason)


def _pending_hold(domain: CustomDomain, reason: str, checks: dict[str, Any],
                  updates: dict[str, Any], *, now: datetime) -> CheckOutcome:
    """Waiting on something the customer (CAA) or the budget must change: the usual pace."""
    _save_check(domain, checks, {**updates, "last_error": reason,
                                 "next_check_at": now + next_interval(domain, now)})
    return CheckOutcome(domain.pk, domain.hostname, "waiting", domain.status, reason)


def _attach_refused(domain: CustomDomain, exc: IntegrationError, checks: dict[str, Any],
                    updates: dict[str, Any], *, now: datetime, source: str) -> CheckOutcome:
    """What CloudFront's refusal means: only the customer's causes fail the domain."""
    answer = dns_first.classify_aws_error(exc)
    match answer:
        case dns_first.AwsAnswer.WAIT_CAPACITY:
            return _capacity_wait(domain, exc, checks, updates, now=now)
        case dns_first.AwsAnswer.FAIL_CUSTOMER | dns_first.AwsAnswer.WAIT_TRANSIENT:
            return _attach_failed(domain, exc, checks, updates, now=now, source=source)
        case dns_first.AwsAnswer.WAIT_DNS:
            return _backoff_wait(domain, answer, exc.message, checks, updates, now=now,
                                 code=exc.code)
        case dns_first.AwsAnswer.ALERT_UNKNOWN:
            capacity_alerts.unexpected_answer_alert_raise(code=exc.code or "unknown",
                                                          message=exc.message,
                                                          hostname=domain.hostname)
            return _backoff_wait(domain, answer, exc.message, checks, updates, now=now,
                                 code=exc.code)
        case _:
            assert_never(answer)


def _backoff_wait(domain: CustomDomain, answer: dns_first.AwsAnswer, aws_says: str,
                  checks: dict[str, Any], updates: dict[str, Any], *, now: datetime,
                  code: str = "", record: str = "cdn") -> CheckOutcome:
    """A wait that is not the customer's: a reason in words, and a growing interval."""
    previous = (domain.checks or {}).get(record) or {}
    attempt = int(previous.get("attempt", -1)) + 1 if previous.get("wait") == answer else 0
    words = dns_first.wait_words(answer)
    if record == "cdn" or record not in checks:
        checks[record] = _check_record(False, words, now, code=code, aws=aws_says[:500])
    checks[record].update(wait=str(answer), attempt=attempt)
    _save_check(domain, checks, {**updates, "last_error": words,
                                 "next_check_at": now + dns_first.wait_delay(attempt)})
    return CheckOutcome(domain.pk, domain.hostname, "waiting", domain.status, aws_says)


def _apply_prevalidation(domain: CustomDomain, strategy: cdn.CdnStrategy,
                         acm_cert: acm.Certificate | None) -> None:
    """Pre-validation asked for after the tenant was made: bring the tenant in line."""
    if domain.prevalidation == "acm" and acm_cert is not None and acm_cert.issued:
        state = strategy.state(resource_id=domain.cdn_resource_id)
        if state is not None and state.certificate_arn != acm_cert.arn:
            strategy.set_certificate(resource_id=domain.cdn_resource_id,
                                     certificate_arn=acm_cert.arn)
    elif domain.prevalidation == "self-hosted":
        managed = strategy.certificate(resource_id=domain.cdn_resource_id)
        if managed is not None and managed.token_host != "self-hosted" and not managed.issued:
            strategy.request_managed_certificate(resource_id=domain.cdn_resource_id,
                                                 hostname=domain.hostname,
                                                 validation_host="self-hosted")


def _activate_when_deployed(domain: CustomDomain, strategy: cdn.CdnStrategy, resource_id: str,
                            checks: dict[str, Any], updates: dict[str, Any], *, now: datetime,
                            source: str, message: str,
                            state: cdn.ResourceState | None = None) -> CheckOutcome:
    """Active only once CloudFront reports the tenant (or distribution) Deployed.

    Until then the domain is "deploying": its first visitors would otherwise meet TLS
    errors while CloudFront is still rolling the configuration out (minutes).
    """
    if state is None:
        state = strategy.state(resource_id=resource_id)
    # Live means served: Deployed, the domain's own status active, the certificate attached.
    deployed = state is not None and state.served(domain.hostname)
    to = DomainStatus.ACTIVE if deployed else DomainStatus.DEPLOYING
    fields: dict[str, Any] = {"verified_at": now}
    if deployed:
        fields.update(activated_at=now, next_check_at=now + timedelta(
            seconds=settings.VEDOMAINS_ACTIVE_RECHECK_SECONDS))
    else:
        fields["next_check_at"] = now + _deploy_recheck()
    with transaction.atomic():
        _save_check(domain, checks, {**updates, "last_error": ""})
        applied = lifecycle.domain_transition(
            domain=domain, to=to, allowed_from=[DomainStatus.PENDING_VALIDATION],
            source=source,
            message=message if deployed else f"{message} CloudFront is deploying it.",
            updates=fields,
        )
    if not applied:
        # Removed while we attached: the cleanup owns the attachment now.
        lifecycle.enqueue_after_commit(TaskName.DOMAIN_CLEANUP, domain.pk)
        return CheckOutcome(domain.pk, domain.hostname, "skipped", "", "changed during check")
    return CheckOutcome(domain.pk, domain.hostname, "activated" if deployed else "deploying",
                        to)


def _evaluate_deploying(domain: CustomDomain, checks: dict[str, Any], updates: dict[str, Any],
                        *, now: datetime, source: str) -> CheckOutcome:
    state = (cdn.strategy_for_resource(domain.cdn_resource_id).state(
        resource_id=domain.cdn_resource_id) if domain.cdn_resource_id else None)
    if state is None:
        # The tenant (or distribution) is gone: start over from pending.
        with transaction.atomic():
            _save_check(domain, checks, updates)
            lifecycle.domain_transition(
                domain=domain, to=DomainStatus.PENDING_VALIDATION,
                allowed_from=[DomainStatus.DEPLOYING], source=source,
                message="The CloudFront resource disappeared; attaching again.",
                updates={"cdn_resource_id": "", "next_check_at": now},
            )
        return CheckOutcome(domain.pk, domain.hostname, "reattach", DomainStatus.PENDING_VALIDATION)
    served = state.served(domain.hostname)
    checks["cdn"] = _check_record(served, state.serving_detail(domain.hostname), now,
                                  status=state.status)
    if not served:
        _save_check(domain, checks, {**updates, "next_check_at": now + _deploy_recheck()})
        return CheckOutcome(domain.pk, domain.hostname, "deploying", domain.status)
    with transaction.atomic():
        _save_check(domain, checks, {**updates, "last_error": ""})
        applied = lifecycle.domain_transition(
            domain=domain, to=DomainStatus.ACTIVE, allowed_from=[DomainStatus.DEPLOYING],
            source=source, message="CloudFront finished deploying; the domain is live.",
            updates={"activated_at": now,
                     "next_check_at": now + timedelta(
                         seconds=settings.VEDOMAINS_ACTIVE_RECHECK_SECONDS)},
        )
    return CheckOutcome(domain.pk, domain.hostname, "activated" if applied else "skipped",
                        DomainStatus.ACTIVE)


# --- active and misconfigured domains -------------------------------------------------------


def _evaluate_live(domain: CustomDomain, routing: dns.RoutingCheck, checks: dict[str, Any],
                   updates: dict[str, Any], *, now: datetime, source: str) -> CheckOutcome:
    """Active and misconfigured domains: only a DNS verdict moves them, never a transient."""
    recheck = timedelta(seconds=settings.VEDOMAINS_ACTIVE_RECHECK_SECONDS)
    if routing.transient:
        _save_check(domain, checks, {**updates, "last_error": routing.detail,
                                     "next_check_at": now + TRANSIENT_RETRY})
        return CheckOutcome(domain.pk, domain.hostname, "transient", domain.status,
                            routing.detail)
    # Certificate renewal watch: at most one ACM look per domain per watch interval.
    certificates.certificate_watch_live(domain=domain, routing_ok=routing.ok, checks=checks,
                                        now=now)
    if routing.ok:
        if domain.status == DomainStatus.ACTIVE:
            _save_check(domain, checks, {**updates, "last_error": "",
                                         "next_check_at": now + recheck})
            return CheckOutcome(domain.pk, domain.hostname, "ok", domain.status)
        applied = _save_check_and_transition(
            domain, checks, {**updates, "last_error": ""}, to=DomainStatus.ACTIVE,
            allowed_from=[DomainStatus.MISCONFIGURED], source=source,
            message="DNS points at us again.",
            transition_updates={"misconfigured_at": None, "next_check_at": now + recheck},
        )
        return CheckOutcome(domain.pk, domain.hostname, "fixed" if applied else "skipped",
                            DomainStatus.ACTIVE)

    grace = timedelta(seconds=settings.VEDOMAINS_MISCONFIGURED_GRACE_SECONDS)
    if domain.status == DomainStatus.ACTIVE:
        deadline = now + grace
        applied = _save_check_and_transition(
            domain, checks, {**updates, "last_error": routing.detail},
            to=DomainStatus.MISCONFIGURED, allowed_from=[DomainStatus.ACTIVE], source=source,
            message=routing.detail,
            data={"detach_after": deadline.isoformat(), "reason": routing.reason},
            transition_updates={
                "misconfigured_at": now,
                "next_check_at": now + min(timedelta(
                    seconds=settings.VEDOMAINS_MISCONFIGURED_RECHECK_SECONDS), grace)},
        )
        return CheckOutcome(domain.pk, domain.hostname,
                            "misconfigured" if applied else "skipped", DomainStatus.MISCONFIGURED,
                            routing.detail)

    since = domain.misconfigured_at or now
    if now - since >= grace:
        # Detach so no dangling alias or edge mapping is left for someone else to claim.
        message = f"DNS has not pointed at us for {grace}; detached. {routing.detail}"
        applied = _save_check_and_transition(
            domain, checks, {**updates, "last_error": routing.detail}, to=DomainStatus.REMOVED,
            allowed_from=[DomainStatus.MISCONFIGURED], source=source, message=message,
            transition_updates={"removed_at": now, "next_check_at": now},
        )
        if applied:
            lifecycle.enqueue_after_commit(TaskName.DOMAIN_CLEANUP, domain.pk)
        return CheckOutcome(domain.pk, domain.hostname, "detached" if applied else "skipped",
                            DomainStatus.REMOVED, message)
    next_at = min(now + timedelta(
        seconds=settings.VEDOMAINS_MISCONFIGURED_RECHECK_SECONDS), since + grace)
    _save_check(domain, checks, {**updates, "last_error": routing.detail, "next_check_at": next_at})
    return CheckOutcome(domain.pk, domain.hostname, "still_misconfigured", domain.status,
                        routing.detail)
