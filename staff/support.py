"""Reads for staff support: a domain in words, and finding a domain however it is spelt.

A support person needs four answers before anything else: what state the domain is in,
what is wrong, what the customer must do (the exact records, to read out), and what
happens next and when. `domain_summary` gives them from the stored record (no AWS or DNS
call), so the admin page costs a couple of queries. The admin only renders what this
module returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final, assert_never

import idna
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.timesince import timesince, timeuntil

from domains import dns_doctor, selectors
from domains.dns_doctor import DiagnosisCode
from domains.hostnames import HostnameError, normalize_search_hostname
from domains.integrations.acm import AcmRenewalStatus, AcmStatus
from domains.integrations.cdn import ManagedCertificateStatus
from domains.models import (
    CERTIFICATE_ISSUED_STATUSES,
    CustomDomain,
    DomainEvent,
    DomainStatus,
    EventKind,
)

AUDIT_TRAIL_LIMIT = 50


def acm_status_words(status: AcmStatus) -> str:
    """An ACM certificate's status as a support person says it (exhaustive: a status added
    to AcmStatus fails the type check here)."""
    match status:
        case AcmStatus.PENDING_VALIDATION:
            return "Waiting for validation"
        case AcmStatus.ISSUED:
            return "Issued"
        case AcmStatus.INACTIVE:
            return "Inactive"
        case AcmStatus.EXPIRED:
            return "Expired"
        case AcmStatus.VALIDATION_TIMED_OUT:
            return "Validation timed out"
        case AcmStatus.REVOKED:
            return "Revoked"
        case AcmStatus.FAILED:
            return "Failed"
        case _:
            assert_never(status)


def managed_status_words(status: ManagedCertificateStatus) -> str:
    """A CloudFront-managed certificate's status (the default path), in the same words as
    ACM's: the two enums name the same states (tests/test_every_status.py keeps them so)."""
    return acm_status_words(AcmStatus[status.name])


def renewal_status_words(status: AcmRenewalStatus) -> str:
    match status:
        case AcmRenewalStatus.PENDING_AUTO_RENEWAL:
            return "Renewal under way"
        case AcmRenewalStatus.PENDING_VALIDATION:
            return "Renewal waiting for validation"
        case AcmRenewalStatus.SUCCESS:
            return "Renewed"
        case AcmRenewalStatus.FAILED:
            return "Renewal failed"
        case _:
            assert_never(status)


# `certificate_status` holds either kind (ACM upper case, CloudFront lower case), blank
# before any request, or MISSING (certificates.py) once ACM no longer has it.
CERTIFICATE_STATUS_WORDS: Final[dict[str, str]] = {
    "": "Not requested yet",
    **{status: acm_status_words(status) for status in AcmStatus},
    "MISSING": "Missing (no longer in ACM; a new one is requested)",
    **{status: managed_status_words(status) for status in ManagedCertificateStatus},
}
RENEWAL_STATUS_WORDS: Final[dict[str, str]] = {
    "": "No renewal under way",
    **{status: renewal_status_words(status) for status in AcmRenewalStatus},
}


def state_words(status: DomainStatus) -> str:
    """The state's name as support says it to customers, everywhere staff look (list badge,
    filter, dashboard, audit trail); the API keeps the status codes."""
    match status:
        case DomainStatus.PENDING_VALIDATION:
            return "Setting up"
        case DomainStatus.DEPLOYING:
            return "Deploying"
        case DomainStatus.ACTIVE:
            return "Live"
        case DomainStatus.MISCONFIGURED:
            return "Misconfigured"
        case DomainStatus.FAILED:
            return "Failed"
        case DomainStatus.REMOVED:
            return "Removed"
        case _:
            assert_never(status)


def state_tone(status: DomainStatus) -> str:
    """Badge colour per state; the template maps tones to styles."""
    match status:
        case DomainStatus.PENDING_VALIDATION | DomainStatus.DEPLOYING:
            return "wait"
        case DomainStatus.ACTIVE:
            return "ok"
        case DomainStatus.MISCONFIGURED:
            return "warn"
        case DomainStatus.FAILED:
            return "bad"
        case DomainStatus.REMOVED:
            return "gone"
        case _:
            assert_never(status)


def status_words(value: str) -> str:
    """`state_words` for a stored value that may not be a status (an old audit row)."""
    try:
        return state_words(DomainStatus(value))
    except ValueError:
        return value


