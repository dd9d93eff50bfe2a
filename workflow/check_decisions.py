"""What a check decides, as pure functions: from (record, DNS answer, certificate, CDN state,
now) to a verdict. No database, no network, no Celery: `workflow.checks` gathers the inputs,
applies the verdict with its compare-and-swap and performs the effects the verdict names.

The healthchecks split (`Check.get_status` decides, `sendalerts` applies): every branch of
the pending, tenant-pending, deploying and live decisions is a row of
tests/test_check_decisions.py, with no server running.

A verdict carries:
- `checks`: the `checks` JSON the check writes (records typed below; support.py, the API
  and the admin read them, so their shape is a contract);
- `updates`: the fields written with it, only if the status is still the one the check saw
  (`next_check_at` included: when to look again);
- `transition`: the status change and its event, if any (applied in the same transaction);
- `effect`, `alerts`, `enqueue`: the AWS call wanted next, the staff alerts to raise, the
  tasks to queue.
A verdict with none of the last four is a plain "no change, wait": the executor may write
many of them in one statement (`workflow.checks._save_waits`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NotRequired, TypedDict, assert_never, cast

from django.conf import settings

from domains import dns_first
from domains.dns_doctor import DiagnosisDict
from domains.integrations import acm, cdn, dns, dns_caa
from domains.integrations.cdn import ValidationTokenHost
from domains.integrations.errors import IntegrationError
from domains.models import CERTIFICATE_ISSUED_STATUSES, CustomDomain, DomainStatus, Prevalidation
from domains.task_names import TaskName

# A DNS lookup or AWS call that could not tell (timeout, throttling): look again soon.
TRANSIENT_RETRY = timedelta(seconds=60)
CERTIFICATE_READ_INTERVAL = timedelta(minutes=10)
# The status ACM's answer gets when the certificate is gone (certificates.MISSING; that
# module sits above this one, so the word is repeated here and tested equal).
CERTIFICATE_MISSING = "MISSING"


def next_interval(domain: CustomDomain, now: datetime) -> timedelta:
    """Adaptive: every few seconds right after registration or "verify", then backing off.

    Outside the fast window the interval grows with the domain's age (a twelfth of it),
    from the base interval up to the maximum: minutes in the first hour, hours after a day.
    """
    if domain.fast_checks_until and now < domain.fast_checks_until:
        return timedelta(seconds=settings.VEDOMAINS_FAST_CHECK_SECONDS)
    base = timedelta(seconds=settings.VEDOMAINS_CHECK_INTERVAL_SECONDS)
    grown = (now - domain.created_at) / 12
    return min(timedelta(seconds=settings.VEDOMAINS_MAX_CHECK_INTERVAL_SECONDS), max(base, grown))


# --- the `checks` JSON records ----------------------------------------------------------------


class CheckRecordDict(TypedDict):
    ok: bool
    detail: str
    at: str  # ISO 8601


class DnsCheckDict(CheckRecordDict):
    reason: str
    chain: list[str]
    transient: bool
    diagnosis: list[DiagnosisDict]


class OwnershipCheckDict(CheckRecordDict):
    transient: bool


class CaaCheckDict(CheckRecordDict):
    found_at: str
    transient: bool


class CertificateCheckDict(CheckRecordDict):
    status: NotRequired[str]
    managed: NotRequired[bool]
    http_validation: NotRequired[list[dict[str, str]]]
    caa: NotRequired[bool]  # the detail is a CAA record that stops the request
    held: NotRequired[bool]  # held by the certificate budget
    code: NotRequired[str]  # an AWS error code, with its message (aws)
    aws: NotRequired[str]
    wait: NotRequired[str]  # an AwsAnswer: a wait that is not the customer's
    attempt: NotRequired[int]


class CdnCheckDict(CheckRecordDict):
    status: NotRequired[str]
    code: NotRequired[str]
    aws: NotRequired[str]
    capacity: NotRequired[bool]
    wait: NotRequired[str]
    attempt: NotRequired[int]


class RenewalCheckDict(CheckRecordDict):
    not_after: str
    renewal_status: str
    reasons: list[str]


class ChecksDict(TypedDict, total=False):
    """`CustomDomain.checks`: the last result of each look, by subject."""

    dns: DnsCheckDict
    ownership: OwnershipCheckDict
    caa: CaaCheckDict
    certificate: CertificateCheckDict
    cdn: CdnCheckDict
    certificate_renewal: RenewalCheckDict  # written by certificates.certificate_watch


def checks_of(domain: CustomDomain) -> ChecksDict:
    """A copy of the record's `checks` to build the next one on (the JSON is ours)."""
    return cast(ChecksDict, dict(domain.checks or {}))


def check_record(ok: bool, detail: str, now: datetime) -> CheckRecordDict:
    return {"ok": ok, "detail": detail, "at": now.isoformat()}


