"""manage.py cdn_migrate: per-domain distributions to tenants and back, the domain stays live."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from domains.integrations import acm, aws
from domains.models import CustomDomain, DomainStatus
from localdev import bootstrap
from tests.factories import WorkspaceFactory
from tests.polling import wait_for
from workflow import certificates, checks, services

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

HOST = "gallery.client.com"


def _cf() -> Any:
    return aws.client("cloudfront", "us-east-1")


def _aliases(distribution_id: str) -> list[str]:
    config = _cf().get_distribution_config(Id=distribution_id)["DistributionConfig"]
    return list((config.get("Aliases") or {}).get("Items") or [])


@pytest.fixture
def per_domain_active(saas_stack: dict[str, Any], dns_server: Any, settings: Any
                      ) -> CustomDomain:
    """A domain live on the per-domain strategy, with SaaS Manager resources ready."""
    settings.VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID = bootstrap.create_template_distribution(
        origin_domain="origin.ve.test")
    settings.VEDOMAINS_CDN_STRATEGY = "distribution-per-domain"
    domain = services.domain_register(workspace=WorkspaceFactory(slug="acme", plan="pro"),
                                      hostname=HOST, by=None)
    assert certificates.domain_request_certificate(domain_id=domain.pk) == "requested"
    domain.refresh_from_db()
    wait_for(lambda: acm.describe_certificate(domain.certificate_arn).issued, 10,
             "moto to issue the certificate")
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    assert checks.domain_check(domain_id=domain.pk, force=True).outcome == "activated"
    domain.refresh_from_db()
    assert _aliases(domain.cdn_resource_id) == [HOST]
    return domain


def test_to_tenants_and_back_keeps_the_domain_live(per_domain_active: CustomDomain,
                                                   settings: Any) -> None:
    domain = per_domain_active
    old_distribution = domain.cdn_resource_id

    out = io.StringIO()
    call_command("cdn_migrate", "--to", "saas-tenant", "--dry-run", stdout=out)
    assert "would migrate" in out.getvalue()
    domain.refresh_from_db()
    assert domain.cdn_resource_id == old_distribution  # a dry run changes nothing

    out = io.StringIO()
    call_command("cdn_migrate", "--to", "saas-tenant", "--until-done", "--pause", "0.1",
                 "--timeout", "60", stdout=out)
    domain.refresh_from_db()
    assert domain.status == DomainStatus.ACTIVE
    assert domain.cdn_resource_id.startswith("dt_"), out.getvalue()
    tenant = _cf().get_distribution_tenant(Identifier=domain.cdn_resource_id)[
        "DistributionTenant"]
    assert [d["Domain"] for d in tenant["Domains"]] == [HOST]
    # The tenant carries the domain's own ACM certificate: no TLS gap in the move.
    assert tenant["Customizations"]["Certificate"]["Arn"] == domain.certificate_arn
    assert "nothing left" in out.getvalue()
    assert old_distribution not in {d["Id"] for d in _cf().list_distributions()[
        "DistributionList"].get("Items", [])}

    settings.VEDOMAINS_CDN_STRATEGY = "distribution-per-domain"
    call_command("cdn_migrate", "--to", "distribution-per-domain", "--until-done", "--pause",
                 "0.1", "--timeout", "60", stdout=io.StringIO())
    domain.refresh_from_db()
    assert domain.status == DomainStatus.ACTIVE
    assert not domain.cdn_resource_id.startswith("dt_")
    assert _aliases(domain.cdn_resource_id) == [HOST]
    assert _cf().list_distribution_tenants()["DistributionTenantList"] == []


def test_bad_limit_is_a_command_error(db: Any) -> None:
    with pytest.raises(CommandError, match="--limit"):
        call_command("cdn_migrate", "--to", "saas-tenant", "--limit", "0")


def test_back_to_distributions_deletes_the_old_tenant_s_managed_certificate(
    saas_stack: dict[str, Any], dns_server: Any, settings: Any
) -> None:
    settings.VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID = bootstrap.create_template_distribution(
        origin_domain="origin.ve.test")
    domain = services.domain_register(workspace=WorkspaceFactory(slug="acme", plan="pro"),
                                      hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    wait_for(lambda: checks.domain_check(domain_id=domain.pk, force=True).outcome
             == "activated", 15, "the domain to activate", step=0.1)
    domain.refresh_from_db()
    managed = _cf().get_managed_certificate_details(Identifier=domain.cdn_resource_id)[
        "ManagedCertificateDetails"]["CertificateArn"]
    acm_client = aws.client("acm", "us-east-1")
    assert managed in {c["CertificateArn"] for c in acm_client.list_certificates()[
        "CertificateSummaryList"]}

    settings.VEDOMAINS_CDN_STRATEGY = "distribution-per-domain"
    call_command("cdn_migrate", "--to", "distribution-per-domain", "--until-done", "--pause",
                 "0.1", "--timeout", "60", stdout=io.StringIO())
    domain.refresh_from_db()
    assert domain.status == DomainStatus.ACTIVE and not domain.cdn_resource_id.startswith("dt_")
    assert _cf().list_distribution_tenants()["DistributionTenantList"] == []
    left = {c["CertificateArn"] for c in acm_client.list_certificates()["CertificateSummaryList"]}
    assert managed not in left and domain.certificate_arn in left
