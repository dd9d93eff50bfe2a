"""ACM in us-east-1: request, describe and delete certificates validated by DNS.

CloudFront only accepts certificates from us-east-1:
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/cnames-and-https-requirements.html
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from botocore.exceptions import BotoCoreError, ClientError

from domains.integrations import aws

ACM_REGION = "us-east-1"


class AcmStatus(StrEnum):
    """An ACM certificate's status.
    https://docs.aws.amazon.com/acm/latest/APIReference/API_CertificateDetail.html"""

    PENDING_VALIDATION = "PENDING_VALIDATION"
    ISSUED = "ISSUED"
    INACTIVE = "INACTIVE"
    EXPIRED = "EXPIRED"
    VALIDATION_TIMED_OUT = "VALIDATION_TIMED_OUT"
    REVOKED = "REVOKED"
    FAILED = "FAILED"


class AcmRenewalStatus(StrEnum):
    """RenewalSummary.RenewalStatus of an ACM certificate (same page)."""

    PENDING_AUTO_RENEWAL = "PENDING_AUTO_RENEWAL"
    PENDING_VALIDATION = "PENDING_VALIDATION"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


# Statuses that waiting will not turn into ISSUED.
ACM_FAILED_STATUSES: Final = frozenset({AcmStatus.FAILED, AcmStatus.VALIDATION_TIMED_OUT,
                                        AcmStatus.REVOKED, AcmStatus.EXPIRED})


@dataclass(frozen=True)
class Certificate:
    arn: str
    # An AcmStatus; kept a str because ACM may add statuses before we learn their names.
    status: str
    validation_records: list[dict[str, str]] = field(default_factory=list)
    failure_reason: str = ""
    not_after: datetime | None = None
    renewal_status: str = ""
    in_use_by: list[str] = field(default_factory=list)

    @property
    def issued(self) -> bool:
        return self.status == AcmStatus.ISSUED

    @property
    def failed(self) -> bool:
        return self.status in ACM_FAILED_STATUSES


def idempotency_token(key: str) -> str:
    # ACM accepts 1-32 word characters; the same token within an hour returns the same ARN.
    # https://docs.aws.amazon.com/acm/latest/APIReference/API_RequestCertificate.html
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def request_certificate(*, hostname: str, key: str, tags: dict[str, str] | None = None) -> str:
    try:
        resp = aws.client("acm", ACM_REGION).request_certificate(
            DomainName=hostname,
            ValidationMethod="DNS",
            IdempotencyToken=idempotency_token(key),
            Tags=[{"Key": k, "Value": v} for k, v in {
                **(tags or {}), aws.MANAGED_TAG_KEY: aws.MANAGED_TAG_VALUE}.items()],
        )
    except (ClientError, BotoCoreError) as exc:
        raise aws.classify(exc, "acm.RequestCertificate") from exc
    return str(resp["CertificateArn"])


def describe_certificate(arn: str) -> Certificate:
    try:
        resp = aws.client("acm", ACM_REGION).describe_certificate(CertificateArn=arn)
    except (ClientError, BotoCoreError) as exc:
        raise aws.classify(exc, "acm.DescribeCertificate") from exc
    cert = resp["Certificate"]
    records = []
    for option in cert.get("DomainValidationOptions", []) or []:
        rr = option.get("ResourceRecord")
        if rr:
            records.append({"name": rr["Name"], "type": rr["Type"], "value": rr["Value"]})
    # Sorted: the order of DomainValidationOptions is not guaranteed (moto builds it from
    # a set), and a stable order keeps the DNS instructions shown to the customer stable.
    records.sort(key=lambda r: (r["name"], r["value"]))
    renewal = cert.get("RenewalSummary") or {}
    return Certificate(
        arn=arn,
        status=str(cert.get("Status", "")),
        validation_records=records,
        failure_reason=str(cert.get("FailureReason", "") or ""),
        not_after=cert.get("NotAfter"),
        renewal_status=str(renewal.get("RenewalStatus", "") or ""),
        in_use_by=list(cert.get("InUseBy", []) or []),
    )


def delete_certificate(arn: str) -> None:
    """Delete; an already-deleted certificate counts as done."""
    try:
        aws.client("acm", ACM_REGION).delete_certificate(CertificateArn=arn)
    except ClientError as exc:
        code = aws.error_code(exc)
        if code == "ResourceNotFoundException":
            return
        err = aws.classify(exc, "acm.DeleteCertificate")
        if code == "ResourceInUseException":
            # CloudFront releases the certificate only once the distribution is gone, which
            # takes minutes: wait and retry, do not give up.
            err.permanent = False
        raise err from exc
    except BotoCoreError as exc:
        raise aws.classify(exc, "acm.DeleteCertificate") from exc


def tag_as_ours(arn: str) -> None:
    """Give a certificate we did not request (a tenant's CloudFront-managed one) our tag.

    The app's IAM policy deletes only certificates carrying it (deploy/app-iam-policy.yaml),
    and CloudFront, not us, requested this one.
    """
    try:
        aws.client("acm", ACM_REGION).add_tags_to_certificate(
            CertificateArn=arn,
            Tags=[{"Key": aws.MANAGED_TAG_KEY, "Value": aws.MANAGED_TAG_VALUE}])
    except (ClientError, BotoCoreError) as exc:
        raise aws.classify(exc, "acm.AddTagsToCertificate") from exc


# --- used by the certificate sweep -------------------------------------------------


def list_certificate_arns(*, statuses: list[str]) -> list[str]:
    """ARNs of the account's certificates in `statuses` (all pages)."""
    client = aws.client("acm", ACM_REGION)
    arns: list[str] = []
    try:
        for page in client.get_paginator("list_certificates").paginate(
            CertificateStatuses=statuses
        ):
            arns.extend(str(s["CertificateArn"]) for s in page.get("CertificateSummaryList", []))
    except (ClientError, BotoCoreError) as exc:
        raise aws.classify(exc, "acm.ListCertificates") from exc
    return arns


def certificate_tags(arn: str) -> dict[str, str]:
    try:
        resp = aws.client("acm", ACM_REGION).list_tags_for_certificate(CertificateArn=arn)
    except (ClientError, BotoCoreError) as exc:
        raise aws.classify(exc, "acm.ListTagsForCertificate") from exc
    return {str(t["Key"]): str(t.get("Value", "")) for t in resp.get("Tags", [])}