def dns_record(routing: dns.RoutingCheck, now: datetime,
               diagnosis: list[DiagnosisDict] | None = None) -> DnsCheckDict:
    return {**check_record(routing.ok, routing.detail, now), "reason": routing.reason,
            "chain": list(routing.chain), "transient": routing.transient,
            "diagnosis": diagnosis or []}


def certificate_record(cert: acm.Certificate, now: datetime) -> CertificateCheckDict:
    return {**check_record(cert.issued, cert.failure_reason or f"Certificate is {cert.status}.",
                           now), "status": cert.status}


# --- verdicts ---------------------------------------------------------------------------------


class Outcome(StrEnum):
    """What a check did to one domain (CheckOutcome.outcome; `check_domains` counts them)."""

    SKIPPED = "skipped"
    ERROR = "error"
    WAITING = "waiting"
    CAPACITY = "capacity"
    FAILED = "failed"
    DEPLOYING = "deploying"
    ACTIVATED = "activated"
    REATTACH = "reattach"
    TRANSIENT = "transient"
    OK = "ok"
    FIXED = "fixed"
    MISCONFIGURED = "misconfigured"
    STILL_MISCONFIGURED = "still_misconfigured"
    DETACHED = "detached"
    # The cleanup's own outcomes (workflow.cleanup) pass through as they are.


class Effect(StrEnum):
    """The call out a verdict asks for before it can be completed."""

    NONE = "none"
    ATTACH = "attach"  # per-domain path: attach the CDN, then activation_verdict
    REPLACE_MISSING = "replace_missing"  # the certificate is gone from ACM: request anew


class AlertKind(StrEnum):
    CAPACITY = "capacity"  # a quota of ours (capacity_alerts.capacity_alert_raise)
    UNEXPECTED = "unexpected"  # an AWS answer we do not know (unexpected_answer_alert_raise)


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    code: str
    message: str
    hostname: str


@dataclass(frozen=True)
class Transition:
    """A status change decided with the results: both are written, or neither."""

    to: DomainStatus
    allowed_from: tuple[DomainStatus, ...]
    message: str
    updates: dict[str, Any]
    data: dict[str, Any] | None = None
    # When the compare-and-swap loses (the domain moved on meanwhile): the outcome reported
    # (None: the same), and the task queued with the domain's id in either case.
    lost: Outcome | None = Outcome.SKIPPED
    lost_status: str | None = None
    lost_detail: str | None = None
    enqueue_if_applied: TaskName | None = None
    enqueue_if_lost: TaskName | None = None


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    status: str  # the status reported with the outcome
    checks: ChecksDict
    updates: dict[str, Any] = field(default_factory=dict)
    detail: str = ""
    transition: Transition | None = None
    effect: Effect = Effect.NONE
    alerts: tuple[Alert, ...] = ()
    enqueue: tuple[TaskName, ...] = ()  # tasks queued (domain id) before the results are written

    @property
    def plain_wait(self) -> bool:
        """Only fields to write: no status change, no call out, nothing queued."""
        return (self.transition is None and self.effect == Effect.NONE and not self.alerts
                and not self.enqueue)


def _fail(domain: CustomDomain, reason: str, checks: ChecksDict, updates: dict[str, Any], *,
          now: datetime, data: dict[str, Any] | None = None,
          lost: Outcome | None = Outcome.SKIPPED, alerts: tuple[Alert, ...] = (),
          enqueue: tuple[TaskName, ...] = ()) -> Verdict:
    return Verdict(
        Outcome.FAILED, DomainStatus.FAILED, checks, {**updates, "last_error": reason},
        detail=reason, alerts=alerts, enqueue=enqueue,
        transition=Transition(DomainStatus.FAILED, (DomainStatus.PENDING_VALIDATION,), reason,
                              {"failed_at": now, "next_check_at": None}, data=data, lost=lost))


def hold(domain: CustomDomain, reason: str, checks: ChecksDict, updates: dict[str, Any], *,
         now: datetime, enqueue: tuple[TaskName, ...] = ()) -> Verdict:
    """Waiting on something the customer (CAA) or the budget must change: the usual pace."""
    return Verdict(Outcome.WAITING, domain.status, checks,
                   {**updates, "last_error": reason,
                    "next_check_at": now + next_interval(domain, now)},
                   detail=reason, enqueue=enqueue)


def backoff_wait(domain: CustomDomain, answer: dns_first.AwsAnswer, aws_says: str,
                 checks: ChecksDict, updates: dict[str, Any], *, now: datetime, code: str = "",
                 record: str = "cdn", alerts: tuple[Alert, ...] = (),
                 enqueue: tuple[TaskName, ...] = ()) -> Verdict:
    """A wait that is not the customer's: a reason in words, and a growing interval."""
    previous = (domain.checks or {}).get(record) or {}
    attempt = int(previous.get("attempt", -1)) + 1 if previous.get("wait") == answer else 0
    words = dns_first.wait_words(answer)
    checks = checks.copy()
    if record == "cdn":
        checks["cdn"] = {**check_record(False, words, now), "code": code,
                         "aws": aws_says[:500], "wait": str(answer), "attempt": attempt}
    else:
        # The certificate's own record, if this check wrote one, says what ACM said.
        base: CertificateCheckDict = (
            checks["certificate"] if "certificate" in checks else
            {**check_record(False, words, now), "code": code, "aws": aws_says[:500]})
        checks["certificate"] = {**base, "wait": str(answer), "attempt": attempt}
    return Verdict(Outcome.WAITING, domain.status, checks,
                   {**updates, "last_error": words,
                    "next_check_at": now + dns_first.wait_delay(attempt)},
                   detail=aws_says, alerts=alerts, enqueue=enqueue)


