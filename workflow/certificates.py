"""A domain's ACM certificate: the request, the renewal watch, the sweep of expired ones.

ACM renews a DNS-validated certificate by itself, from 60 days before expiry, but only while
the certificate is in use and its validation CNAME still resolves, and only if CAA allows
Amazon to issue. Customers break those conditions without knowing it (a DNS clean-up, a CAA
record added for another CA). The daily re-check of routed domains calls
`certificate_watch_live`; a certificate within 30 days of expiry that is not renewing gets
a recorded reason (the admin's "certificate trouble" filter) and its owners one email.
https://docs.aws.amazon.com/acm/latest/userguide/managed-renewal.html
https://docs.aws.amazon.com/acm/latest/userguide/troubleshooting-renewal.html
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from domains import queueing
from domains.integrations import acm, cdn, dns, dns_caa
from domains.integrations.errors import IntegrationError
from domains.models import (
    EDGE_ROUTED_STATUSES,
    CustomDomain,
    DomainEvent,
    DomainStatus,
    EventKind,
    Prevalidation,
)
from domains.task_names import TaskName
from notifications import outbox
from workflow import certificate_budget, lifecycle

log = logging.getLogger(__name__)

# A certificate this close to expiry that is not renewing is "in trouble": ACM starts renewing
# 60 days ahead, so a month left means its attempts are failing. Not a setting: no
# deployment has a reason to warn customers later, and earlier would flag healthy renewals.
TROUBLE_WINDOW = timedelta(days=30)
# At most one DescribeCertificate per domain per interval, however often it is checked:
# ACM's request rate is shared with registrations, and a day's change of renewal status
# needs no finer watch.
WATCH_INTERVAL = timedelta(hours=12)

SOURCE = "system:certificate-watch"
# Renewal statuses that mean ACM is on it (or done); anything else near expiry is trouble.
# https://docs.aws.amazon.com/acm/latest/APIReference/API_RenewalSummary.html
RENEWING_STATUSES = frozenset({"SUCCESS", "PENDING_AUTO_RENEWAL"})
# dns.RoutingCheck reasons, in the owner's words.
CNAME_PROBLEMS = {
    "nxdomain": "missing (the name does not exist)",
    "no_cname": "missing (the name has no CNAME)",
    "wrong_target": "wrong (it points elsewhere)",
    "loop": "wrong (it loops)",
}


@dataclass(frozen=True)
class Trouble:
    code: str  # expired | not_renewing | not_pointed_at_us | not_in_use |
    # validation_cname_missing | caa_forbids_amazon
    message: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _day(value: datetime) -> str:
    return f"{value:%d %B %Y}"


# --- the request ------------------------------------------------------------------------------


def domain_request_certificate(*, domain_id: int) -> str:
    domain = CustomDomain.objects.filter(pk=domain_id).first()
    if domain is None:
        return "missing"
    if domain.certificate_arn:
        return "exists"
    if domain.status != DomainStatus.PENDING_VALIDATION:
        return "not_pending"
    if cdn.strategy().managed_certificates and domain.prevalidation != Prevalidation.ACM:
        return "not_needed"  # CloudFront manages this domain's certificate
    # --- certificate budget ---
    try:
        certificate_budget.certificate_budget_consume(workspace=domain.workspace, kind="acm")
    except certificate_budget.CertificateBudgetExceeded as exc:
        # Held, not failed: the next check (while the CNAME points at us) asks again.
        checks = {**(domain.checks or {}), "certificate": {
            "ok": False, "detail": f"Certificate request held: {exc.message}",
            "at": timezone.now().isoformat(), "held": True}}
        CustomDomain.objects.filter(pk=domain.pk, certificate_arn="").update(
            checks=checks, last_error=exc.message)
        return "held"
    # --- end certificate budget ---
    arn = acm.request_certificate(
        hostname=domain.hostname,
        key=certificate_request_key(domain),
        tags={"vedomains-domain-id": str(domain.pk), "vedomains-workspace": domain.workspace.slug},
    )
    now = timezone.now()
    with transaction.atomic():
        # The arn is stored whatever the status now is, so a removal that raced with this
        # request still finds (and deletes) the certificate.
        stored = CustomDomain.objects.filter(pk=domain.pk, certificate_arn="").update(
            certificate_arn=arn, certificate_status=acm.AcmStatus.PENDING_VALIDATION,
            certificate_requested_at=now, updated_at=now,
        )
        if stored:
            lifecycle.event_record(domain=domain, kind=EventKind.CERTIFICATE_REQUESTED,
                                   source="system:acm", data={"arn": arn})
    certificate_refresh(domain_id=domain.pk, arn=arn)
    return "requested"


def certificate_refresh(*, domain_id: int, arn: str) -> acm.Certificate | None:
    """Store the status and validation records as soon as ACM publishes them."""
    cert = certificate_describe_or_none(arn)
    if cert is not None:
        CustomDomain.objects.filter(pk=domain_id, certificate_arn=arn).update(
            certificate_status=cert.status, validation_records=cert.validation_records
        )
    return cert


def certificate_describe_or_none(arn: str) -> acm.Certificate | None:
    """A certificate we could not read this time is read again at the next check; one ACM
    no longer has comes back with status MISSING (see below)."""
    try:
        return acm.describe_certificate(arn)
    except IntegrationError as exc:
        if exc.code == NOT_FOUND_CODE:
            return missing_certificate(arn)
        log.info("describe %s failed: %s", arn, exc)
        return None


# --- a certificate ACM no longer has ------------------------------------------------
#
# Someone deleted a pending certificate in the AWS console, or the local stack restarted (moto
# keeps its certificates in memory). Before, every check logged ResourceNotFoundException for
# ever while API, admin and dashboard showed an empty error, and only remove-and-register got
# the domain going. Now the check that meets it records it once (status MISSING, the reason
# in `last_error` and in the certificate check, a CERTIFICATE_MISSING audit event), forgets
# the ARN and queues a new request, under a new idempotency token: ACM (and moto) answer a
# token repeated within the hour with the same, deleted, ARN.
# https://docs.aws.amazon.com/acm/latest/APIReference/API_RequestCertificate.html

MISSING = "MISSING"
NOT_FOUND_CODE = "ResourceNotFoundException"
# The new certificate's request is queued at once; look again soon after.
MISSING_RECHECK_AFTER = timedelta(seconds=5)


def missing_certificate(arn: str) -> acm.Certificate:
    return acm.Certificate(
        arn=arn, status=MISSING,
        failure_reason=f"The certificate {arn} no longer exists in ACM (deleted outside "
        "vedomains, or the local AWS emulator restarted); a new one is being requested.",
    )


def certificate_request_key(domain: CustomDomain) -> str:
    """Idempotency key of the domain's next request: a new one after each missing
    certificate, the original one otherwise."""
    key = f"vedomains:{domain.pk}:{domain.hostname}"
    replaced = DomainEvent.objects.filter(domain=domain,
                                          kind=EventKind.CERTIFICATE_MISSING).count()
    return f"{key}:{replaced}" if replaced else key


def certificate_replace_missing(*, domain: CustomDomain, cert: acm.Certificate,
                                checks: dict[str, Any], now: datetime, source: str) -> bool:
    """Record the missing certificate and queue a new request; False if the domain moved on
    meanwhile (another check did it, or the status or certificate changed)."""
    checks = {**checks, "certificate": {"ok": False, "detail": cert.failure_reason,
                                        "at": now.isoformat(), "status": MISSING}}
    with transaction.atomic():
        applied = CustomDomain.objects.filter(
            pk=domain.pk, status=domain.status, certificate_arn=cert.arn
        ).update(
            certificate_arn="", certificate_status=MISSING, validation_records=[],
            checks=checks, last_error=cert.failure_reason, last_checked_at=now,
            check_count=F("check_count") + 1, next_check_at=now + MISSING_RECHECK_AFTER,
            updated_at=now,
        ) == 1
        if applied:
            lifecycle.event_record(domain=domain, kind=EventKind.CERTIFICATE_MISSING,
                                   source=source, message=cert.failure_reason,
                                   data={"arn": cert.arn})
            queueing.enqueue_after_commit(TaskName.DOMAIN_REQUEST_CERTIFICATE, domain.pk)
    if applied:
        log.warning("%s: certificate %s no longer exists; requesting a new one",
                    domain.hostname, cert.arn)
    return applied


# --- the watch --------------------------------------------------------------------------------


def certificate_watch_live(*, domain: CustomDomain, routing_ok: bool, checks: dict[str, Any],
                           now: datetime) -> None:
    """Engine hook (re-check of active and misconfigured domains, DNS verdict known).

    At most one DescribeCertificate per domain per WATCH_INTERVAL, so
    on-demand checks cannot exhaust ACM's request rate. An ACM error skips the watch this
    time; it never fails the DNS check it rides on.
    """
    if not domain.certificate_arn or domain.status not in EDGE_ROUTED_STATUSES:
        return
    last = domain.certificate_checked_at
    if last is not None and now - last < WATCH_INTERVAL:
        return
    try:
        cert = acm.describe_certificate(domain.certificate_arn)
    except IntegrationError as exc:
        log.info("certificate watch of %s skipped: %s", domain.hostname, exc)
        return
    certificate_watch(domain=domain, cert=cert, now=now, routing_ok=routing_ok, checks=checks)


def certificate_watch(*, domain: CustomDomain, cert: acm.Certificate, now: datetime,
                      routing_ok: bool = True, checks: dict[str, Any] | None = None
                      ) -> list[Trouble]:
    """Record expiry and renewal status; record, announce or clear trouble."""
    troubles = certificate_diagnose(domain=domain, cert=cert, now=now, routing_ok=routing_ok)
    # Stable text (absolute dates only), so an unchanged problem is not re-announced daily.
    text = " ".join(t.message for t in troubles)
    not_after = outbox.datetime_iso(cert.not_after) if cert.not_after else ""
    if checks is not None:
        checks["certificate_renewal"] = {
            "ok": not troubles,
            "detail": text or (f"Valid until {_day(cert.not_after)}; renewal status "
                               f"{cert.renewal_status or 'not started'}." if cert.not_after
                               else f"Certificate is {cert.status}."),
            "at": now.isoformat(), "not_after": not_after,
            "renewal_status": cert.renewal_status, "reasons": [t.code for t in troubles],
        }
    fields: dict[str, Any] = {
        "certificate_not_after": cert.not_after,
        "certificate_renewal_status": cert.renewal_status,
        "certificate_checked_at": now,
        "certificate_trouble": text,
        "certificate_trouble_at": (domain.certificate_trouble_at or now) if troubles else None,
    }
    with transaction.atomic():
        # Only for the certificate we looked at: a concurrent replacement wins.
        if not CustomDomain.objects.filter(pk=domain.pk, certificate_arn=cert.arn).update(
                **fields):
            return troubles
        previous = domain.certificate_trouble
        for name, value in fields.items():
            setattr(domain, name, value)
        if troubles and text != previous:
            event = lifecycle.event_record(
                domain=domain, kind=EventKind.ERROR, source=SOURCE,
                message=f"Certificate trouble: {text}",
                data={"certificate_trouble": [t.code for t in troubles], "not_after": not_after,
                      "renewal_status": cert.renewal_status, "arn": cert.arn},
            )
            # The email goes once per certificate and expiry (a unique key in the outbox);
            # a webhook event goes with every change of the reasons.
            queueing.enqueue_all_after_commit(outbox.outbox_certificate_trouble(
                domain=domain, event=event, reasons=[t.as_dict() for t in troubles],
                certificate={"arn": cert.arn, "not_after": not_after,
                             "renewal_status": cert.renewal_status, "trouble": text},
            ))
        elif not troubles and previous:
            lifecycle.event_record(domain=domain, kind=EventKind.ERROR, source=SOURCE,
                                  message="Certificate trouble resolved.",
                                  data={"certificate_trouble": [], "not_after": not_after,
                                        "renewal_status": cert.renewal_status})
    return troubles


def certificate_diagnose(*, domain: CustomDomain, cert: acm.Certificate, now: datetime,
                         routing_ok: bool) -> list[Trouble]:
    """Why this certificate will not renew in time ([] when it is fine or not yet due)."""
    if cert.not_after is None or cert.not_after - now > TROUBLE_WINDOW:
        return []
    host, target = domain.hostname, settings.VEDOMAINS_CNAME_TARGET
    expires = _day(cert.not_after)
    troubles: list[Trouble] = []
    if cert.not_after <= now:
        troubles.append(Trouble(
            "expired", f"The certificate for {host} expired on {expires}.",
            "Fix the problems listed here; a new certificate is issued once they are fixed."))
    if cert.renewal_status not in RENEWING_STATUSES:
        troubles.append(Trouble(
            "not_renewing",
            f"The certificate expires on {expires} and Amazon is not renewing it "
            f"(renewal status: {cert.renewal_status or 'not started'}).",
            "Fix the DNS problems listed here; renewal resumes by itself once they are fixed."))
    if not routing_ok:
        troubles.append(Trouble(
            "not_pointed_at_us",
            f"{host} no longer points to {target}, so the certificate cannot be renewed.",
            f"Set the record CNAME {host} -> {target} at your DNS provider."))
    if not cert.in_use_by:
        # ACM only renews certificates that are in use.
        troubles.append(Trouble(
            "not_in_use", f"The certificate for {host} is not attached to our CDN any more, "
            "so Amazon will not renew it.", "Nothing for you to do: our team is looking at it."))
    records = cert.validation_records or list(domain.validation_records or [])
    troubles.extend(async_to_sync(_dns_troubles)(host, records))
    return troubles


async def _dns_troubles(hostname: str, records: list[dict[str, str]]) -> list[Trouble]:
    """Validation CNAMEs still in place, and CAA still allowing Amazon (one resolver, in parallel).

    A timeout or SERVFAIL tells us nothing, so it is never reported as the customer's fault.
    """
    resolver = dns.make_resolver()
    cnames = [(r["name"].rstrip(".").lower(), r["value"].rstrip(".").lower())
              for r in records if r.get("type", "CNAME") == "CNAME"]
    first, *rest = await asyncio.gather(
        dns_caa.lookup_caa_async(resolver, hostname),
        *(dns.check_routing_async(resolver, name, value) for name, value in cnames),
    )
    # gather() over two kinds of coroutine types its results as object.
    caa = cast(dns_caa.CaaResult, first)
    validations = cast(list[dns.RoutingCheck], rest)
    troubles: list[Trouble] = []
    for (name, value), check in zip(cnames, validations, strict=True):
        if not check.ok and not check.transient:
            troubles.append(Trouble(
                "validation_cname_missing",
                f"The certificate validation record CNAME {name} -> {value} is "
                f"{CNAME_PROBLEMS.get(check.reason, 'wrong')}, so Amazon cannot renew the "
                "certificate.",
                f"Create the record CNAME {name} -> {value} at your DNS provider, exactly "
                "as written."))
    issuers = caa.issuers("issue")
    if caa.forbids_amazon():
        allowed = ", ".join(i for i in issuers if i) or "no certificate authority"
        troubles.append(Trouble(
            "caa_forbids_amazon",
            f"The CAA records at {caa.found_at} allow only {allowed} to issue certificates, "
            "not Amazon.",
            f'Add the record CAA {caa.found_at} 0 issue "amazon.com" at your DNS provider '
            "(keep your other CAA records)."))
    return troubles


# --- expired certificates of removed domains -------------------------------------------------


def certificates_sweep_expired() -> dict[str, int]:
    """Delete EXPIRED ACM certificates that belonged to removed domains.

    `domain_cleanup` deletes a removed domain's current certificate; this catches the rest
    (a duplicate request, a cleanup given up on). Deleting is allowed only when the
    certificate is provably ours: a removed domain still records this ARN, or the tags name a
    removed domain of ours and its workspace (an ARN shared by two environments' databases
    would fail the workspace check). A certificate a live domain uses is never touched.
    """
    counts = {"expired": 0, "deleted": 0, "kept": 0}
    arns = acm.list_certificate_arns(statuses=[acm.AcmStatus.EXPIRED])
    counts["expired"] = len(arns)
    holders = {d.certificate_arn: d for d in CustomDomain.objects.select_related("workspace")
               .filter(certificate_arn__in=arns)}
    for arn in arns:
        domain = holders.get(arn)
        if domain is None:
            tags = acm.certificate_tags(arn)
            try:
                domain_id = int(tags.get("vedomains-domain-id", ""))
            except ValueError:
                counts["kept"] += 1
                continue
            domain = (CustomDomain.objects.select_related("workspace")
                      .filter(pk=domain_id, workspace__slug=tags.get("vedomains-workspace", ""))
                      .first())
        if domain is None or domain.status != DomainStatus.REMOVED:
            counts["kept"] += 1
            continue
        try:
            acm.delete_certificate(arn)
        except IntegrationError as exc:
            # One stuck certificate (still in use somewhere) must not stop the sweep.
            log.warning("sweep could not delete %s: %s", arn, exc)
            counts["kept"] += 1
            continue
        with transaction.atomic():
            CustomDomain.objects.filter(pk=domain.pk, certificate_arn=arn).update(
                certificate_arn="", certificate_status="DELETED")
            lifecycle.event_record(domain=domain, kind=EventKind.CERTIFICATE_DELETED,
                                  source="system:certificate-sweep",
                                  data={"arn": arn, "reason": "expired"})
        counts["deleted"] += 1
    return counts
