"""The SaaS Manager emulator is never kinder than AWS (docs/aws-fidelity.md names these tests).

Real servers: moto + the SaaS Manager emulation on one endpoint, the loopback DNS server and
the local edge proxy (`saas_stack`). Each test pins one row of docs/aws-fidelity.md.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from domains.integrations import aws, cdn
from domains.models import CustomDomain
from tests.factories import WorkspaceFactory
from tests.polling import wait_for
from workflow import checks, cleanup, services

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

HOST = "gallery.client.com"


def _cf() -> Any:
    return aws.client("cloudfront", "us-east-1")


def _acm_arns() -> set[str]:
    pages = aws.client("acm", "us-east-1").get_paginator("list_certificates").paginate()
    return {c["CertificateArn"] for page in pages for c in page["CertificateSummaryList"]}


@pytest.fixture(autouse=True)
def _host_points_at_us(dns_server: Any) -> None:
    # AWS refuses a tenant for a name that does not resolve to CloudFront yet, and so does
    # the emulator (tests/test_dns_first.py pins that refusal).
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")


def _tenant(stack: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return dict(_cf().create_distribution_tenant(
        DistributionId=stack["distribution_id"], Name="probe-gallery-client-com",
        Domains=[{"Domain": HOST}], ConnectionGroupId=stack["connection_group_id"],
        Enabled=True, Tags={"Items": [{"Key": "vedomains-reference", "Value": "r1"}]},
        **extra))


def test_emulator_refuses_an_update_without_domains(saas_stack: dict[str, Any]) -> None:
    made = _tenant(saas_stack)
    tenant_id = made["DistributionTenant"]["Id"]
    with pytest.raises(ClientError) as caught:
        _cf().update_distribution_tenant(Id=tenant_id, IfMatch=made["ETag"], Enabled=False)
    assert caught.value.response["Error"]["Code"] == "InvalidArgument"
    got = _cf().get_distribution_tenant(Identifier=tenant_id)
    assert got["ETag"] == made["ETag"] and got["DistributionTenant"]["Enabled"] is True


def test_emulator_update_replaces_the_whole_tenant(saas_stack: dict[str, Any]) -> None:
    made = _tenant(saas_stack, Parameters=[{"Name": "workspaceId", "Value": "acme"}],
                   Customizations={"GeoRestrictions": {"RestrictionType": "blacklist",
                                                       "Locations": ["KP"]}})
    tenant_id = made["DistributionTenant"]["Id"]
    # Only Domains and Enabled: what is left out is cleared, not kept.
    _cf().update_distribution_tenant(Id=tenant_id, IfMatch=made["ETag"],
                                     Domains=[{"Domain": HOST}], Enabled=True)
    tenant = _cf().get_distribution_tenant(Identifier=tenant_id)["DistributionTenant"]
    assert "Parameters" not in tenant and "Customizations" not in tenant
    assert tenant["ConnectionGroupId"] != saas_stack["connection_group_id"]  # the default


def test_whole_tenant_update_keeps_everything_it_does_not_change(
    saas_stack: dict[str, Any],
) -> None:
    made = _tenant(saas_stack, Parameters=[{"Name": "workspaceId", "Value": "acme"}])
    tenant_id = made["DistributionTenant"]["Id"]
    cdn.SaasTenant().disable(resource_id=tenant_id)
    tenant = _cf().get_distribution_tenant(Identifier=tenant_id)["DistributionTenant"]
    assert tenant["Enabled"] is False
    assert tenant["Parameters"] == [{"Name": "workspaceId", "Value": "acme"}]
    assert tenant["ConnectionGroupId"] == saas_stack["connection_group_id"]
    assert [d["Domain"] for d in tenant["Domains"]] == [HOST]


def test_emulator_get_has_no_tags_and_tags_are_listed(saas_stack: dict[str, Any]) -> None:
    tenant = _tenant(saas_stack)["DistributionTenant"]
    got = _cf().get_distribution_tenant(Identifier=tenant["Id"])["DistributionTenant"]
    assert "Tags" not in got
    _cf().tag_resource(Resource=got["Arn"], Tags={"Items": [{"Key": "k", "Value": "v"}]})
    assert cdn.SaasTenant().tags(arn=got["Arn"]) == {"vedomains-reference": "r1", "k": "v"}
    _cf().untag_resource(Resource=got["Arn"], TagKeys={"Items": ["k"]})
    assert cdn.SaasTenant().tags(arn=got["Arn"]) == {"vedomains-reference": "r1"}


def test_crash_recovery_finds_our_tenant_by_name_without_tags_in_get(
    saas_stack: dict[str, Any],
) -> None:
    tenant = _tenant(saas_stack)["DistributionTenant"]
    found = cdn.SaasTenant().find_own(name=tenant["Name"], reference="r1")
    assert found is not None and found.resource_id == tenant["Id"]
    assert cdn.SaasTenant().find_own(name=tenant["Name"], reference="someone-else") is None


def test_emulator_keeps_the_managed_certificate_after_the_tenant_is_deleted(
    saas_stack: dict[str, Any], moto_server: Any,
) -> None:
    made = _tenant(saas_stack, ManagedCertificateRequest={"ValidationTokenHost": "cloudfront"})
    tenant_id = made["DistributionTenant"]["Id"]
    arn = _cf().get_managed_certificate_details(Identifier=tenant_id)[
        "ManagedCertificateDetails"]["CertificateArn"]
    assert arn in _acm_arns()
    acm = aws.client("acm", "us-east-1")
    with pytest.raises(ClientError) as caught:
        acm.delete_certificate(CertificateArn=arn)
    assert caught.value.response["Error"]["Code"] == "ResourceInUseException"
    moto_server.saas_configure(deploy_seconds=0)
    cdn.SaasTenant().disable(resource_id=tenant_id)
    got = _cf().get_distribution_tenant(Identifier=tenant_id)
    _cf().delete_distribution_tenant(Id=tenant_id, IfMatch=got["ETag"])
    assert arn in _acm_arns()  # still there: deleting it is ours to do


def test_removal_deletes_the_managed_certificate_once_the_tenant_is_gone(
    saas_stack: dict[str, Any], dns_server: Any,
) -> None:
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    wait_for(lambda: checks.domain_check(domain_id=domain.pk, force=True).outcome
             == "activated", 15, "the domain to activate")
    domain.refresh_from_db()
    managed = cdn.SaasTenant().managed_certificate_arn(resource_id=domain.cdn_resource_id)
    assert managed in _acm_arns()
    services.domain_remove(domain=domain, by=None)
    assert cleanup.domain_cleanup(domain_id=domain.pk) == "detaching"
    # Recorded (and given our tag, which the IAM policy needs to delete it) while the tenant,
    # the only pointer to it, still exists.
    assert CustomDomain.objects.get(pk=domain.pk).certificate_arn == managed
    tags = aws.client("acm", "us-east-1").list_tags_for_certificate(CertificateArn=managed)
    assert {"Key": aws.MANAGED_TAG_KEY, "Value": aws.MANAGED_TAG_VALUE} in tags["Tags"]
    wait_for(lambda: cleanup.domain_cleanup(domain_id=domain.pk) == "clean", 15,
             "the cleanup to finish")
    assert _cf().list_distribution_tenants()["DistributionTenantList"] == []
    assert managed not in _acm_arns()
    assert CustomDomain.objects.get(pk=domain.pk).certificate_arn == ""