# --- pending: the parts both paths share --------------------------------------------------------


def certificate_read_needed(domain: CustomDomain, now: datetime) -> bool:
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


def doctor_wanted(domain: CustomDomain, routing: dns.RoutingCheck) -> bool | None:
    """Does the DNS doctor look at this domain? None: no; False: fully; True: lightly.

    A domain pointing at us costs nothing more, except a pending one (a CAA record can
    still stop its certificate, an old address record beside the CNAME its visitors). A
    lookup that timed out is not asked again; one that failed with SERVFAIL is (DNSSEC
    shows that way).
    """
    if routing.transient and "SERVFAIL" not in routing.detail:
        return None
    if not routing.ok:
        return False
    if (domain.status == DomainStatus.PENDING_VALIDATION
            and domain.certificate_status not in CERTIFICATE_ISSUED_STATUSES):
        return True
    return None


def ownership(domain: CustomDomain, txt: dns.TxtCheck | None, now: datetime
              ) -> tuple[bool, OwnershipCheckDict | None]:
    """Is ownership proven (or not required)? With the record of the TXT lookup, if made."""
    ownership_ok = not domain.ownership_required or domain.ownership_verified_at is not None
    if ownership_ok or txt is None:
        return ownership_ok, None
    expected = domain.ownership_record_value
    ownership_ok = expected in txt.values
    detail = ("TXT record found." if ownership_ok else
              txt.detail or f"Expected TXT {expected} at {domain.ownership_record_name}.")
    return ownership_ok, {**check_record(ownership_ok, detail, now), "transient": txt.transient}


def caa_record(caa: dns_caa.CaaResult, now: datetime) -> tuple[CaaCheckDict, str]:
    """The CAA look before a first certificate request, and the words when Amazon may not
    issue ("" when it may, or when the lookup could not tell)."""
    forbids = dns_first.caa_forbids_amazon(caa)
    words = dns_first.caa_words(caa) if forbids else ""
    return {**check_record(not forbids, words or (caa.detail if caa.transient else
                                                  "No CAA record stops Amazon from issuing."),
                           now), "found_at": caa.found_at, "transient": caa.transient}, words


def acm_alert(domain: CustomDomain, cert: acm.Certificate | None) -> tuple[Alert, str] | None:
    """An ACM failure that is not the customer's: the staff alert, and its words."""
    if cert is None or not cert.failed:
        return None
    verdict = dns_first.acm_certificate_verdict(cert.status, cert.failure_reason)
    if verdict != dns_first.CertificateVerdict.ALERT_UNKNOWN:
        return None
    text = f"ACM reports the certificate {cert.status} ({cert.failure_reason or 'no reason'})"
    return Alert(AlertKind.UNEXPECTED, f"acm:{cert.status}:{cert.failure_reason}",
                 f"{text}: {cert.arn}", domain.hostname), text


def pending_wait(domain: CustomDomain, routing: dns.RoutingCheck, cert_issued: bool,
                 checks: ChecksDict, updates: dict[str, Any], *, ownership_ok: bool,
                 now: datetime, enqueue: tuple[TaskName, ...] = ()) -> Verdict:
    """Not there yet: save what was found and come back at the next interval."""
    interval = next_interval(domain, now)
    waiting = [name for name, ok in (("dns", routing.ok), ("ownership", ownership_ok),
                                     ("certificate", cert_issued)) if not ok]
    return Verdict(
        Outcome.WAITING, domain.status, checks,
        {**updates,
         "next_check_at": now + (min(TRANSIENT_RETRY, interval) if routing.transient
                                 else interval),
         "last_error": "" if not routing.transient else routing.detail},
        detail="waiting for " + ", ".join(waiting), enqueue=enqueue)


def _transient(result: dns.DnsResult) -> bool:
    return result.routing.transient or (result.txt is not None and result.txt.transient)


def _past_window(domain: CustomDomain, result: dns.DnsResult, now: datetime) -> bool:
    """The pending window is over. A DNS lookup that failed (timeout, SERVFAIL) is no
    verdict, so it cannot end the window; one still failing at twice the window is (the
    customer's nameservers are broken), so a claim cannot be held for ever."""
    age = now - domain.created_at
    window = timedelta(seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS)
    return age > window and (not _transient(result) or age > 2 * window)


