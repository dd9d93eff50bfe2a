"""The check's decisions as a table: (record, DNS answer, certificate, CDN state, now) ->
verdict, with no server, no database and no network (workflow/check_decisions.py).

Each row names a branch; together they cover every status the checks visit and every way
out of the pending, tenant-pending, deploying and live decisions. The executor that
applies these verdicts is tested against real servers (test_cdn_*, test_dns_first, ...).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from django.conf import settings

from domains import dns_first
from domains.integrations import acm, cdn, dns, dns_caa
from domains.integrations.errors import IntegrationError
from domains.models import CustomDomain, DomainStatus
from domains.task_names import TaskName
from workflow import certificates
from workflow import check_decisions as cd
from workflow.check_decisions import AlertKind, Effect, Outcome, Verdict

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
HOST = "shop.client.com"
ARN = "arn:aws:acm:us-east-1:111122223333:certificate/abc"
OK = dns.RoutingCheck(HOST, True, "points_to_target", "The CNAME points at us.",
                      (HOST, "edge.example.net"))
WRONG = dns.RoutingCheck(HOST, False, "nxdomain", "No record for shop.client.com.")
TIMEOUT = dns.RoutingCheck(HOST, False, "transient", "DNS lookup timed out.")
PENDING = DomainStatus.PENDING_VALIDATION
WINDOW = timedelta(seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS)
YOUNG = timedelta(hours=1)
OLD = WINDOW + timedelta(hours=1)
VERY_OLD = 2 * WINDOW + timedelta(hours=1)
CAA_OK = dns_caa.CaaResult(HOST, "", ())
CAA_FORBIDS = dns_caa.CaaResult(HOST, "client.com",
                                (dns_caa.CaaRecord(0, "issue", "letsencrypt.org"),))
SERVED = cdn.ResourceState("dt-1", "Deployed", True, (HOST,), "arn:cert",
                           ((HOST, "active"),), True)
ROLLING = cdn.ResourceState("dt-1", "InProgress", True, (HOST,), "arn:cert",
                            ((HOST, "active"),), True)


def domain(status: str = PENDING, *, age: timedelta = YOUNG, **fields: Any) -> CustomDomain:
    return CustomDomain(pk=7, hostname=HOST, status=status, created_at=NOW - age,
                        ownership_token="tok", **fields)


def cert(status: str, failure_reason: str = "") -> acm.Certificate:
    return acm.Certificate(ARN, status, [{"name": "_x", "value": "_y"}], failure_reason)


def result(routing: dns.RoutingCheck = WRONG, txt: dns.TxtCheck | None = None) -> dns.DnsResult:
    return dns.DnsResult(routing, txt)


def interval(d: CustomDomain) -> timedelta:
    return max(timedelta(seconds=settings.VEDOMAINS_CHECK_INTERVAL_SECONDS),
               min(timedelta(seconds=settings.VEDOMAINS_MAX_CHECK_INTERVAL_SECONDS),
                   (NOW - d.created_at) / 12))


@dataclass
class Want:
    """What a row expects of its verdict (None: not looked at)."""

    outcome: Outcome
    status: str | None = None
    to: DomainStatus | None = None  # the transition, if any
    effect: Effect = Effect.NONE
    detail: str | None = None  # a phrase the outcome's detail holds
    last_error: str | None = None  # a phrase last_error holds ("" for cleared)
    next_in: timedelta | tuple[timedelta, timedelta] | None = None
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # fields per record
    alerts: tuple[AlertKind, ...] = ()
    enqueue: tuple[str, ...] = ()
    lost: Outcome | None | str = "any"  # the transition's outcome when its swap loses
    data: dict[str, Any] | None = None
    moved: dict[str, Any] | None = None  # fields the transition writes, as a subset


def check(verdict: Verdict, want: Want) -> None:
    assert verdict.outcome == want.outcome
    if want.status is not None:
        assert verdict.status == want.status
    t = verdict.transition
    assert (t.to if t else None) == want.to
    assert verdict.effect == want.effect
    if want.detail is not None:
        assert want.detail in verdict.detail
    if want.last_error == "":
        assert verdict.updates["last_error"] == ""
    elif want.last_error is not None:
        assert want.last_error in verdict.updates["last_error"]
    if want.next_in is not None:
        next_at = (t.updates if t and "next_check_at" in t.updates else verdict.updates
                   )["next_check_at"]
        if isinstance(want.next_in, tuple):
            assert NOW + want.next_in[0] <= next_at <= NOW + want.next_in[1]
        else:
            assert next_at == NOW + want.next_in
    for name, expected in want.records.items():
        record = cast(dict[str, Any], verdict.checks)[name]
        for key, value in expected.items():
            assert record[key] == value, (name, key, record)
    assert tuple(a.kind for a in verdict.alerts) == want.alerts
    assert verdict.enqueue == want.enqueue
    if want.lost != "any":
        assert t is not None and t.lost == want.lost
    if want.data is not None:
        assert t is not None and t.data == want.data
    if want.moved is not None:
        assert t is not None and {k: t.updates.get(k, "absent") for k in want.moved} == (
            want.moved)
    assert verdict.plain_wait == (t is None and want.effect == Effect.NONE and not want.alerts
                                  and not want.enqueue)


def pending(d: CustomDomain, res: dns.DnsResult, c: acm.Certificate | None = None, *,
            ownership_ok: bool = True, caa: dns_caa.CaaResult | None = None) -> Verdict:
    return cd.pending_verdict(cd.PendingInputs(d, res, c, ownership_ok, {}, {}, NOW, caa))


def young_wait(d: CustomDomain) -> timedelta:
    return interval(d)


PENDING_ROWS: list[tuple[str, Callable[[], Verdict], Want]] = [
    ("no certificate, DNS wrong: nothing requested, the usual pace",
     lambda: pending(domain(), result()),
     Want(Outcome.WAITING, PENDING, detail="dns, certificate", last_error="",
          next_in=interval(domain()),
          records={"certificate": {"ok": False,
                                   "detail": "Requested once the CNAME points at us."}})),
    ("no certificate, DNS ready, CAA allows: the request is queued",
     lambda: pending(domain(), result(OK), caa=CAA_OK),
     Want(Outcome.WAITING, PENDING, enqueue=(TaskName.DOMAIN_REQUEST_CERTIFICATE,),
          records={"caa": {"ok": True, "found_at": ""},
                   "certificate": {"detail": "Requesting a certificate."}})),
    ("no certificate, DNS ready, CAA forbids, young: wait for the record",
     lambda: pending(domain(), result(OK), caa=CAA_FORBIDS),
     Want(Outcome.WAITING, PENDING, records={"caa": {"ok": False, "found_at": "client.com"},
                                             "certificate": {"caa": True}})),
    ("no certificate, DNS ready, CAA forbids, past the window: failed with the record to add",
     lambda: pending(domain(age=OLD), result(OK), caa=CAA_FORBIDS),
     Want(Outcome.FAILED, DomainStatus.FAILED, to=DomainStatus.FAILED,
          detail='CAA client.com 0 issue "amazon.com"', lost=Outcome.SKIPPED)),
    ("no certificate, DNS ready, CAA allows, past the window: failed, none could be requested",
     lambda: pending(domain(age=OLD), result(OK), caa=CAA_OK),
     Want(Outcome.FAILED, to=DomainStatus.FAILED, enqueue=(TaskName.DOMAIN_REQUEST_CERTIFICATE,),
          detail="No certificate could be requested")),
    ("certificate pending, DNS wrong, young: waiting for both",
     lambda: pending(domain(certificate_arn=ARN), result(), cert("PENDING_VALIDATION")),
     Want(Outcome.WAITING, PENDING, detail="waiting for dns, certificate",
          records={"certificate": {"ok": False, "status": "PENDING_VALIDATION"}})),
    ("certificate gone from ACM: replaced",
     lambda: pending(domain(certificate_arn=ARN), result(),
                     certificates.missing_certificate(ARN)),
     Want(Outcome.WAITING, PENDING, effect=Effect.REPLACE_MISSING)),
    ("certificate failed for CAA: the customer's, failed",
     lambda: pending(domain(certificate_arn=ARN), result(OK), cert("FAILED", "CAA_ERROR")),
     Want(Outcome.FAILED, to=DomainStatus.FAILED,
          detail="The certificate could not be issued: CAA_ERROR.")),
    ("certificate failed for a reason not the customer's: staff alerted, backing off",
     lambda: pending(domain(certificate_arn=ARN), result(OK), cert("FAILED", "OTHER")),
     Want(Outcome.WAITING, PENDING, alerts=(AlertKind.UNEXPECTED,),
          detail="ACM reports the certificate FAILED (OTHER)",
          next_in=(dns_first.WAIT_BASE / 2, dns_first.WAIT_BASE),
          records={"certificate": {"wait": "alert_unknown", "attempt": 0,
                                   "status": "FAILED"}})),
    ("the same alert again: the attempt grows",
     lambda: pending(domain(certificate_arn=ARN,
                            checks={"certificate": {"wait": "alert_unknown", "attempt": 2}}),
                     result(OK), cert("FAILED", "OTHER")),
     Want(Outcome.WAITING, alerts=(AlertKind.UNEXPECTED,),
          records={"certificate": {"attempt": 3}})),
    ("DNS, ownership and certificate right: attach",
     lambda: pending(domain(certificate_arn=ARN), result(OK), cert("ISSUED")),
     Want(Outcome.WAITING, PENDING, effect=Effect.ATTACH)),
    ("certificate issued, ownership missing: waiting for ownership",
     lambda: pending(domain(certificate_arn=ARN), result(OK), cert("ISSUED"),
                     ownership_ok=False),
     Want(Outcome.WAITING, detail="waiting for ownership")),
    ("past the window, DNS never right: failed",
     lambda: pending(domain(certificate_arn=ARN, age=OLD), result(), cert("PENDING_VALIDATION")),
     Want(Outcome.FAILED, to=DomainStatus.FAILED, detail="never pointed at us")),
    ("past the window, DNS lookups failing: no verdict, retried soon",
     lambda: pending(domain(certificate_arn=ARN, age=OLD), result(TIMEOUT)),
     Want(Outcome.WAITING, last_error="timed out", next_in=cd.TRANSIENT_RETRY)),
    ("twice the window, DNS lookups still failing: failed",
     lambda: pending(domain(certificate_arn=ARN, age=VERY_OLD), result(TIMEOUT)),
     Want(Outcome.FAILED, to=DomainStatus.FAILED, detail="never pointed at us")),
    ("past the window, DNS right, certificate pending: failed, validation CNAME missing",
     lambda: pending(domain(certificate_arn=ARN, age=OLD), result(OK),
                     cert("PENDING_VALIDATION")),
     Want(Outcome.FAILED, to=DomainStatus.FAILED, detail="validation CNAME is missing")),
    ("past the window, certificate issued, ownership missing: failed",
     lambda: pending(domain(certificate_arn=ARN, age=OLD), result(OK), cert("ISSUED"),
                     ownership_ok=False),
     Want(Outcome.FAILED, to=DomainStatus.FAILED, detail="ownership TXT record")),
    ("past the window, certificate not read this time, all else right: wait",
     lambda: pending(domain(certificate_arn=ARN, age=OLD), result(OK)),
     Want(Outcome.WAITING, detail="waiting for certificate")),
]


def aws_error(code: str, message: str = "refused", *, permanent: bool = True,
              capacity: bool = False) -> IntegrationError:
    return IntegrationError(message, permanent=permanent, code=code, capacity=capacity)


def refused(exc: IntegrationError, *, ours: bool = False) -> Verdict:
    return cd.attach_refused_verdict(domain(), exc, {}, {}, now=NOW, ours=ours)


ATTACH_ROWS: list[tuple[str, Callable[[], Verdict], Want]] = [
    ("our quota: staff alerted (capacity), retried later",
     lambda: refused(aws_error("TooManyDistributions", capacity=True)),
     Want(Outcome.CAPACITY, PENDING, alerts=(AlertKind.CAPACITY,),
          next_in=timedelta(seconds=settings.VEDOMAINS_CDN_CAPACITY_RETRY_SECONDS),
          records={"cdn": {"capacity": True, "code": "TooManyDistributions"}})),
    ("the alias is held elsewhere: the customer's, failed (even if the swap loses)",
     lambda: refused(aws_error("CNAMEAlreadyExists")),
     Want(Outcome.FAILED, DomainStatus.FAILED, to=DomainStatus.FAILED, lost=None,
          data={"code": "CNAMEAlreadyExists"})),
    ("the alias is held by our own record being detached: wait for it",
     lambda: refused(aws_error("CNAMEAlreadyExists"), ours=True),
     Want(Outcome.WAITING, PENDING, next_in=cd.TRANSIENT_RETRY, last_error="refused")),
    ("throttled: retried soon",
     lambda: refused(aws_error("Throttling", permanent=False)),
     Want(Outcome.WAITING, next_in=cd.TRANSIENT_RETRY)),
    ("CloudFront does not see the DNS yet: backing off, nothing alerted",
     lambda: refused(aws_error("InvalidArgument", "Could not verify Domain Name ownership.")),
     Want(Outcome.WAITING, next_in=(dns_first.WAIT_BASE / 2, dns_first.WAIT_BASE),
          records={"cdn": {"wait": "wait_dns", "attempt": 0, "code": "InvalidArgument"}})),
    ("an answer we do not know: staff alerted, backing off",
     lambda: refused(aws_error("Mystery")),
     Want(Outcome.WAITING, alerts=(AlertKind.UNEXPECTED,),
          records={"cdn": {"wait": "alert_unknown"}})),
    ("attached, CloudFront still rolling out: deploying (cleanup if removed meanwhile)",
     lambda: cd.activation_verdict(domain(), ROLLING, {}, {}, now=NOW, message="Attached."),
     Want(Outcome.DEPLOYING, DomainStatus.DEPLOYING, to=DomainStatus.DEPLOYING,
          last_error="", next_in=cd.deploy_recheck(), lost=Outcome.SKIPPED)),
    ("attached and served: active",
     lambda: cd.activation_verdict(domain(), SERVED, {}, {}, now=NOW, message="Attached."),
     Want(Outcome.ACTIVATED, DomainStatus.ACTIVE, to=DomainStatus.ACTIVE,
          next_in=timedelta(seconds=settings.VEDOMAINS_ACTIVE_RECHECK_SECONDS))),
    ("attached, state unreadable: deploying",
     lambda: cd.activation_verdict(domain(), None, {}, {}, now=NOW, message="Attached."),
     Want(Outcome.DEPLOYING, to=DomainStatus.DEPLOYING)),
]


def managed(status: str, **kw: Any) -> cdn.CertificateState:
    return cdn.CertificateState(status, "arn:managed", **kw)


def tenant(d: CustomDomain, res: dns.DnsResult, c: cd.TenantCertificate | None = None, *,
           state: cdn.ResourceState | None = None, alert_words: str = "",
           ownership_ok: bool = True, checks: cd.ChecksDict | None = None) -> Verdict:
    alerts = ((cd.Alert(AlertKind.UNEXPECTED, "x", "y", HOST),) if alert_words else ())
    return cd.tenant_pending_verdict(cd.TenantInputs(
        d, res, ownership_ok, c, alert_words, alerts, state, checks or {}, {}, NOW))


ISSUED = cd.TenantCertificate(True, "issued", "", "arn:managed")
VALIDATING = cd.TenantCertificate(False, "pending-validation", "", "arn:managed")
TENANT: dict[str, Any] = {"cdn_resource_id": "dt-1"}
ALERT_WORDS = dns_first.wait_words(dns_first.AwsAnswer.ALERT_UNKNOWN)

TENANT_ROWS: list[tuple[str, Callable[[], Verdict], Want]] = [
    ("no tenant, DNS wrong: nothing created, the usual pace",
     lambda: tenant(domain(), result()),
     Want(Outcome.WAITING, PENDING, detail="waiting for dns", next_in=interval(domain()))),
    ("tenant, certificate validating, DNS right: waiting for the certificate",
     lambda: tenant(domain(**TENANT), result(OK), VALIDATING),
     Want(Outcome.WAITING, detail="waiting for certificate")),
    ("tenant, certificate issued, served: active",
     lambda: tenant(domain(**TENANT), result(OK), ISSUED, state=SERVED),
     Want(Outcome.ACTIVATED, DomainStatus.ACTIVE, to=DomainStatus.ACTIVE,
          records={"cdn": {"ok": True, "status": "Deployed"}})),
    ("tenant, certificate issued, still rolling out: deploying",
     lambda: tenant(domain(**TENANT), result(OK), ISSUED, state=ROLLING),
     Want(Outcome.DEPLOYING, DomainStatus.DEPLOYING, to=DomainStatus.DEPLOYING,
          records={"cdn": {"ok": False, "status": "InProgress"}})),
    ("the certificate failed for the customer's cause: failed, its status in the event",
     lambda: tenant(domain(**TENANT), result(OK),
                    cd.TenantCertificate(False, "failed", "CAA says no.")),
     Want(Outcome.FAILED, DomainStatus.FAILED, to=DomainStatus.FAILED, detail="CAA says no.",
          data={"certificate_status": "failed"})),
    ("staff alerted about the certificate: backing off on the certificate record",
     lambda: tenant(domain(**TENANT), result(OK), VALIDATING, alert_words=ALERT_WORDS),
     Want(Outcome.WAITING, alerts=(AlertKind.UNEXPECTED,),
          records={"certificate": {"wait": "alert_unknown", "attempt": 0}})),
    ("past the window, DNS never right: failed",
     lambda: tenant(domain(age=OLD), result()),
     Want(Outcome.FAILED, to=DomainStatus.FAILED, detail="never pointed at us",
          data={"certificate_status": ""})),
    ("past the window, DNS lookups failing: no verdict",
     lambda: tenant(domain(age=OLD), result(TIMEOUT)),
     Want(Outcome.WAITING, next_in=cd.TRANSIENT_RETRY)),
    ("past the window, ownership missing: failed",
     lambda: tenant(domain(age=OLD), result(OK), ownership_ok=False),
     Want(Outcome.FAILED, to=DomainStatus.FAILED, detail="ownership TXT")),
    ("past the window, CAA forbade the tenant's certificate: failed with the record",
     lambda: tenant(domain(age=OLD), result(OK),
                    checks={"caa": {"ok": False, "detail": "Add CAA.", "at": "",
                                    "found_at": "client.com", "transient": False}}),
     Want(Outcome.FAILED, to=DomainStatus.FAILED, detail="Add CAA.")),
    ("past the window, certificate never validated: failed",
     lambda: tenant(domain(age=OLD, **TENANT), result(OK), VALIDATING),
     Want(Outcome.FAILED, to=DomainStatus.FAILED, detail="not validated within")),
    ("past the window, staff alerted: waiting, not failed",
     lambda: tenant(domain(age=OLD, **TENANT), result(OK), VALIDATING,
                    alert_words=ALERT_WORDS),
     Want(Outcome.WAITING, alerts=(AlertKind.UNEXPECTED,))),
    ("past the window, everything right but the state not read: wait",
     lambda: tenant(domain(age=OLD, **TENANT), result(OK), ISSUED),
     Want(Outcome.WAITING)),
    ("CAA forbids before the tenant, young: held at the usual pace",
     lambda: cd.tenant_caa_verdict(domain(), CAA_FORBIDS, {}, {}, now=NOW)[1] or _none(),
     Want(Outcome.WAITING, PENDING, next_in=interval(domain()),
          records={"caa": {"ok": False}, "certificate": {"caa": True}})),
    ("CAA forbids before the tenant, past the window: failed",
     lambda: cd.tenant_caa_verdict(domain(age=OLD), CAA_FORBIDS, {}, {}, now=NOW)[1]
     or _none(),
     Want(Outcome.FAILED, to=DomainStatus.FAILED, detail="CAA")),
    ("the certificate budget holds the request",
     lambda: cd.budget_held_verdict(domain(), "daily budget spent", {}, {}, now=NOW),
     Want(Outcome.WAITING, PENDING, last_error="Certificate request held: daily budget spent",
          records={"certificate": {"held": True}})),
]


def _none() -> Verdict:
    raise AssertionError("expected a verdict")


LIVE_ROWS: list[tuple[str, Callable[[], Verdict], Want]] = [
    ("deploying, the resource is gone: pending again, attach anew",
     lambda: cd.deploying_verdict(domain(DomainStatus.DEPLOYING, **TENANT), None, {}, {},
                                  now=NOW),
     Want(Outcome.REATTACH, PENDING, to=PENDING, next_in=timedelta(0), lost=None)),
    ("deploying, not served yet: look again soon",
     lambda: cd.deploying_verdict(domain(DomainStatus.DEPLOYING, **TENANT), ROLLING, {}, {},
                                  now=NOW),
     Want(Outcome.DEPLOYING, DomainStatus.DEPLOYING, next_in=cd.deploy_recheck(),
          records={"cdn": {"ok": False, "status": "InProgress"}})),
    ("deploying, served: active",
     lambda: cd.deploying_verdict(domain(DomainStatus.DEPLOYING, **TENANT), SERVED, {}, {},
                                  now=NOW),
     Want(Outcome.ACTIVATED, DomainStatus.ACTIVE, to=DomainStatus.ACTIVE, last_error="",
          next_in=timedelta(
              seconds=settings.VEDOMAINS_ACTIVE_RECHECK_SECONDS), lost=Outcome.SKIPPED)),
    ("active, DNS lookup failed: no verdict, retried soon",
     lambda: cd.live_verdict(domain(DomainStatus.ACTIVE), TIMEOUT, {}, {}, now=NOW),
     Want(Outcome.TRANSIENT, DomainStatus.ACTIVE, next_in=cd.TRANSIENT_RETRY,
          last_error="timed out")),
    ("active, DNS right: ok until the next re-check",
     lambda: cd.live_verdict(domain(DomainStatus.ACTIVE), OK, {}, {}, now=NOW),
     Want(Outcome.OK, DomainStatus.ACTIVE, last_error="",
          next_in=timedelta(seconds=settings.VEDOMAINS_ACTIVE_RECHECK_SECONDS))),
    ("misconfigured, DNS right again: fixed",
     lambda: cd.live_verdict(domain(DomainStatus.MISCONFIGURED, misconfigured_at=NOW), OK, {},
                             {}, now=NOW),
     Want(Outcome.FIXED, DomainStatus.ACTIVE, to=DomainStatus.ACTIVE,
          next_in=timedelta(seconds=settings.VEDOMAINS_ACTIVE_RECHECK_SECONDS),
          moved={"misconfigured_at": None})),
    ("active, DNS wrong: misconfigured, with the detach deadline",
     lambda: cd.live_verdict(domain(DomainStatus.ACTIVE), WRONG, {}, {}, now=NOW),
     Want(Outcome.MISCONFIGURED, DomainStatus.MISCONFIGURED, to=DomainStatus.MISCONFIGURED,
          data={"detach_after": (NOW + timedelta(
              seconds=settings.VEDOMAINS_MISCONFIGURED_GRACE_SECONDS)).isoformat(),
                "reason": "nxdomain"},
          next_in=min(timedelta(seconds=settings.VEDOMAINS_MISCONFIGURED_RECHECK_SECONDS),
                      timedelta(seconds=settings.VEDOMAINS_MISCONFIGURED_GRACE_SECONDS)))),
    ("misconfigured within the grace: still misconfigured",
     lambda: cd.live_verdict(domain(DomainStatus.MISCONFIGURED,
                                    misconfigured_at=NOW - timedelta(minutes=1)),
                             WRONG, {}, {}, now=NOW),
     Want(Outcome.STILL_MISCONFIGURED, DomainStatus.MISCONFIGURED)),
    ("misconfigured past the grace: detached, cleanup queued if applied",
     lambda: cd.live_verdict(domain(DomainStatus.MISCONFIGURED,
                                    misconfigured_at=NOW - timedelta(
                                        seconds=settings.VEDOMAINS_MISCONFIGURED_GRACE_SECONDS)),
                             WRONG, {}, {}, now=NOW),
     Want(Outcome.DETACHED, DomainStatus.REMOVED, to=DomainStatus.REMOVED,
          next_in=timedelta(0))),
]


@pytest.mark.parametrize(("name", "decide", "want"),
                         PENDING_ROWS + ATTACH_ROWS + TENANT_ROWS + LIVE_ROWS,
                         ids=[row[0] for row in
                              PENDING_ROWS + ATTACH_ROWS + TENANT_ROWS + LIVE_ROWS])
def test_verdict(name: str, decide: Callable[[], Verdict], want: Want) -> None:
    check(decide(), want)


def test_the_detach_and_the_activation_queue_the_cleanup_on_the_right_side() -> None:
    detach = cd.live_verdict(domain(DomainStatus.MISCONFIGURED, misconfigured_at=NOW - timedelta(
        days=30)), WRONG, {}, {}, now=NOW).transition
    assert detach is not None
    assert (detach.enqueue_if_applied, detach.enqueue_if_lost) == (TaskName.DOMAIN_CLEANUP, None)
    activation = cd.activation_verdict(domain(), SERVED, {}, {}, now=NOW, message="m").transition
    assert activation is not None
    assert (activation.enqueue_if_applied, activation.enqueue_if_lost) == (
        None, TaskName.DOMAIN_CLEANUP)
    assert (activation.lost_status, activation.lost_detail) == ("", "changed during check")


# --- the small decisions the executor asks on the way ------------------------------------------


@pytest.mark.parametrize(("fields", "txt", "ok", "detail"), [
    ({}, None, True, None),
    ({"ownership_required": True, "ownership_verified_at": NOW}, None, True, None),
    ({"ownership_required": True}, None, False, None),
    ({"ownership_required": True},
     dns.TxtCheck("_vedomains.shop.client.com", ("vedomains-verification=tok",)), True,
     "TXT record found."),
    ({"ownership_required": True}, dns.TxtCheck("_vedomains.shop.client.com", ("other",)),
     False, "Expected TXT vedomains-verification=tok at"),
    ({"ownership_required": True},
     dns.TxtCheck("n", (), transient=True, detail="TXT lookup timed out."), False,
     "TXT lookup timed out."),
])
def test_ownership(fields: dict[str, Any], txt: dns.TxtCheck | None, ok: bool,
                   detail: str | None) -> None:
    found, record = cd.ownership(domain(**fields), txt, NOW)
    assert found is ok
    if detail is None:
        assert record is None
    else:
        assert record is not None and detail in record["detail"]
        assert record["transient"] is (txt is not None and txt.transient)


@pytest.mark.parametrize(("fields", "read"), [
    ({"status": DomainStatus.ACTIVE, "certificate_arn": ARN}, False),
    ({}, False),
    ({"certificate_arn": ARN}, True),  # validation records not known yet
    ({"certificate_arn": ARN, "validation_records": [{}], "checks": {"dns": {"ok": True}}},
     True),
    ({"certificate_arn": ARN, "validation_records": [{}],
      "checks": {"certificate": {"at": (NOW - timedelta(minutes=1)).isoformat()}}}, False),
    ({"certificate_arn": ARN, "validation_records": [{}],
      "checks": {"certificate": {"at": (NOW - cd.CERTIFICATE_READ_INTERVAL).isoformat()}}},
     True),
    ({"certificate_arn": ARN, "validation_records": [{}], "checks": {"certificate": {}}}, True),
])
def test_certificate_read_needed(fields: dict[str, Any], read: bool) -> None:
    status = fields.pop("status", PENDING)
    assert cd.certificate_read_needed(domain(status, **fields), NOW) is read


@pytest.mark.parametrize(("status", "cert_status", "routing", "wanted"), [
    (PENDING, "", WRONG, False),
    (DomainStatus.ACTIVE, "ISSUED", WRONG, False),
    (PENDING, "PENDING_VALIDATION", OK, True),
    (PENDING, "ISSUED", OK, None),
    (DomainStatus.ACTIVE, "ISSUED", OK, None),
    (PENDING, "", TIMEOUT, None),
    (PENDING, "", dns.RoutingCheck(HOST, False, "transient", "SERVFAIL from the server"), False),
])
def test_doctor_wanted(status: str, cert_status: str, routing: dns.RoutingCheck,
                       wanted: bool | None) -> None:
    assert cd.doctor_wanted(domain(status, certificate_status=cert_status), routing) is wanted


@pytest.mark.parametrize(("fields", "routing", "acm_cert", "ownership_ok", "plan"), [
    ({}, WRONG, None, True, (False, False, False, False, True)),
    ({}, OK, None, True, (True, False, True, False, False)),
    ({}, OK, None, False, (True, False, False, False, False)),
    ({**TENANT}, OK, None, True, (True, False, False, False, False)),
    ({"prevalidation": "self-hosted"}, WRONG, None, True, (False, False, True, True, False)),
    # DNS already points at us: the token is CloudFront's to serve, not the customer's.
    ({"prevalidation": "self-hosted"}, OK, None, True, (True, False, True, False, False)),
    ({"prevalidation": "acm"}, WRONG, cert("ISSUED"), True, (False, True, True, False, False)),
    ({"prevalidation": "acm"}, WRONG, cert("PENDING_VALIDATION"), True,
     (False, True, False, False, True)),
    ({"prevalidation": "acm"}, OK, cert("PENDING_VALIDATION"), True,
     (True, True, False, False, False)),
])
def test_tenant_plan(fields: dict[str, Any], routing: dns.RoutingCheck,
                     acm_cert: acm.Certificate | None, ownership_ok: bool,
                     plan: tuple[bool, bool, bool, bool, bool]) -> None:
    got = cd.tenant_plan(domain(**fields), routing, acm_cert, ownership_ok=ownership_ok,
                         now=NOW)
    assert (got.ready, got.use_acm, got.create, got.self_hosted,
            got.record is not None) == plan


@pytest.mark.parametrize(("state", "ready", "caa", "issued", "failure", "alerted"), [
    (managed("issued"), True, None, True, "", False),
    (managed("pending-validation"), False, None, False, "", False),
    (managed("validation-timed-out"), False, None, False, "could not validate", False),
    (managed("validation-timed-out"), True, None, False, "", True),
    (managed("failed"), True, CAA_FORBIDS, False, "letsencrypt.org", False),
    (managed("failed"), True, CAA_OK, False, "", True),
    (managed("revoked"), True, None, False, "", True),
])
def test_managed_view(state: cdn.CertificateState, ready: bool,
                      caa: dns_caa.CaaResult | None, issued: bool, failure: str,
                      alerted: bool) -> None:
    view, words, alert, record = cd.managed_view(domain(**TENANT), state, ready=ready, caa=caa,
                                                 now=NOW)
    assert view.issued is issued
    assert (failure in view.failure) if failure else view.failure == ""
    assert (alert is not None) is alerted
    assert bool(words) is alerted
    assert record["managed"] is True and record["status"] == state.status
    assert record["detail"] == (view.failure or words or state.failure_reason
                                or f"Certificate is {state.status}.")


def test_managed_view_shows_the_self_hosted_tokens() -> None:
    redirect = {"redirect_from": "http://shop.client.com/.well-known/x", "redirect_to": "y"}
    _, _, _, record = cd.managed_view(
        domain(**TENANT), managed("pending-validation", token_host="self-hosted",
                                  validation=(redirect,)), ready=False, caa=None, now=NOW)
    assert record["http_validation"] == [redirect]


@pytest.mark.parametrize(("acm_cert", "arn", "requested", "status"), [
    (cert("ISSUED"), ARN, (), "ISSUED"),
    (None, "", (TaskName.DOMAIN_REQUEST_CERTIFICATE,), None),
    (None, ARN, (), None),
])
def test_tenant_acm_certificate(acm_cert: acm.Certificate | None, arn: str,
                                requested: tuple[str, ...], status: str | None) -> None:
    checks, updates, enqueue = cd.tenant_acm_certificate(domain(certificate_arn=arn), acm_cert,
                                                         {}, {}, NOW)
    assert enqueue == requested
    assert updates.get("certificate_status") == status
    assert ("certificate" in checks) is (acm_cert is not None or not arn)


def test_the_missing_status_is_the_certificates_modules() -> None:
    assert cd.CERTIFICATE_MISSING == certificates.MISSING


def test_the_dns_record_keeps_its_shape() -> None:
    """support.py, the API and the admin read these keys."""
    record = cd.dns_record(OK, NOW, [])
    assert record == {"ok": True, "detail": OK.detail, "at": NOW.isoformat(),
                      "reason": "points_to_target", "chain": list(OK.chain),
                      "transient": False, "diagnosis": []}


def test_the_decisions_import_nothing_that_writes() -> None:
    """The import contract cannot name django.db (a subpackage of an external package)."""
    tree = ast.parse(Path(cd.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names}
    assert {m for m in imported if m and m.startswith(("django.db", "django.core.cache"))} == set()


ACM = {"prevalidation": "acm", **TENANT}
SELF = {"prevalidation": "self-hosted", **TENANT}


@pytest.mark.parametrize(("fields", "acm_cert", "reads", "arn", "found", "fix"), [
    # Pre-validation by DNS: the issued ACM certificate goes on the tenant, once.
    (ACM, cert("ISSUED"), "state", "arn:managed", None, cd.PrevalidationFix.SET_ACM_CERTIFICATE),
    (ACM, cert("ISSUED"), "state", ARN, None, None),
    (ACM, cert("ISSUED"), "state", None, None, None),  # the tenant could not be read
    (ACM, cert("PENDING_VALIDATION"), "", None, None, None),
    (ACM, None, "", None, None, None),
    # Self-hosted token: a managed certificate CloudFront validates itself is requested again
    # with the token on the customer's server, unless it is issued already.
    (SELF, None, "certificate", None, managed("pending-validation", token_host="cloudfront"),
     cd.PrevalidationFix.SELF_HOSTED_TOKEN),
    (SELF, None, "certificate", None, managed("pending-validation", token_host="self-hosted"),
     None),
    (SELF, None, "certificate", None, managed("issued", token_host="cloudfront"), None),
    (SELF, None, "certificate", None, None, None),
    ({**TENANT}, cert("ISSUED"), "", None, managed("pending-validation"), None),
])
def test_prevalidation_fix(fields: dict[str, Any], acm_cert: acm.Certificate | None, reads: str,
                           arn: str | None, found: cdn.CertificateState | None,
                           fix: cd.PrevalidationFix | None) -> None:
    d = domain(**fields)
    assert cd.prevalidation_reads(d, acm_cert) == reads
    assert cd.prevalidation_fix(d, acm_cert, tenant_certificate_arn=arn, managed=found) == fix


@pytest.mark.parametrize(("found", "state", "vanished"), [
    (None, None, True),
    (managed("issued"), None, False),
    (None, cdn.ResourceState("t-1", "Deployed", True), False),
])
def test_tenant_vanished(found: cdn.CertificateState | None, state: cdn.ResourceState | None,
                         vanished: bool) -> None:
    assert cd.tenant_vanished(found, state) is vanished