# Built from the functions above, so a status without words fails at import, not on a page.
STATE_WORDS = {status: state_words(status) for status in DomainStatus}
STATE_TONES = {status: state_tone(status) for status in DomainStatus}

# The DNS check's verdicts (domains.integrations.dns RoutingCheck.reason) in plain words.
DNS_REASON_WORDS = {
    "nxdomain": "The hostname does not exist in DNS: the routing CNAME has not been created.",
    "no_cname": "The hostname has no CNAME record pointing at us.",
    "wrong_target": "The hostname's CNAME points somewhere else, not at us.",
    "loop": "The hostname's CNAME records form a loop.",
    "transient": "Our DNS lookup failed on the way (a temporary error, not the customer's "
                 "setup); it is retried automatically.",
}

CHECK_LABELS = {
    "dns": "Routing CNAME",
    "ownership": "Ownership TXT",
    "certificate": "Certificate",
    "cdn": "CDN attachment",
    "certificate_renewal": "Certificate renewal",
    "caa": "CAA (who may issue certificates)",
}

PURPOSE_LABELS = {
    "routing": "Routing (sends traffic to us)",
    "certificate_validation": "Certificate validation",
    "ownership": "Ownership proof",
}

# Where an event came from, as "who did it" reads: alone for the system, after the user's
# name for a person ("alice, in the admin").
SOURCE_WORDS = {
    "api": "through the API",
    "admin": "in the admin",
}
SYSTEM_SOURCE_WORDS = {
    "check": "Automatic check",
    "acm": "Automatic certificate request",
    "cleanup": "Automatic clean-up",
    "edge": "Automatic edge sync",
}


@dataclass(frozen=True)
class RecordLine:
    purpose: str
    type: str
    name: str
    value: str
    # "found", "missing" or "" (not known from the last check).
    found: str
    # What the last check saw, in words (`record_found`).
    found_words: str = ""

    # The name and value in pieces that end where a line may break (after a dot or an
    # equals sign): a DNS name wrapped mid-label reads as two different names.
    @property
    def name_parts(self) -> list[str]:
        return wrap_parts(self.name)

    @property
    def value_parts(self) -> list[str]:
        return wrap_parts(self.value)


def wrap_parts(text: str) -> list[str]:
    return [part for part in re.split(r"(?<=[.=])", text) if part]


@dataclass(frozen=True)
class CheckLine:
    label: str
    ok: bool | None
    detail: str
    at: datetime | None


@dataclass(frozen=True)
class Moment:
    """A time worth knowing, e.g. "Next check" or "Fails if not fixed by"."""

    label: str
    at: datetime
    note: str = ""
    when: str = ""


@dataclass(frozen=True)
class DomainSummary:
    state: str
    tone: str
    headline: str
    reason: str
    action: str
    records_heading: str
    records: list[RecordLine]
    next_step: str
    moments: list[Moment]
    checks_heading: str
    checks: list[CheckLine]
    certificate: str
    reason_heading: str = "What is wrong"
    # How a check's result reads: (passed, not passed).
    result_words: tuple[str, str] = ("OK", "Not yet")


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    who: str
    what: str
    change: str
    message: str


# ACM says ISSUED, a CloudFront-managed certificate says issued (defined with the model, so
# lower layers such as the checks use the same set).
ISSUED_STATUSES = CERTIFICATE_ISSUED_STATUSES


def certificate_issued(domain: CustomDomain) -> bool:
    return domain.certificate_status in ISSUED_STATUSES


def certificate_status_words(status: str) -> str:
    return CERTIFICATE_STATUS_WORDS.get(status, status.replace("_", " ").capitalize())