# --- pending, per-domain strategy (an ACM certificate, a distribution each) --------------------


@dataclass(frozen=True)
class PendingInputs:
    domain: CustomDomain
    result: dns.DnsResult
    # The certificate as ACM describes it (None: not read, or could not be read).
    cert: acm.Certificate | None
    ownership_ok: bool
    checks: ChecksDict  # with this check's DNS and ownership records
    updates: dict[str, Any]
    now: datetime
    # The CAA look, made when a first certificate is about to be requested.
    caa: dns_caa.CaaResult | None = None


def pending_wants_caa(domain: CustomDomain, routing: dns.RoutingCheck,
                      cert: acm.Certificate | None) -> bool:
    """A certificate is requested only once the routing CNAME shows intent (or pre-validation
    was asked for), so registering and removing names in a loop spends none of the
    account's ACM requests; CAA is looked at first."""
    return (cert is None and not domain.certificate_arn
            and (dns_first.dns_ready(routing) or bool(domain.prevalidation)))


def pending_failure(domain: CustomDomain, result: dns.DnsResult, cert: acm.Certificate | None,
                    *, ownership_ok: bool, now: datetime) -> str:
    """Why the domain fails now ("" while it may still come together): ACM gave up, or
    nothing came together in the pending window."""
    routing = result.routing
    window = timedelta(seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS)
    if cert is not None and cert.failed:
        return f"The certificate could not be issued: {cert.failure_reason or cert.status}."
    if not _past_window(domain, result, now):
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


def pending_verdict(p: PendingInputs) -> Verdict:
    """Pending, per-domain strategy: the certificate, then give up, attach, or wait."""
    domain, routing, cert, now = p.domain, p.result.routing, p.cert, p.now
    checks, updates = p.checks.copy(), dict(p.updates)
    enqueue: tuple[TaskName, ...] = ()
    if cert is not None:
        updates["certificate_status"] = cert.status
        updates["validation_records"] = cert.validation_records
        checks["certificate"] = certificate_record(cert, now)
    elif not domain.certificate_arn:
        if p.caa is not None:
            checks["caa"], caa_block = caa_record(p.caa, now)
            if caa_block:
                checks["certificate"] = {**check_record(False, caa_block, now), "caa": True}
            else:
                # Said as what it is: the request is queued (it may still be held by the
                # certificate budget); the CERTIFICATE_REQUESTED event comes with the ARN.
                checks["certificate"] = {**check_record(False, "Requesting a certificate.", now)}
                enqueue = (TaskName.DOMAIN_REQUEST_CERTIFICATE,)
        else:
            checks["certificate"] = {**check_record(
                False, "Requested once the CNAME points at us.", now)}

    if cert is not None and cert.status == CERTIFICATE_MISSING:
        # Gone from ACM: shown as such, and a new certificate is requested.
        return Verdict(Outcome.WAITING, domain.status, checks, updates,
                       detail=cert.failure_reason, effect=Effect.REPLACE_MISSING,
                       enqueue=enqueue)
    alerted = acm_alert(domain, cert)
    if alerted is not None:
        alert, text = alerted
        return backoff_wait(domain, dns_first.AwsAnswer.ALERT_UNKNOWN, text, checks, updates,
                            now=now, record="certificate", alerts=(alert,), enqueue=enqueue)
    failure = pending_failure(domain, p.result, cert, ownership_ok=p.ownership_ok, now=now)
    caa = checks.get("caa")
    if failure and not domain.certificate_arn and caa is not None and caa.get("ok") is False:
        failure = str(caa.get("detail", failure))  # the exact record to add, in words
    if failure:
        return _fail(domain, failure, checks, updates, now=now, enqueue=enqueue)
    if routing.ok and p.ownership_ok and cert is not None and cert.issued:
        return Verdict(Outcome.WAITING, domain.status, checks, updates, effect=Effect.ATTACH,
                       enqueue=enqueue)
    return pending_wait(domain, routing, bool(cert and cert.issued), checks, updates,
                        ownership_ok=p.ownership_ok, now=now, enqueue=enqueue)


def attached_record(strategy_name: str, resource_id: str, now: datetime) -> CdnCheckDict:
    return {**check_record(True, f"Attached ({strategy_name}: {resource_id}).", now)}


def deploy_recheck() -> timedelta:
    return timedelta(seconds=settings.VEDOMAINS_CDN_DEPLOY_CHECK_SECONDS)


