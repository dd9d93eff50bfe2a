"""ACM behaviour moto does not reproduce, checked with botocore's Stubber (real API model).

Real ACM publishes a DNS-validation ResourceRecord a few seconds after RequestCertificate;
moto has it at once. The customer must see the record as soon as it exists, not before.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from domains import selectors
from domains.integrations import acm
from domains.integrations.errors import IntegrationError
from tests.factories import CustomDomainFactory

ARN = "arn:aws:acm:us-east-1:123456789012:certificate/abc"



def _described(with_record: bool, status: str = "PENDING_VALIDATION") -> dict[str, Any]:
    option: dict[str, Any] = {"DomainName": "gallery.client.com", "ValidationMethod": "DNS",
                              "ValidationStatus": "PENDING_VALIDATION"}
    if with_record:
        option["ResourceRecord"] = {"Name": "_x1.gallery.client.com.", "Type": "CNAME",
                                    "Value": "_y1.acm-validations.aws."}
    return {"Certificate": {"CertificateArn": ARN, "DomainName": "gallery.client.com",
                            "Status": status, "DomainValidationOptions": [option]}}


@pytest.mark.django_db
def test_stubbed_validation_record_shown_once_acm_publishes_it(stubbed_acm: Stubber) -> None:
    domain = CustomDomainFactory(hostname="gallery.client.com", certificate_arn=ARN)
    stubbed_acm.add_response("describe_certificate", _described(False), {"CertificateArn": ARN})
    cert = acm.describe_certificate(ARN)
    assert cert.validation_records == [] and not cert.issued
    domain.validation_records = cert.validation_records
    assert [r["purpose"] for r in selectors.domain_dns_records(domain)] == ["routing"]

    stubbed_acm.add_response("describe_certificate", _described(True), {"CertificateArn": ARN})
    domain.validation_records = acm.describe_certificate(ARN).validation_records
    records = selectors.domain_dns_records(domain)
    assert records[1] == {"purpose": "certificate_validation", "type": "CNAME",
                          "name": "_x1.gallery.client.com", "value": "_y1.acm-validations.aws"}


def test_stubbed_request_uses_dns_validation_and_a_stable_idempotency_token(
        stubbed_acm: Stubber) -> None:
    token = acm.idempotency_token("vedomains:7:gallery.client.com")
    stubbed_acm.add_response(
        "request_certificate", {"CertificateArn": ARN},
        {"DomainName": "gallery.client.com", "ValidationMethod": "DNS", "IdempotencyToken": token,
         # The managed tag the app's IAM policy requires on everything it creates.
         "Tags": [{"Key": "k", "Value": "v"}, {"Key": "vedomains-managed", "Value": "true"}]})
    assert acm.request_certificate(hostname="gallery.client.com",
                                   key="vedomains:7:gallery.client.com",
                                   tags={"k": "v"}) == ARN
    assert len(token) == 32 and token.isalnum()


def test_stubbed_delete_in_use_is_transient_and_not_found_is_done(stubbed_acm: Stubber) -> None:
    stubbed_acm.add_client_error("delete_certificate", service_error_code="ResourceInUseException",
                                 http_status_code=400)
    with pytest.raises(IntegrationError) as caught:
        acm.delete_certificate(ARN)
    assert caught.value.permanent is False
    stubbed_acm.add_client_error("delete_certificate",
                                 service_error_code="ResourceNotFoundException",
                                 http_status_code=400)
    acm.delete_certificate(ARN)  # already gone counts as done