def _at(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return parse_datetime(value)
        except ValueError:
            return None
    return None


def _checks(domain: CustomDomain) -> dict[str, dict[str, Any]]:
    raw = domain.checks if isinstance(domain.checks, dict) else {}
    return {k: (v if isinstance(v, dict) else {"detail": str(v)}) for k, v in raw.items()}


def _dns_reason(check: dict[str, Any]) -> str:
    doctor = dns_doctor.stored_diagnosis({"dns": check})
    if doctor:  # the DNS doctor named the mistake: its words, not the verdict's
        return doctor[0]["message"]
    words = DNS_REASON_WORDS.get(str(check.get("reason", "")), "")
    detail = str(check.get("detail", ""))
    return f"{words} {detail}".strip() if words else detail


def domain_problem(domain: CustomDomain) -> str:
    """One line for the list: what is wrong now, or "" when nothing is. No queries."""
    checks = _checks(domain)
    status = DomainStatus(domain.status)
    if status == DomainStatus.REMOVED:
        return "Clean-up pending" if domain.cleanup_pending else ""
    if domain.certificate_trouble:
        return domain.certificate_trouble
    if domain.last_error:
        return domain.last_error
    match status:
        case DomainStatus.PENDING_VALIDATION:
            dns = checks.get("dns")
            if dns is None:
                return "Waiting for the first check"
            if not dns.get("ok"):
                return _dns_reason(dns)
            if domain.ownership_required and domain.ownership_verified_at is None:
                return "Ownership TXT record not found yet"
            if not certificate_issued(domain):
                return f"Certificate: {certificate_status_words(domain.certificate_status)}"
            return ""
        case (DomainStatus.DEPLOYING | DomainStatus.ACTIVE | DomainStatus.MISCONFIGURED
              | DomainStatus.FAILED | DomainStatus.REMOVED):
            return ""
        case _:
            assert_never(status)


def record_found(*, domain: CustomDomain, purpose: str,
                 checks: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """Whether the last check found one DNS record, as (tone, words) for the records table.

    tone is "found", "missing" or "" (not known from the last check); words say what was
    found instead when the customer must change something ("points at X, must point at
    domain.ve.ai"). The one place these words come from, so a fuller DNS diagnosis can
    replace them.
    """
    if purpose == "routing":
        dns = checks.get("dns")
        if dns is None or dns.get("ok") is None:
            return "", "not checked"
        if dns.get("ok"):
            return "found", "found"
        if dns.get("reason") == "transient":
            return "", "lookup failed; retrying"
        # The DNS doctor's name for the mistake, when the last check made a diagnosis.
        doctor = _routing_found(checks)
        if doctor != "missing":
            return "missing", doctor
        chain = [str(name) for name in dns.get("chain") or []]
        target = settings.VEDOMAINS_CNAME_TARGET
        if dns.get("reason") == "wrong_target" and len(chain) > 1:
            return "missing", f"points at {chain[1]}, must point at {target}"
        if dns.get("reason") == "loop":
            return "missing", f"CNAME loop; must point at {target}"
        return "missing", "missing"
    if purpose == "certificate_validation":
        return ("found", "found") if certificate_issued(domain) else ("", "not checked")
    if domain.ownership_verified_at:
        return "found", "found"
    return "missing", "missing"


def _record_lines(domain: CustomDomain, checks: dict[str, dict[str, Any]]) -> list[RecordLine]:
    lines = []
    for rec in selectors.domain_dns_records(domain):
        purpose = rec["purpose"]
        found, words = record_found(domain=domain, purpose=purpose, checks=checks)
        lines.append(RecordLine(PURPOSE_LABELS.get(purpose, purpose), rec["type"], rec["name"],
                                rec["value"], found, words))
    return lines


def _routing_found(checks: dict[str, dict[str, Any]]) -> str:
    """What the DNS doctor found at the routing record, in a few words; "missing" when it
    named nothing (never "missing" for a CNAME that exists but points elsewhere)."""
    for entry in dns_doctor.stored_diagnosis(checks):
        code = dns_doctor.code_of(entry)
        if code is not None and code not in (DiagnosisCode.CAA_FORBIDS_AMAZON,
                                             DiagnosisCode.OLD_ANSWER_CACHED):
            return dns_doctor.short_words(code)
    return "missing"


@dataclass(frozen=True)
class DiagnosisLine:
    words: str
    message: str
    fix: str
    docs_url: str


def domain_diagnosis(*, domain: CustomDomain) -> list[DiagnosisLine]:
    """The DNS doctor's findings from the last check, for the support page. No queries."""
    lines = []
    for entry in dns_doctor.stored_diagnosis(domain.checks):
        code = dns_doctor.code_of(entry)
        lines.append(DiagnosisLine(dns_doctor.short_words(code) if code else entry["code"],
                                   entry["message"], entry["fix"], entry["docs_url"]))
    return lines


def _check_lines(checks: dict[str, dict[str, Any]]) -> list[CheckLine]:
    order = list(CHECK_LABELS)
    names = sorted(checks, key=lambda n: (order.index(n) if n in order else len(order), n))
    lines = []
    for name in names:
        result = checks[name]
        ok = result.get("ok")
        detail = str(result.get("detail", ""))
        status = str(result.get("status", ""))
        if status and detail == f"Certificate is {status}.":
            detail = f"{certificate_status_words(status)}."
        lines.append(CheckLine(CHECK_LABELS.get(name, name.replace("_", " ").capitalize()),
                               ok if isinstance(ok, bool) else None, detail,
                               _at(result.get("at"))))
    return lines


def _next_check(domain: CustomDomain, now: datetime) -> list[Moment]:
    if domain.next_check_at is None:
        return []
    note = ""
    # The fast-check note only while the next check is inside that window: "in 23 hours
    # (checked every 3 s ...)" would contradict itself.
    if (domain.fast_checks_until and domain.fast_checks_until > now
            and domain.next_check_at <= domain.fast_checks_until):
        note = (f"checked every {settings.VEDOMAINS_FAST_CHECK_SECONDS} s until "
                f"{timezone.localtime(domain.fast_checks_until):%H:%M}")
    elif domain.next_check_at <= now + timedelta(minutes=1):
        note = "due now"
    return [Moment("Next check", domain.next_check_at, note)]


def _removal_event(domain: CustomDomain) -> DomainEvent | None:
    return (DomainEvent.objects.filter(domain=domain, kind=EventKind.STATUS_CHANGED,
                                       to_status=DomainStatus.REMOVED)
            .select_related("actor").order_by("-created_at", "-id").first())


def _who(event: DomainEvent) -> str:
    source = event.source
    if event.actor_id is not None and event.actor is not None:
        return f"{event.actor.get_username()}, {SOURCE_WORDS.get(source, 'via ' + source)}"
    if source == "api":
        return "The customer's app (API)"
    if source.startswith("system:"):
        kind = source.split(":", 1)[1]
        return SYSTEM_SOURCE_WORDS.get(kind, f"Automatic ({kind})")
    if source.startswith("command:"):
        return f"Command {source.split(':', 1)[1]}"
    return source


def relative(at: datetime, now: datetime) -> str:
    """'in 3 hours, 5 minutes', '2 days ago', or 'now' within a minute."""
    if abs((at - now).total_seconds()) < 60:
        return "now"
    if at > now:
        return f"in {timeuntil(at, now, depth=2)}"
    return f"{timesince(at, now, depth=2)} ago"


def domain_summary(*, domain: CustomDomain, now: datetime | None = None) -> DomainSummary:
    """The domain in words: state, what is wrong, what the customer must do, what comes next."""
    now = now or timezone.now()
    summary = _summary(domain, now)
    return replace(summary, moments=[replace(m, when=relative(m.at, now))
                                     for m in summary.moments])


def _summary(domain: CustomDomain, now: datetime) -> DomainSummary:
    checks = _checks(domain)
    status = DomainStatus(domain.status)
    certificate = certificate_status_words(domain.certificate_status)
    if domain.certificate_renewal_status and status in (DomainStatus.ACTIVE,
                                                        DomainStatus.MISCONFIGURED):
        renewal = RENEWAL_STATUS_WORDS.get(domain.certificate_renewal_status,
                                           domain.certificate_renewal_status)
        certificate = f"{certificate}; {renewal.lower()}"
    records = _record_lines(domain, checks)
    moments = _next_check(domain, now)
    common: dict[str, Any] = {
        "state": state_words(status), "tone": state_tone(status), "certificate": certificate,
        "checks": _check_lines(checks), "checks_heading": "Checks (last result of each)",
        "records": records, "moments": moments,
    }
    # Exhaustive: a status added elsewhere fails type checks and tests here, not a page.
    match status:
        case DomainStatus.PENDING_VALIDATION:
            return _pending_summary(domain, checks, certificate, common)
        case DomainStatus.DEPLOYING:
            return _deploying_summary(domain, checks, common)
        case DomainStatus.ACTIVE:
            return _active_summary(domain, common)
        case DomainStatus.MISCONFIGURED:
            return _misconfigured_summary(domain, checks, now, common)
        case DomainStatus.FAILED:
            return _failed_summary(domain, common)
        case DomainStatus.REMOVED:
            return _removed_summary(domain, common)
        case _:
            assert_never(status)


def _ownership_why() -> str:
    if settings.VEDOMAINS_OWNERSHIP_TXT == "always":
        return "Every new domain needs the ownership TXT record on this platform."
    return ("The ownership TXT record is required because another workspace has held this "
            "hostname before: it proves the customer controls the hostname's DNS.")


def _pending_summary(domain: CustomDomain, checks: dict[str, dict[str, Any]],
                     certificate: str, common: dict[str, Any]) -> DomainSummary:
    moments = common["moments"]
    deadline = domain.created_at + timedelta(seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS)
    moments.append(Moment("Fails if still not set up by", deadline))
    dns = checks.get("dns")
    if dns is None:
        headline, reason = "Waiting for the first check.", "No check has run yet."
    elif not dns.get("ok"):
        transient = dns.get("reason") == "transient"
        headline = ("Checking: the last DNS lookup failed on our side." if transient
                    else "Waiting for the customer's DNS record.")
        reason = _dns_reason(dns)
    elif domain.ownership_required and domain.ownership_verified_at is None:
        headline = "Waiting for the ownership TXT record."
        reason = str(checks.get("ownership", {}).get("detail", "")) or (
            "The ownership TXT record has not been found yet.")
        reason = f"{reason} {_ownership_why()}"
    elif not certificate_issued(domain):
        headline = "DNS is right; waiting for the certificate."
        reason = (f"The certificate is not issued yet ({certificate.lower()}). "
                  + str(checks.get("certificate", {}).get("detail", ""))).strip()
    else:
        headline = "DNS and certificate are ready; attaching to the CDN."
        reason = str(checks.get("cdn", {}).get("detail", ""))
    if domain.last_error and domain.last_error not in reason:
        reason = f"{reason} Last error: {domain.last_error}".strip()
    action = ("Create the DNS records below at their DNS provider, exactly as shown. "
              f"The routing CNAME must point at {settings.VEDOMAINS_CNAME_TARGET}.")
    if domain.ownership_required and domain.ownership_verified_at is None:
        action = f"{action} {_ownership_why()}"
    return DomainSummary(
        **common, headline=headline, reason=reason, action=action,
        records_heading="DNS records the customer must create",
        next_step=("When every record is found and the certificate is issued, the domain "
                   "is deployed on the CDN and goes live; the customer is emailed."))


def _deploying_summary(domain: CustomDomain, checks: dict[str, dict[str, Any]],
                       common: dict[str, Any]) -> DomainSummary:
    reason = str(checks.get("cdn", {}).get("detail", ""))
    if domain.last_error and domain.last_error not in reason:
        reason = f"{reason} Last error: {domain.last_error}".strip()
    return DomainSummary(
        **common,
        headline="DNS and certificate are ready; CloudFront is deploying the domain.",
        reason=reason,
        action="Nothing. The records below must stay in place.",
        records_heading="DNS records that must stay in place",
        next_step=("When CloudFront has deployed it (usually a few minutes) the domain goes "
                   "live and the customer is emailed."))


def _active_summary(domain: CustomDomain, common: dict[str, Any]) -> DomainSummary:
    if domain.certificate_not_after:
        common["moments"].append(Moment("Certificate valid until",
                                        domain.certificate_not_after))
    trouble = domain.certificate_trouble
    return DomainSummary(
        **common,
        headline=("Live, but the certificate will not renew." if trouble
                  else "Live: serving traffic."),
        reason=trouble or domain.last_error,
        action=("Fix what stops the certificate renewing (above); keep the records below "
                "in place." if trouble else
                "Nothing. The records below must stay in place."),
        records_heading="DNS records that must stay in place",
        next_step="Re-checked daily; if DNS stops pointing at us the domain becomes "
                  "misconfigured and the customer is emailed.")


def _misconfigured_summary(domain: CustomDomain, checks: dict[str, dict[str, Any]],
                           now: datetime, common: dict[str, Any]) -> DomainSummary:
    since = domain.misconfigured_at or now
    detach_at = since + timedelta(seconds=settings.VEDOMAINS_MISCONFIGURED_GRACE_SECONDS)
    common["moments"].append(Moment("Detached and removed if not fixed by", detach_at))
    dns = checks.get("dns", {})
    return DomainSummary(
        **common,
        headline="Misconfigured: DNS no longer points at us (still served for now).",
        reason=_dns_reason(dns) if dns else domain.last_error,
        action=f"Point the CNAME back at {settings.VEDOMAINS_CNAME_TARGET}, as below.",
        records_heading="DNS records the customer must create",
        next_step=("As soon as a check finds the CNAME again the domain is live again. "
                   "If not fixed by the deadline it is detached and the hostname freed."))


def _failed_summary(domain: CustomDomain, common: dict[str, Any]) -> DomainSummary:
    if domain.failed_at:
        common["moments"].append(Moment("Failed", domain.failed_at))
    return DomainSummary(
        **common, headline="Failed: we stopped trying.", reason_heading="Why it failed",
        reason=domain.last_error or "No reason was recorded.",
        action=("Create the DNS records below, then register the domain again (it is no "
                "longer checked)."),
        records_heading="DNS records the customer must create",
        next_step="Nothing happens by itself: a failed domain is not checked again.")


def _removed_summary(domain: CustomDomain, common: dict[str, Any]) -> DomainSummary:
    # Nothing for the customer to create, and the CDN/certificate/edge lines say where the
    # clean-up stands rather than what the last checks saw before removal.
    event = _removal_event(domain)
    moments = list(common["moments"])
    if domain.removed_at:
        moments = [Moment("Removed", domain.removed_at)]
    if domain.cleanup_pending and domain.next_check_at:
        moments.append(Moment("Next clean-up attempt", domain.next_check_at))
    reason = "No reason was recorded."
    if event is not None:
        message = event.message.strip()
        # The event's message often says "Removed" already; "by" completes it once.
        if not message or message.rstrip(".").lower() == "removed":
            reason = f"Removed by {_who(event)}."
        else:
            reason = f"{message.rstrip('.')}. By: {_who(event)}."
    cleanup = [
        CheckLine("CDN attachment", not domain.cdn_resource_id,
                  "Detached." if not domain.cdn_resource_id
                  else f"Still attached ({domain.cdn_resource_id}); detaching.", None),
        CheckLine("Certificate", not domain.certificate_arn,
                  "Deleted." if not domain.certificate_arn else "Not deleted yet; retrying.",
                  None),
        CheckLine("Edge mapping", domain.edge_in_sync,
                  "Removed from the edge." if domain.edge_in_sync
                  else "Removal not yet pushed to the edge; retrying.", None),
    ]
    certificate = common["certificate"]
    if not domain.certificate_arn:
        certificate = "Deleted" if domain.certificate_status else "None was requested"
    return DomainSummary(
        **{**common, "checks": cleanup, "checks_heading": "Clean-up", "records": [],
           "moments": moments, "certificate": certificate},
        headline="Removed: no longer served.", reason=reason,
        reason_heading="Why it was removed", result_words=("Done", "Pending"),
        action="Nothing. To use the hostname again, the customer registers it again.",
        records_heading="",
        next_step=("Clean-up of CDN, certificate and edge mapping is retried until done."
                   if domain.cleanup_pending else "Nothing: the clean-up is complete."))


def domain_audit_trail(*, domain: CustomDomain, limit: int = AUDIT_TRAIL_LIMIT
                       ) -> list[AuditLine]:
    """The newest `limit` events, each as when / who / what / status change / message."""
    events = (DomainEvent.objects.filter(domain=domain).select_related("actor")
              .order_by("-created_at", "-id")[:limit])
    return [
        AuditLine(
            at=e.created_at, who=_who(e), what=e.get_kind_display(),
            change=(f"{status_words(e.from_status) or '(new)'} \u2192 "
                    f"{status_words(e.to_status)}" if e.to_status else ""),
            message=e.message,
        )
        for e in events
    ]


def hostname_unicode(hostname: str) -> str:
    """The Unicode spelling of a punycode hostname, or "" when it has none."""
    if "xn--" not in hostname:
        return ""
    try:
        return idna.decode(hostname)
    except (idna.IDNAError, UnicodeError, ValueError):
        return ""


def hostname_search_forms(query: str) -> list[str]:
    """The stored spellings a staff search may mean: ['xn--bcher-kva.example.com'] for
    'https://Bücher.example.com./x', a punycode label for a Unicode fragment; [] if none."""
    try:
        host = normalize_search_hostname(query)
    except HostnameError:
        return []
    return [host] if host else []