def activation_verdict(domain: CustomDomain, state: cdn.ResourceState | None,
                       checks: ChecksDict, updates: dict[str, Any], *, now: datetime,
                       message: str) -> Verdict:
    """Active only once CloudFront reports the tenant (or distribution) Deployed.

    Until then the domain is "deploying": its first visitors would otherwise meet TLS
    errors while CloudFront is still rolling the configuration out (minutes). Live means
    served: Deployed, the domain's own status active, the certificate attached.
    """
    deployed = state is not None and state.served(domain.hostname)
    to = DomainStatus.ACTIVE if deployed else DomainStatus.DEPLOYING
    fields: dict[str, Any] = {"verified_at": now}
    if deployed:
        fields.update(activated_at=now, next_check_at=now + timedelta(
            seconds=settings.VEDOMAINS_ACTIVE_RECHECK_SECONDS))
    else:
        fields["next_check_at"] = now + deploy_recheck()
    return Verdict(
        Outcome.ACTIVATED if deployed else Outcome.DEPLOYING, to, checks,
        {**updates, "last_error": ""},
        # Removed while we attached: the cleanup owns the attachment now.
        transition=Transition(to, (DomainStatus.PENDING_VALIDATION,),
                              message if deployed else f"{message} CloudFront is deploying it.",
                              fields, lost=Outcome.SKIPPED, lost_status="",
                              lost_detail="changed during check",
                              enqueue_if_lost=TaskName.DOMAIN_CLEANUP))


def attach_refused_verdict(domain: CustomDomain, exc: IntegrationError, checks: ChecksDict,
                           updates: dict[str, Any], *, now: datetime, ours: bool) -> Verdict:
    """What CloudFront's refusal means: only the customer's causes fail the domain.

    `ours`: the alias is held by our own earlier record for this name (released by a TXT
    proof, or removed and registered again) that is still being detached.
    """
    answer = dns_first.classify_aws_error(exc)
    checks = checks.copy()
    match answer:
        case dns_first.AwsAnswer.WAIT_CAPACITY:
            detail = ("Waiting for capacity on our side (CloudFront quota reached); nothing to "
                      "do on your side, we retry automatically.")
            checks["cdn"] = {**check_record(False, detail, now), "code": exc.code,
                             "capacity": True}
            retry = timedelta(seconds=settings.VEDOMAINS_CDN_CAPACITY_RETRY_SECONDS)
            return Verdict(Outcome.CAPACITY, domain.status, checks,
                           {**updates, "last_error": detail, "next_check_at": now + retry},
                           detail=exc.message,
                           alerts=(Alert(AlertKind.CAPACITY, exc.code, exc.message,
                                         domain.hostname),))
        case dns_first.AwsAnswer.FAIL_CUSTOMER | dns_first.AwsAnswer.WAIT_TRANSIENT:
            checks["cdn"] = {**check_record(False, exc.message, now), "code": exc.code}
            # CNAMEAlreadyExists while our own record's alias goes away shortly: wait for it
            # instead of failing the new owner.
            if exc.permanent and not ours:
                return _fail(domain, exc.message, checks, updates, now=now,
                             data={"code": exc.code}, lost=None)
            return Verdict(Outcome.WAITING, domain.status, checks,
                           {**updates, "last_error": exc.message,
                            "next_check_at": now + TRANSIENT_RETRY}, detail=exc.message)
        case dns_first.AwsAnswer.WAIT_DNS:
            return backoff_wait(domain, answer, exc.message, checks, updates, now=now,
                                code=exc.code)
        case dns_first.AwsAnswer.ALERT_UNKNOWN:
            return backoff_wait(domain, answer, exc.message, checks, updates, now=now,
                                code=exc.code,
                                alerts=(Alert(AlertKind.UNEXPECTED, exc.code or "unknown",
                                              exc.message, domain.hostname),))
        case _:
            assert_never(answer)


# --- pending, CloudFront SaaS Manager tenants ----------------------------------------------------
# The tenant is created as soon as ownership allows (CloudFront must know the domain to serve
# the HTTP validation token); GetManagedCertificateDetails then drives the certificate; once
# DNS points at us and the certificate is issued the domain is "deploying" until CloudFront
# reports the tenant Deployed, and only then active (email, webhook, edge).


@dataclass(frozen=True)
class TenantPlan:
    """Before any CloudFront call: what the tenant path may do this check."""

    ready: bool  # DNS resolves to us (dns_first.dns_ready)
    use_acm: bool  # pre-validation by DNS: an ACM certificate becomes the tenant's
    create: bool  # create the tenant now
    self_hosted: bool  # the HTTP validation token is served by the customer's server
    record: CdnCheckDict | None  # the CDN record when nothing is created


def tenant_plan(domain: CustomDomain, routing: dns.RoutingCheck,
                acm_cert: acm.Certificate | None, *, ownership_ok: bool,
                now: datetime) -> TenantPlan:
    """DNS first (domains.dns_first): no tenant and no certificate until the hostname
    resolves to us. Pre-validation may try the tenant before DNS moves (whether CloudFront
    accepts that is unverified: docs/cdn.md); a refusal is a wait like any "not pointing at
    us yet"."""
    ready = dns_first.dns_ready(routing)
    use_acm = domain.prevalidation == Prevalidation.ACM
    acm_issued = bool(acm_cert and acm_cert.issued)
    early = domain.prevalidation == Prevalidation.SELF_HOSTED or (use_acm and acm_issued)
    can_attach = ownership_ok and (ready or early) and (not use_acm or acm_issued)
    record: CdnCheckDict | None = None
    if not domain.cdn_resource_id and not can_attach and not ready and not early:
        record = {**check_record(
            False, "Nothing is created at CloudFront until the hostname points at us.", now)}
    return TenantPlan(ready, use_acm, can_attach and not domain.cdn_resource_id,
                      domain.prevalidation == Prevalidation.SELF_HOSTED and not ready, record)


