"""DNS first, and what an AWS answer means for a customer's domain (pure decisions).

Nothing is created in AWS for a domain (no tenant, no managed certificate, no ACM
certificate, no distribution) until a check sees its hostname resolve to us: CloudFront
refuses `CreateDistributionTenant` for a name that does not point at it yet
(`InvalidArgument: ... Could not verify Domain Name ownership. It may not be pointing to a
valid CloudFront resource.`, https://github.com/aws/aws-sdk-php/issues/3129), and an
abandoned registration must cost no tenant and no certificate request. `dns_ready` is that
rule, in one place: the checks call it, and scheduling may build on it.

An AWS answer the code does not know is the platform's problem (staff are alerted, the
domain waits); only the customer's own causes fail a domain: a CAA record that forbids
Amazon, the name held by another AWS account, validation timed out while their DNS was
wrong. Each decision here is a pure function, tested as a table (tests/test_dns_first.py).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import assert_never

from asgiref.sync import async_to_sync

from domains.integrations import dns, dns_caa
from domains.integrations.acm import AcmStatus
from domains.integrations.backoff import EQUAL_JITTER, backoff_delay
from domains.integrations.cdn import ManagedCertificateStatus
from domains.integrations.errors import IntegrationError

# CAA issuer domains that let ACM (and so CloudFront's managed certificates) issue.
# The phrase of CloudFront's refusal of a tenant whose domain does not resolve to it yet.
DNS_NOT_VERIFIED_PHRASE = "could not verify domain name ownership"
# Codes whose cause is the customer's: the alias is held by another distribution, possibly
# in another AWS account, and only its owner can free it.
CUSTOMER_CODES = frozenset({"CNAMEAlreadyExists"})
# Waits that are not the customer's: exponential from this, capped (one shared formula).
WAIT_BASE = timedelta(seconds=30)
WAIT_CAP = timedelta(hours=1)


def dns_ready(routing: dns.RoutingCheck) -> bool:
    """Does the hostname resolve to us (so AWS may be asked for something)?

    `routing` already follows the CNAME chain to VEDOMAINS_CNAME_TARGET, or for an apex
    name requires every A/AAAA to be one of the anycast IPs (dns.check_many's apex_for).
    A lookup that could not tell (timeout, SERVFAIL) is not ready.
    """
    return routing.ok and not routing.transient


class AwsAnswer(StrEnum):
    """What an AWS error on a create/request call means for the domain."""

    WAIT_TRANSIENT = "wait_transient"  # throttling, network, 5xx: retry soon
    WAIT_DNS = "wait_dns"  # CloudFront could not verify the name yet (resolver caches)
    WAIT_CAPACITY = "wait_capacity"  # our quota: staff alert (capacity), retry
    FAIL_CUSTOMER = "fail_customer"  # the customer's cause, told in words
    ALERT_UNKNOWN = "alert_unknown"  # an answer we do not know: page staff, wait


def is_dns_not_verified(exc: IntegrationError) -> bool:
    return exc.code == "InvalidArgument" and DNS_NOT_VERIFIED_PHRASE in exc.message.lower()


def classify_aws_error(exc: IntegrationError) -> AwsAnswer:
    if is_dns_not_verified(exc):
        return AwsAnswer.WAIT_DNS
    if exc.capacity:
        return AwsAnswer.WAIT_CAPACITY
    if not exc.permanent:
        return AwsAnswer.WAIT_TRANSIENT
    if exc.code in CUSTOMER_CODES:
        return AwsAnswer.FAIL_CUSTOMER
    return AwsAnswer.ALERT_UNKNOWN


class CertificateVerdict(StrEnum):
    ISSUED = "issued"
    PENDING = "pending"
    FAIL_CUSTOMER = "fail_customer"
    ALERT_UNKNOWN = "alert_unknown"


def managed_certificate_verdict(status: str, *, dns_ok: bool, caa_forbids: bool
                                ) -> CertificateVerdict:
    """A CloudFront-managed certificate's status, as the customer's cause or ours.

    https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_ManagedCertificateDetails.html
    """
    if status == ManagedCertificateStatus.ISSUED:
        return CertificateVerdict.ISSUED
    if status == ManagedCertificateStatus.PENDING_VALIDATION:
        return CertificateVerdict.PENDING
    if status == ManagedCertificateStatus.VALIDATION_TIMED_OUT:
        # Their DNS was wrong while CloudFront tried: theirs. Right all along: not theirs.
        return CertificateVerdict.ALERT_UNKNOWN if dns_ok else CertificateVerdict.FAIL_CUSTOMER
    if status == ManagedCertificateStatus.FAILED:
        return CertificateVerdict.FAIL_CUSTOMER if caa_forbids else CertificateVerdict.ALERT_UNKNOWN
    # revoked, expired, inactive on a certificate never used, or a status we do not know.
    return CertificateVerdict.ALERT_UNKNOWN


# ACM FailureReason values that are the customer's (a CAA record that forbids Amazon).
# https://docs.aws.amazon.com/acm/latest/APIReference/API_CertificateDetail.html
ACM_CUSTOMER_FAILURES = frozenset({"CAA_ERROR"})


def acm_certificate_verdict(status: str, failure_reason: str) -> CertificateVerdict:
    """An ACM certificate's status (per-domain strategy, ACM pre-validation), as theirs or ours.

    VALIDATION_TIMED_OUT: the validation CNAME the customer had to create never appeared
    within ACM's 72 hours (theirs). FAILED for CAA: theirs. Any other failure reason
    (DOMAIN_NOT_ALLOWED, ADDITIONAL_VERIFICATION_REQUIRED, OTHER, ...), or a pending
    certificate REVOKED or EXPIRED: ours to look at.
    """
    if status == AcmStatus.ISSUED:
        return CertificateVerdict.ISSUED
    if status in {AcmStatus.PENDING_VALIDATION, ""}:
        return CertificateVerdict.PENDING
    if status == AcmStatus.VALIDATION_TIMED_OUT:
        return CertificateVerdict.FAIL_CUSTOMER
    if status == AcmStatus.FAILED and failure_reason in ACM_CUSTOMER_FAILURES:
        return CertificateVerdict.FAIL_CUSTOMER
    return CertificateVerdict.ALERT_UNKNOWN


def wait_delay(attempt: int) -> timedelta:
    """Backoff for a wait that is not the customer's (DNS caches, an unknown AWS answer)."""
    return backoff_delay(attempt, base=WAIT_BASE.total_seconds(),
                         cap=WAIT_CAP.total_seconds(), floor=EQUAL_JITTER)


def wait_words(answer: AwsAnswer) -> str:
    """The reason a waiting domain shows, in the customer's words."""
    match answer:
        case AwsAnswer.WAIT_DNS:
            return ("Your DNS points at us, but CloudFront does not see it yet (DNS caches "
                    "can take a while to update); nothing to do on your side, we retry "
                    "automatically.")
        case AwsAnswer.WAIT_CAPACITY:
            return ("Waiting for capacity on our side (CloudFront quota reached); nothing to "
                    "do on your side, we retry automatically.")
        case AwsAnswer.WAIT_TRANSIENT:
            return "AWS did not answer this time; we retry automatically."
        case AwsAnswer.ALERT_UNKNOWN:
            return ("AWS gave an answer we did not expect; our team has been alerted. Nothing "
                    "to do on your side, we retry automatically.")
        case AwsAnswer.FAIL_CUSTOMER:
            return ""
        case _:
            assert_never(answer)


# --- CAA ---------------------------------------------------------------------------------


def caa_lookup(hostname: str) -> dns_caa.CaaResult:
    """The CAA RRset that applies to `hostname` (the name, then its parents)."""
    return async_to_sync(dns_caa.lookup_caa_async)(dns.make_resolver(), hostname)


def caa_forbids_amazon(caa: dns_caa.CaaResult) -> bool:
    """True when a CAA RRset applies and names no Amazon issuer (a lookup that could not
    tell is no verdict)."""
    return caa.forbids_amazon()


def caa_words(caa: dns_caa.CaaResult) -> str:
    """Why no certificate can be issued, and the exact record that fixes it."""
    allowed = ", ".join(i for i in caa.issuers("issue") if i) or "no certificate authority"
    return (f"The CAA records at {caa.found_at} allow only {allowed} to issue certificates, "
            f'not Amazon. Add the record CAA {caa.found_at} 0 issue "amazon.com" at your DNS '
            "provider (keep your other CAA records); we retry automatically.")
