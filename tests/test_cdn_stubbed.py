"""CloudFront behaviour moto cannot emulate, checked with botocore's Stubber.

moto has no CloudFront SaaS Manager (distribution tenants), no ETag conflicts and no
CNAMEAlreadyExists. Stubber validates every request (and every canned response) against
the real CloudFront API model shipped with botocore, so these tests pin the exact request
shapes without pretending to be AWS.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.stub import ANY, Stubber

from domains.integrations import cdn
from domains.integrations.errors import IntegrationError

ARN = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
HOST = "gallery.client.com"

TEMPLATE: dict[str, Any] = {
    "CallerReference": "template",
    "Comment": "vedomains template",
    "Enabled": False,
    "Aliases": {"Quantity": 0},
    "Origins": {"Quantity": 1, "Items": [{"Id": "ve", "DomainName": "origin.ve.ai"}]},
    "DefaultCacheBehavior": {"TargetOriginId": "ve", "ViewerProtocolPolicy": "redirect-to-https"},
    "ViewerCertificate": {"CloudFrontDefaultCertificate": True},
}


@pytest.fixture
def stubbed_cf(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client(
        "cloudfront", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    monkeypatch.setattr(cdn, "_cf", lambda: client)
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def _distribution(dist_id: str, config: dict[str, Any], status: str = "Deployed") -> dict[str, Any]:
    return {
        "Id": dist_id,
        "ARN": f"arn:aws:cloudfront::123456789012:distribution/{dist_id}",
        "Status": status,
        "LastModifiedTime": datetime(2026, 1, 1, tzinfo=UTC),
        "InProgressInvalidationBatches": 0,
        "DomainName": f"{dist_id.lower()}.cloudfront.net",
        "ActiveTrustedSigners": {"Enabled": False, "Quantity": 0},
        "DistributionConfig": config,
    }


def _tenant(enabled: bool) -> dict[str, Any]:
    return {
        "DistributionTenant": {
            "Id": "dt_123",
            "DistributionId": "EMT",
            "Name": HOST,
            "Arn": "arn:aws:cloudfront::123456789012:distribution-tenant/dt_123",
            "Domains": [{"Domain": HOST, "Status": "active", "ServeOn": "any"}],
            "ConnectionGroupId": "cg_1",
            "Parameters": [{"Name": "workspaceId", "Value": "acme"}],
            "Customizations": {"Certificate": {"Arn": ARN}},
            "Enabled": enabled,
            "Status": "Deployed",
        },
        "ETag": "E1",
    }


# The whole tenant, as UpdateDistributionTenant must be sent it (see SaasTenant._put).
def _whole(enabled: bool, **changes: Any) -> dict[str, Any]:
    return {"Id": "dt_123", "IfMatch": "E1", "DistributionId": "EMT",
            "Domains": [{"Domain": HOST}], "ConnectionGroupId": "cg_1",
            "Parameters": [{"Name": "workspaceId", "Value": "acme"}],
            "Customizations": {"Certificate": {"Arn": ARN}}, "Enabled": enabled, **changes}


MANAGED = "arn:aws:acm:us-east-1:123456789012:certificate/managed"


def _no_managed_certificate(stub: Stubber) -> None:
    stub.add_client_error("get_managed_certificate_details", service_error_code="EntityNotFound",
                          http_status_code=404)


def test_stubbed_per_domain_attach_clones_the_template_with_one_alias_and_its_certificate(
    stubbed_cf: Stubber,
) -> None:
    stubbed_cf.add_response(
        "get_distribution_config",
        {"DistributionConfig": copy.deepcopy(TEMPLATE), "ETag": "T1"},
        {"Id": "ETEMPLATE"},
    )
    expected = cdn.DistributionPerDomain("ETEMPLATE").build_config(
        TEMPLATE, hostname=HOST, certificate_arn=ARN, reference="vedomains-7"
    )
    stubbed_cf.add_response(
        "create_distribution_with_tags",
        {
            "Distribution": _distribution("ENEW", expected, "InProgress"),
            "Location": "https://x",
            "ETag": "N1",
        },
        # Tagged at creation: the app's IAM policy only lets it change tagged ones.
        {"DistributionConfigWithTags": {
            "DistributionConfig": expected,
            "Tags": {"Items": [{"Key": "vedomains-managed", "Value": "true"}]}}},
    )
    attachment = cdn.DistributionPerDomain("ETEMPLATE").attach(
        hostname=HOST, certificate_arn=ARN, reference="vedomains-7"
    )
    assert attachment.resource_id == "ENEW"
    assert expected["Aliases"] == {"Quantity": 1, "Items": [HOST]}
    assert expected["ViewerCertificate"]["ACMCertificateArn"] == ARN
    assert expected["ViewerCertificate"]["SSLSupportMethod"] == "sni-only"
    assert TEMPLATE["Aliases"] == {"Quantity": 0}, "the template itself must not change"


def test_stubbed_cname_already_exists_is_a_permanent_explained_failure(stubbed_cf: Stubber) -> None:
    stubbed_cf.add_response(
        "get_distribution_config",
        {"DistributionConfig": copy.deepcopy(TEMPLATE), "ETag": "T1"},
        {"Id": "ETEMPLATE"},
    )
    stubbed_cf.add_client_error(
        "create_distribution_with_tags",
        service_error_code="CNAMEAlreadyExists",
        http_status_code=409,
        service_message="One or more aliases already exist.",
    )
    with pytest.raises(IntegrationError) as caught:
        cdn.DistributionPerDomain("ETEMPLATE").attach(
            hostname=HOST, certificate_arn=ARN, reference="vedomains-7"
        )
    assert caught.value.permanent is True
    assert caught.value.code == "CNAMEAlreadyExists"
    assert "another distribution" in caught.value.message


def test_stubbed_detach_retries_on_precondition_failed_with_the_new_etag(
    stubbed_cf: Stubber,
) -> None:
    attached = copy.deepcopy(TEMPLATE)
    attached.update(
        Enabled=True,
        Aliases={"Quantity": 1, "Items": [HOST]},
        ViewerCertificate={"ACMCertificateArn": ARN, "SSLSupportMethod": "sni-only"},
    )
    # Fresh copies per response: the code under test edits the config it reads.
    stubbed_cf.add_response(
        "get_distribution_config",
        {"DistributionConfig": copy.deepcopy(attached), "ETag": "E1"},
        {"Id": "EDIST"},
    )
    stubbed_cf.add_client_error(
        "update_distribution",
        service_error_code="PreconditionFailed",
        http_status_code=412,
        expected_params={"Id": "EDIST", "IfMatch": "E1", "DistributionConfig": ANY},
    )
    stubbed_cf.add_response(
        "get_distribution_config",
        {"DistributionConfig": copy.deepcopy(attached), "ETag": "E2"},
        {"Id": "EDIST"},
    )
    disabled = copy.deepcopy(attached)
    disabled.update(
        Enabled=False,
        Aliases={"Quantity": 0},
        ViewerCertificate={"CloudFrontDefaultCertificate": True},
    )
    stubbed_cf.add_response(
        "update_distribution",
        {"Distribution": _distribution("EDIST", disabled, "InProgress"), "ETag": "E3"},
        {"Id": "EDIST", "IfMatch": "E2", "DistributionConfig": disabled},
    )
    result = cdn.DistributionPerDomain("ETEMPLATE").detach(resource_id="EDIST")
    assert result.done is False and "disabled" in result.detail

    # Next call: disabled but still deploying, so not deleted yet; then deployed: deleted.
    stubbed_cf.add_response(
        "get_distribution_config", {"DistributionConfig": disabled, "ETag": "E3"}, {"Id": "EDIST"}
    )
    stubbed_cf.add_response(
        "get_distribution",
        {"Distribution": _distribution("EDIST", disabled, "InProgress"), "ETag": "E3"},
        {"Id": "EDIST"},
    )
    assert cdn.DistributionPerDomain("ETEMPLATE").detach(resource_id="EDIST").done is False
    stubbed_cf.add_response(
        "get_distribution_config", {"DistributionConfig": disabled, "ETag": "E3"}, {"Id": "EDIST"}
    )
    stubbed_cf.add_response(
        "get_distribution",
        {"Distribution": _distribution("EDIST", disabled), "ETag": "E3"},
        {"Id": "EDIST"},
    )
    stubbed_cf.add_response("delete_distribution", {}, {"Id": "EDIST", "IfMatch": "E3"})
    assert cdn.DistributionPerDomain("ETEMPLATE").detach(resource_id="EDIST").done is True


def test_stubbed_saas_tenant_attach_with_a_prevalidated_certificate(stubbed_cf: Stubber) -> None:
    stubbed_cf.add_response(
        "create_distribution_tenant",
        _tenant(True),
        {
            "DistributionId": "EMT",
            "Name": f"vedomains-7-{HOST}",
            "Domains": [{"Domain": HOST}],
            "Customizations": {"Certificate": {"Arn": ARN}},
            "Enabled": True,
            "ConnectionGroupId": "cg_1",
            "Parameters": [{"Name": "workspaceId", "Value": "acme"}],
            "Tags": {"Items": [{"Key": "vedomains-managed", "Value": "true"},
                               {"Key": "vedomains-reference", "Value": "vedomains-7"},
                               {"Key": "vedomains-workspace", "Value": "acme"}]},
        },
    )
    attachment = cdn.SaasTenant("EMT", "cg_1").attach(
        hostname=HOST, certificate_arn=ARN, reference="vedomains-7", workspace_id="acme"
    )
    assert attachment.resource_id == "dt_123"


def test_stubbed_saas_tenant_attach_asks_for_a_managed_certificate(stubbed_cf: Stubber) -> None:
    stubbed_cf.add_response(
        "create_distribution_tenant",
        _tenant(True),
        {
            "DistributionId": "EMT",
            "Name": f"vedomains-7-{HOST}",
            "Domains": [{"Domain": HOST}],
            "ManagedCertificateRequest": {"ValidationTokenHost": "cloudfront",
                                          "PrimaryDomainName": HOST},
            "Enabled": True,
            "OnDomainTakeover": "allow",
            "Tags": {"Items": [{"Key": "vedomains-managed", "Value": "true"},
                               {"Key": "vedomains-reference", "Value": "vedomains-7"}]},
        },
    )
    cdn.SaasTenant("EMT", "").attach(hostname=HOST, certificate_arn="", reference="vedomains-7",
                                     takeover=True)


def test_stubbed_saas_tenant_retried_create_finds_its_own_tenant_by_name_and_listed_tags(
    stubbed_cf: Stubber,
) -> None:
    stubbed_cf.add_client_error("create_distribution_tenant",
                                service_error_code="EntityAlreadyExists", http_status_code=409)
    # Found by its deterministic name; GetDistributionTenant carries no Tags (not documented
    # to), so ownership is read with ListTagsForResource.
    stubbed_cf.add_response("get_distribution_tenant", _tenant(True),
                            {"Identifier": f"vedomains-7-{HOST}"})
    stubbed_cf.add_response(
        "list_tags_for_resource",
        {"Tags": {"Items": [{"Key": "vedomains-reference", "Value": "vedomains-7"}]}},
        {"Resource": "arn:aws:cloudfront::123456789012:distribution-tenant/dt_123"})
    attachment = cdn.SaasTenant("EMT", "").attach(hostname=HOST, certificate_arn="",
                                                  reference="vedomains-7")
    assert attachment.resource_id == "dt_123"


def test_stubbed_saas_tenant_of_another_record_is_not_taken_for_ours(stubbed_cf: Stubber) -> None:
    stubbed_cf.add_client_error("create_distribution_tenant",
                                service_error_code="EntityAlreadyExists", http_status_code=409)
    stubbed_cf.add_response("get_distribution_tenant", _tenant(True),
                            {"Identifier": f"vedomains-7-{HOST}"})
    stubbed_cf.add_response("list_tags_for_resource", {"Tags": {"Items": []}}, {"Resource": ANY})
    with pytest.raises(IntegrationError) as caught:
        cdn.SaasTenant("EMT", "").attach(hostname=HOST, certificate_arn="",
                                         reference="vedomains-7")
    assert caught.value.code == "EntityAlreadyExists"


def test_stubbed_shape_every_tenant_update_sends_the_whole_tenant(stubbed_cf: Stubber) -> None:
    """Shape test: Id, DistributionId, Domains, ConnectionGroupId, Customizations,
    Parameters and Enabled on every UpdateDistributionTenant, with the read ETag."""
    tenants = cdn.SaasTenant("EMT", "")
    stubbed_cf.add_response("get_distribution_tenant", _tenant(True), {"Identifier": "dt_123"})
    stubbed_cf.add_response("update_distribution_tenant", _tenant(False), _whole(False))
    tenants.disable(resource_id="dt_123")

    other = "arn:aws:acm:us-east-1:123456789012:certificate/other"
    stubbed_cf.add_response("get_distribution_tenant", _tenant(True), {"Identifier": "dt_123"})
    stubbed_cf.add_response("update_distribution_tenant", _tenant(True),
                            _whole(True, Customizations={"Certificate": {"Arn": other}}))
    tenants.set_certificate(resource_id="dt_123", certificate_arn=other)

    request = {"ValidationTokenHost": "self-hosted", "PrimaryDomainName": HOST}
    stubbed_cf.add_response("get_distribution_tenant", _tenant(True), {"Identifier": "dt_123"})
    stubbed_cf.add_response("update_distribution_tenant", _tenant(True),
                            _whole(True, ManagedCertificateRequest=request))
    tenants.request_managed_certificate(resource_id="dt_123", hostname=HOST,
                                        validation_host="self-hosted")


def test_stubbed_shape_an_apex_tenant_keeps_serving_on_the_anycast_list(
    stubbed_cf: Stubber,
) -> None:
    apex = _tenant(True)
    apex["DistributionTenant"]["Domains"] = [
        {"Domain": HOST, "Status": "active", "ServeOn": "anycast-ip-list-only"}]
    stubbed_cf.add_response("get_distribution_tenant", apex, {"Identifier": "dt_123"})
    stubbed_cf.add_response(
        "update_distribution_tenant", _tenant(False),
        _whole(False, Domains=[{"Domain": HOST, "ServeOn": "anycast-ip-list-only"}]))
    cdn.SaasTenant("EMT", "").disable(resource_id="dt_123")


def test_stubbed_a_stale_etag_is_read_again_and_the_whole_tenant_resent(
    stubbed_cf: Stubber,
) -> None:
    stubbed_cf.add_response("get_distribution_tenant", _tenant(True), {"Identifier": "dt_123"})
    stubbed_cf.add_client_error("update_distribution_tenant",
                                service_error_code="PreconditionFailed", http_status_code=412)
    fresh = _tenant(True)
    fresh["ETag"] = "E9"
    stubbed_cf.add_response("get_distribution_tenant", fresh, {"Identifier": "dt_123"})
    stubbed_cf.add_response("update_distribution_tenant", _tenant(False),
                            _whole(False, IfMatch="E9"))
    cdn.SaasTenant("EMT", "").disable(resource_id="dt_123")


@pytest.mark.parametrize("code", ["EntityLimitExceeded", "TooManyDistributionTenants",
                                  "TooManyDistributionsAssociatedToCachePolicy"])
def test_stubbed_quota_errors_are_capacity_not_permanent(stubbed_cf: Stubber, code: str) -> None:
    stubbed_cf.add_client_error("create_distribution_tenant", service_error_code=code,
                                http_status_code=400)
    with pytest.raises(IntegrationError) as caught:
        cdn.SaasTenant("EMT", "").attach(hostname=HOST, certificate_arn="", reference="r")
    assert caught.value.capacity and not caught.value.permanent and caught.value.code == code


def test_stubbed_tenant_names_fit_the_model_pattern() -> None:
    pattern = botocore.session.get_session().get_service_model("cloudfront").shape_for(
        "CreateDistributionTenantRequestNameString").metadata["pattern"]
    long_host = ".".join(["a" * 63] * 3) + ".example.com"
    for host in (HOST, long_host, "xn--bcher-kva.example"):
        name = cdn.SaasTenant.tenant_name(host, "vedomains-123456")
        assert re.fullmatch(pattern, name), name


def test_stubbed_saas_tenant_cname_taken_is_permanent(stubbed_cf: Stubber) -> None:
    stubbed_cf.add_client_error(
        "create_distribution_tenant", service_error_code="CNAMEAlreadyExists", http_status_code=409
    )
    with pytest.raises(IntegrationError) as caught:
        cdn.SaasTenant("EMT", "").attach(hostname=HOST, certificate_arn=ARN, reference="r")
    assert caught.value.permanent and caught.value.code == "CNAMEAlreadyExists"


def test_stubbed_saas_tenant_detach_disables_then_deletes_with_if_match(
    stubbed_cf: Stubber,
) -> None:
    stubbed_cf.add_response("get_distribution_tenant", _tenant(True), {"Identifier": "dt_123"})
    _no_managed_certificate(stubbed_cf)
    stubbed_cf.add_response(
        "update_distribution_tenant",
        {"DistributionTenant": _tenant(False)["DistributionTenant"], "ETag": "E2"},
        _whole(False),
    )
    assert cdn.SaasTenant("EMT", "").detach(resource_id="dt_123").done is False
    deploying = _tenant(False)
    deploying["DistributionTenant"]["Status"] = "InProgress"
    stubbed_cf.add_response("get_distribution_tenant", {**deploying, "ETag": "E2"},
                            {"Identifier": "dt_123"})
    _no_managed_certificate(stubbed_cf)
    # Deleted only once the disabled tenant is Deployed.
    assert cdn.SaasTenant("EMT", "").detach(resource_id="dt_123").done is False
    stubbed_cf.add_response(
        "get_distribution_tenant", {**_tenant(False), "ETag": "E2"}, {"Identifier": "dt_123"}
    )
    _no_managed_certificate(stubbed_cf)
    stubbed_cf.add_response("delete_distribution_tenant", {}, {"Id": "dt_123", "IfMatch": "E2"})
    assert cdn.SaasTenant("EMT", "").detach(resource_id="dt_123").done is True


def test_stubbed_saas_tenant_detach_names_the_managed_certificate(stubbed_cf: Stubber) -> None:
    stubbed_cf.add_response("get_distribution_tenant", _tenant(False), {"Identifier": "dt_123"})
    stubbed_cf.add_response(
        "get_managed_certificate_details",
        {"ManagedCertificateDetails": {"CertificateArn": MANAGED, "CertificateStatus": "issued",
                                       "ValidationTokenHost": "cloudfront"}},
        {"Identifier": "dt_123"})
    stubbed_cf.add_response("delete_distribution_tenant", {}, {"Id": "dt_123", "IfMatch": "E1"})
    result = cdn.SaasTenant("EMT", "").detach(resource_id="dt_123")
    assert result.done and result.certificate_arn == MANAGED


def test_stubbed_saas_tenant_detach_of_a_deleted_tenant_is_done(stubbed_cf: Stubber) -> None:
    stubbed_cf.add_client_error(
        "get_distribution_tenant", service_error_code="EntityNotFound", http_status_code=404
    )
    assert cdn.SaasTenant("EMT", "").detach(resource_id="dt_gone").done is True


def test_throttling_is_not_capacity() -> None:
    assert not cdn.is_capacity_code("TooManyRequests")
    assert not cdn.is_capacity_code("TooManyRequestsException")
    assert cdn.is_capacity_code("TooManyDistributionTenants")