class PrevalidationFix(StrEnum):
    """A call that brings an existing tenant in line with pre-validation asked for later."""

    SET_ACM_CERTIFICATE = "set_acm_certificate"  # the issued ACM certificate, on the tenant
    SELF_HOSTED_TOKEN = "self_hosted_token"  # a managed certificate whose token they serve


def prevalidation_reads(domain: CustomDomain, acm_cert: acm.Certificate | None) -> str:
    """What `prevalidation_fix` needs read from CloudFront first: "state" (the tenant's
    certificate), "certificate" (its managed certificate) or "" (nothing: no call either)."""
    if domain.prevalidation == Prevalidation.ACM and acm_cert is not None and acm_cert.issued:
        return "state"
    if domain.prevalidation == Prevalidation.SELF_HOSTED:
        return "certificate"
    return ""


def prevalidation_fix(domain: CustomDomain, acm_cert: acm.Certificate | None, *,
                      tenant_certificate_arn: str | None,
                      managed: cdn.CertificateState | None) -> PrevalidationFix | None:
    """Pre-validation asked for after the tenant was made: the call that aligns the tenant,
    if any. `tenant_certificate_arn` is None when the tenant could not be read."""
    match prevalidation_reads(domain, acm_cert):
        case "state":
            assert acm_cert is not None
            if tenant_certificate_arn is not None and tenant_certificate_arn != acm_cert.arn:
                return PrevalidationFix.SET_ACM_CERTIFICATE
        case "certificate":
            if (managed is not None and managed.token_host != ValidationTokenHost.SELF_HOSTED
                    and not managed.issued):
                return PrevalidationFix.SELF_HOSTED_TOKEN
    return None


def tenant_vanished(managed: cdn.CertificateState | None,
                    state: cdn.ResourceState | None) -> bool:
    """The recorded tenant answers neither for its certificate nor for itself: deleted
    outside the app, or a local emulator restarted. The record forgets it and the next
    check creates one again."""
    return managed is None and state is None


def tenant_acm_certificate(domain: CustomDomain, acm_cert: acm.Certificate | None,
                           checks: ChecksDict, updates: dict[str, Any], now: datetime
                           ) -> tuple[ChecksDict, dict[str, Any], tuple[TaskName, ...]]:
    """Pre-validation by DNS, on the customer's explicit request: the ACM certificate's
    record (requesting one when there is none yet)."""
    checks, updates = checks.copy(), dict(updates)
    if acm_cert is not None:
        updates["certificate_status"] = acm_cert.status
        updates["validation_records"] = acm_cert.validation_records
        checks["certificate"] = certificate_record(acm_cert, now)
        return checks, updates, ()
    if not domain.certificate_arn:
        checks["certificate"] = {**check_record(False, "Certificate not requested yet.", now)}
        return checks, updates, (TaskName.DOMAIN_REQUEST_CERTIFICATE,)
    return checks, updates, ()


def tenant_caa_verdict(domain: CustomDomain, caa: dns_caa.CaaResult, checks: ChecksDict,
                       updates: dict[str, Any], *, now: datetime) -> tuple[ChecksDict,
                                                                           Verdict | None]:
    """CAA before a managed certificate is requested with the tenant: a record that forbids
    Amazon holds the domain (fails it past the pending window); None: go on."""
    checks = checks.copy()
    checks["caa"], words = caa_record(caa, now)
    if not words:
        return checks, None
    checks["certificate"] = {**check_record(False, words, now), "caa": True}
    if now - domain.created_at > timedelta(seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS):
        return checks, _fail(domain, words, checks, updates, now=now)
    return checks, hold(domain, words, checks, updates, now=now)


def budget_held_verdict(domain: CustomDomain, message: str, checks: ChecksDict,
                        updates: dict[str, Any], *, now: datetime) -> Verdict:
    held = f"Certificate request held: {message}"
    checks = checks.copy()
    checks["certificate"] = {**check_record(False, held, now), "held": True}
    return hold(domain, held, checks, updates, now=now)


def tenant_created_message(*, managed: bool) -> str:
    return ("Tenant created with the domain; CloudFront is validating its certificate (not "
            "serving yet)." if managed else
            "Tenant created with the pre-validated certificate (not serving yet).")


@dataclass(frozen=True)
class TenantCertificate:
    """The tenant's certificate as the check sees it (ACM pre-validated, or managed)."""

    issued: bool
    status: str
    failure: str = ""
    arn: str = ""


def tenant_acm_view(acm_cert: acm.Certificate, alert: Alert | None) -> TenantCertificate:
    return TenantCertificate(acm_cert.issued, acm_cert.status,
                             f"The certificate could not be issued: "
                             f"{acm_cert.failure_reason or acm_cert.status}."
                             if acm_cert.failed and alert is None else "", acm_cert.arn)


def managed_view(domain: CustomDomain, managed: cdn.CertificateState, *, ready: bool,
                 caa: dns_caa.CaaResult | None, now: datetime
                 ) -> tuple[TenantCertificate, str, Alert | None, CertificateCheckDict]:
    """A CloudFront-managed certificate: (as the check sees it, the wait words when staff
    are alerted or "", the alert, its record). `caa`: looked up when it failed."""
    caa_forbids = caa is not None and dns_first.caa_forbids_amazon(caa)
    caa_text = dns_first.caa_words(caa) if caa is not None and caa_forbids else ""
    verdict = dns_first.managed_certificate_verdict(managed.status, dns_ok=ready,
                                                    caa_forbids=caa_forbids)
    alert: Alert | None = None
    words = ""
    match verdict:
        case dns_first.CertificateVerdict.ISSUED | dns_first.CertificateVerdict.PENDING:
            cert = TenantCertificate(managed.issued, managed.status, "", managed.arn)
        case dns_first.CertificateVerdict.FAIL_CUSTOMER:
            reason = caa_text or managed.failure_reason or f"Certificate is {managed.status}."
            cert = TenantCertificate(False, managed.status, reason, managed.arn)
        case dns_first.CertificateVerdict.ALERT_UNKNOWN:
            alert = Alert(AlertKind.UNEXPECTED, f"certificate:{managed.status}",
                          f"CloudFront reports the managed certificate {managed.status!r} "
                          "while the DNS is right", domain.hostname)
            cert = TenantCertificate(False, managed.status, "", managed.arn)
            words = dns_first.wait_words(dns_first.AwsAnswer.ALERT_UNKNOWN)
        case _:
            assert_never(verdict)
    record: CertificateCheckDict = {
        **check_record(managed.issued, cert.failure or words or managed.failure_reason
                       or f"Certificate is {managed.status}.", now),
        "status": managed.status, "managed": True}
    if managed.token_host == ValidationTokenHost.SELF_HOSTED and managed.validation:
        record["http_validation"] = [dict(v) for v in managed.validation]
    return cert, words, alert, record


@dataclass(frozen=True)
class TenantInputs:
    domain: CustomDomain  # cdn_resource_id as it is after this check's creation, if any
    result: dns.DnsResult
    ownership_ok: bool
    cert: TenantCertificate | None
    # The wait words when staff were alerted about the certificate ("" otherwise).
    alert_words: str
    alerts: tuple[Alert, ...]
    # The tenant's state, read when DNS is right and the certificate issued.
    state: cdn.ResourceState | None
    checks: ChecksDict
    updates: dict[str, Any]
    now: datetime
    enqueue: tuple[TaskName, ...] = ()


def tenant_wants_state(domain: CustomDomain, routing: dns.RoutingCheck,
                       cert: TenantCertificate | None) -> bool:
    return bool(routing.ok and domain.cdn_resource_id and cert is not None and cert.issued)


def tenant_failure(t: TenantInputs) -> str:
    """Why the tenant-path domain fails now ("" while it may still come together)."""
    domain, routing, cert = t.domain, t.result.routing, t.cert
    window = timedelta(seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS)
    if cert is not None and cert.failure:
        return cert.failure
    if not _past_window(domain, t.result, t.now):
        return ""
    caa = t.checks.get("caa")
    if not routing.ok:
        return f"The domain was never pointed at us within {window}: {routing.detail}"
    if not t.ownership_ok:
        return "The ownership TXT record was not found in time."
    if caa is not None and caa.get("ok") is False and not domain.cdn_resource_id:
        return str(caa.get("detail", ""))
    if cert is not None and not cert.issued and not t.alert_words:
        return f"The certificate was not validated within {window}."
    return ""


def tenant_pending_verdict(t: TenantInputs) -> Verdict:
    """The tenant path's last step: give up, wait for staff, go live (deploying), or wait."""
    domain, routing, now = t.domain, t.result.routing, t.now
    failure = tenant_failure(t)
    if failure:
        return _fail(domain, failure, t.checks, t.updates, now=now,
                     data={"certificate_status": t.cert.status if t.cert else ""},
                     alerts=t.alerts, enqueue=t.enqueue)
    if t.alert_words:
        return backoff_wait(domain, dns_first.AwsAnswer.ALERT_UNKNOWN, t.alert_words, t.checks,
                            t.updates, now=now, record="certificate", alerts=t.alerts,
                            enqueue=t.enqueue)
    if t.state is not None and domain.cdn_resource_id:
        checks = t.checks.copy()
        checks["cdn"] = {**check_record(t.state.served(domain.hostname),
                                        t.state.serving_detail(domain.hostname), now),
                         "status": t.state.status}
        return replace(activation_verdict(
            domain, t.state, checks, t.updates, now=now,
            message="DNS points at us and the certificate is issued."),
            alerts=t.alerts, enqueue=t.enqueue)
    return pending_wait(domain, routing, bool(t.cert and t.cert.issued), t.checks, t.updates,
                        ownership_ok=t.ownership_ok, now=now, enqueue=t.enqueue)


# --- deploying ------------------------------------------------------------------------------------


def deploying_verdict(domain: CustomDomain, state: cdn.ResourceState | None,
                      checks: ChecksDict, updates: dict[str, Any], *, now: datetime) -> Verdict:
    """Deploying: live once CloudFront serves it; the resource gone, pending again."""
    if state is None:
        return Verdict(
            Outcome.REATTACH, DomainStatus.PENDING_VALIDATION, checks, updates,
            transition=Transition(
                DomainStatus.PENDING_VALIDATION, (DomainStatus.DEPLOYING,),
                "The CloudFront resource disappeared; attaching again.",
                {"cdn_resource_id": "", "next_check_at": now}, lost=None))
    served = state.served(domain.hostname)
    checks = checks.copy()
    checks["cdn"] = {**check_record(served, state.serving_detail(domain.hostname), now),
                     "status": state.status}
    if not served:
        return Verdict(Outcome.DEPLOYING, domain.status, checks,
                       {**updates, "next_check_at": now + deploy_recheck()})
    return Verdict(
        Outcome.ACTIVATED, DomainStatus.ACTIVE, checks, {**updates, "last_error": ""},
        transition=Transition(
            DomainStatus.ACTIVE, (DomainStatus.DEPLOYING,),
            "CloudFront finished deploying; the domain is live.",
            {"activated_at": now, "next_check_at": now + timedelta(
                seconds=settings.VEDOMAINS_ACTIVE_RECHECK_SECONDS)}))


# --- active and misconfigured -------------------------------------------------------------------


def live_verdict(domain: CustomDomain, routing: dns.RoutingCheck, checks: ChecksDict,
                 updates: dict[str, Any], *, now: datetime) -> Verdict:
    """Active and misconfigured domains: only a DNS verdict moves them, never a transient."""
    recheck = timedelta(seconds=settings.VEDOMAINS_ACTIVE_RECHECK_SECONDS)
    grace = timedelta(seconds=settings.VEDOMAINS_MISCONFIGURED_GRACE_SECONDS)
    if routing.transient:
        return Verdict(Outcome.TRANSIENT, domain.status, checks,
                       {**updates, "last_error": routing.detail,
                        "next_check_at": now + TRANSIENT_RETRY}, detail=routing.detail)
    if routing.ok:
        if domain.status == DomainStatus.ACTIVE:
            return Verdict(Outcome.OK, domain.status, checks,
                           {**updates, "last_error": "", "next_check_at": now + recheck})
        return Verdict(
            Outcome.FIXED, DomainStatus.ACTIVE, checks, {**updates, "last_error": ""},
            transition=Transition(DomainStatus.ACTIVE, (DomainStatus.MISCONFIGURED,),
                                  "DNS points at us again.",
                                  {"misconfigured_at": None, "next_check_at": now + recheck}))
    if domain.status == DomainStatus.ACTIVE:
        deadline = now + grace
        return Verdict(
            Outcome.MISCONFIGURED, DomainStatus.MISCONFIGURED, checks,
            {**updates, "last_error": routing.detail}, detail=routing.detail,
            transition=Transition(
                DomainStatus.MISCONFIGURED, (DomainStatus.ACTIVE,), routing.detail,
                {"misconfigured_at": now,
                 "next_check_at": now + min(timedelta(
                     seconds=settings.VEDOMAINS_MISCONFIGURED_RECHECK_SECONDS), grace)},
                data={"detach_after": deadline.isoformat(), "reason": routing.reason}))
    since = domain.misconfigured_at or now
    if now - since >= grace:
        # Detach so no dangling alias or edge mapping is left for someone else to claim.
        message = f"DNS has not pointed at us for {grace}; detached. {routing.detail}"
        return Verdict(
            Outcome.DETACHED, DomainStatus.REMOVED, checks,
            {**updates, "last_error": routing.detail}, detail=message,
            transition=Transition(DomainStatus.REMOVED, (DomainStatus.MISCONFIGURED,), message,
                                  {"removed_at": now, "next_check_at": now},
                                  enqueue_if_applied=TaskName.DOMAIN_CLEANUP))
    next_at = min(now + timedelta(
        seconds=settings.VEDOMAINS_MISCONFIGURED_RECHECK_SECONDS), since + grace)
    return Verdict(Outcome.STILL_MISCONFIGURED, domain.status, checks,
                   {**updates, "last_error": routing.detail, "next_check_at": next_at},
                   detail=routing.detail)
