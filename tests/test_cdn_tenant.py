"""The default path on CloudFront SaaS Manager, against the emulator on the moto endpoint.

Real servers: moto + the SaaS Manager emulation (one endpoint), the loopback DNS server and
the local edge proxy, through which the emulator fetches each managed certificate's HTTP
validation token (so a certificate issues only when the customer's CNAME points at us).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from domains import selectors
from domains.integrations import aws, cdn
from domains.integrations.cdn import CERTIFICATE_FAILURES
from domains.models import CustomDomain, DomainStatus, EventKind
from notifications.outbox import failure_advice
from tests.factories import UserFactory, WorkspaceFactory
from tests.polling import wait_for
from workflow import capacity_alerts, certificates, checks, cleanup, services
from workflow.models import CapacityAlert

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

HOST = "gallery.client.com"


def _cf() -> Any:
    return aws.client("cloudfront", "us-east-1")


def _check(domain: CustomDomain) -> checks.CheckOutcome:
    outcome = checks.domain_check(domain_id=domain.pk, force=True)
    domain.refresh_from_db()
    return outcome


def _until(fn: Callable[[], checks.CheckOutcome], want: str, timeout: float = 15
           ) -> checks.CheckOutcome:
    last: list[checks.CheckOutcome] = []

    def reached() -> checks.CheckOutcome | None:
        last[:] = [fn()]
        return last[0] if last[0].outcome == want else None

    return wait_for(reached, timeout, want, on_timeout=lambda: f"last: {last}", step=0.1)


def test_default_path_asks_for_one_record_and_activates_when_deployed(
    saas_stack: dict[str, Any], dns_server: Any, moto_server: Any, settings: Any
) -> None:
    assert settings.VEDOMAINS_CNAME_TARGET == "domain.ve.ai"
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    records = selectors.domain_dns_records(domain)
    assert [(r["purpose"], r["type"], r["name"], r["value"]) for r in records] == [
        ("routing", "CNAME", HOST, "domain.ve.ai")]
    assert certificates.domain_request_certificate(domain_id=domain.pk) == "not_needed"

    # DNS first: nothing at CloudFront while the CNAME is missing.
    assert _check(domain).outcome == "waiting"
    assert domain.cdn_resource_id == ""
    assert _cf().list_distribution_tenants()["DistributionTenantList"] == []
    assert selectors.domain_dns_records(domain) == records  # still exactly one record

    # The check that sees the CNAME creates the tenant, with the workspace as a parameter
    # and our tags; the certificate issues, is attached a little later, then deploys.
    moto_server.saas_configure(deploy_seconds=1.0, certificate_attach_seconds=0.5)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    outcome = _check(domain)
    assert outcome.outcome == "deploying", outcome
    assert domain.cdn_resource_id.startswith("dt_")
    tenant = _cf().get_distribution_tenant(Identifier=domain.cdn_resource_id)[
        "DistributionTenant"]
    assert tenant["Parameters"] == [{"Name": "workspaceId", "Value": "acme"}]
    # Tags through ListTagsForResource: GetDistributionTenant does not return them.
    assert "Tags" not in tenant
    assert {"Key": "vedomains-reference", "Value": f"vedomains-{domain.pk}"} in _cf(
        ).list_tags_for_resource(Resource=tenant["Arn"])["Tags"]["Items"]
    assert domain.status == DomainStatus.DEPLOYING and domain.activated_at is None
    assert domain.certificate_status == "issued"
    assert domain.next_check_at is not None
    # No "active" email or webhook yet.
    assert not domain.events.filter(to_status=DomainStatus.ACTIVE).exists()

    _until(lambda: _check(domain), "activated")
    assert domain.status == DomainStatus.ACTIVE and domain.activated_at is not None
    kinds = list(domain.events.filter(kind=EventKind.STATUS_CHANGED)
                 .values_list("to_status", flat=True))
    assert kinds == [DomainStatus.DEPLOYING, DomainStatus.ACTIVE]


def test_a_retried_create_finds_its_tenant(saas_stack: dict[str, Any], dns_server: Any,
                                           moto_server: Any) -> None:
    moto_server.saas_configure(edge_proxy="")  # pending, so the next check creates again
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    _check(domain)
    first = domain.cdn_resource_id
    assert first
    # A crash after CreateDistributionTenant but before the id was stored:
    CustomDomain.objects.filter(pk=domain.pk).update(cdn_resource_id="")
    _check(domain)
    assert domain.cdn_resource_id == first
    assert len(_cf().list_distribution_tenants()["DistributionTenantList"]) == 1


def test_quota_is_a_platform_alert_and_the_domain_waits(
    saas_stack: dict[str, Any], dns_server: Any, moto_server: Any, settings: Any
) -> None:
    UserFactory(is_staff=True, email="ops@ve.ai")
    moto_server.saas_configure(limits={"tenants": 2})
    workspace = WorkspaceFactory(slug="acme", plan="business")
    domains = [services.domain_register(workspace=workspace, hostname=f"d{i}.client.com",
                                        by=None) for i in range(3)]
    for d in domains:
        dns_server.set_record(d.hostname, "CNAME", "domain.ve.ai")
    outcomes = [_check(d).outcome for d in domains]
    assert outcomes == ["activated", "activated", "capacity"]
    third = domains[2]
    assert third.status == DomainStatus.PENDING_VALIDATION and not third.cdn_resource_id
    assert "nothing to do on your side" in third.last_error
    alert = CapacityAlert.objects.get()
    assert alert.code == "EntityLimitExceeded" and alert.is_open
    assert capacity_alerts.capacity_alert_email(alert_id=alert.pk) == 1
    assert "EntityLimitExceeded" in mail.outbox[-1].subject

    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    page = client.get("/admin/domains/dashboard/").content.decode()
    assert "Platform capacity" in page and "EntityLimitExceeded" in page

    moto_server.saas_configure(limits={"tenants": 3})
    assert _check(third).outcome == "activated"
    assert third.cdn_resource_id
    alert.refresh_from_db()
    assert not alert.is_open
    assert "Platform capacity" not in client.get("/admin/domains/dashboard/").content.decode()


def test_validation_timed_out_while_dns_was_wrong_fails_with_a_clear_reason(
    saas_stack: dict[str, Any], dns_server: Any, moto_server: Any
) -> None:
    # The certificate cannot validate (no edge to serve its token) and times out at once.
    moto_server.saas_configure(validation_timeout_seconds=0, edge_proxy="")
    UserFactory(is_staff=True, email="ops@ve.ai")
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    # DNS right while it timed out: not the customer's fault; staff are paged, it waits.
    assert _check(domain).outcome == "waiting"
    assert domain.status == DomainStatus.PENDING_VALIDATION
    assert "our team has been alerted" in domain.last_error
    assert CapacityAlert.objects.get().code == "unexpected:certificate:validation-timed-out"
    # The customer's CNAME gone while it stays timed out: theirs, in words.
    dns_server.delete(HOST, "CNAME")
    assert _check(domain).outcome == "failed"
    assert domain.status == DomainStatus.FAILED
    assert "could not validate the certificate in time" in domain.last_error


def test_removal_disables_waits_for_deployed_then_deletes(
    saas_stack: dict[str, Any], dns_server: Any, moto_server: Any
) -> None:
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    assert _check(domain).outcome == "activated"
    tenant_id = domain.cdn_resource_id

    moto_server.saas_configure(deploy_seconds=0.5)
    services.domain_remove(domain=domain, by=None)
    assert cleanup.domain_cleanup(domain_id=domain.pk) == "detaching"
    tenant = _cf().get_distribution_tenant(Identifier=tenant_id)["DistributionTenant"]
    assert tenant["Enabled"] is False
    wait_for(lambda: cleanup.domain_cleanup(domain_id=domain.pk) != "detaching", 10,
             "the cleanup to get past detaching", step=0.1)
    assert _cf().list_distribution_tenants()["DistributionTenantList"] == []


def test_self_hosted_prevalidation_shows_the_token_and_issues_before_the_cname_moves(
    saas_stack: dict[str, Any], dns_server: Any, moto_server: Any
) -> None:
    # Whether CloudFront creates such a tenant before DNS moves is unverified; where it
    # does (the emulator told so here), the token is shown before the move.
    moto_server.saas_configure(prevalidated_before_dns=True)
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None,
                                      prevalidation="self-hosted")
    dns_server.set_record(HOST, "A", "127.0.0.2")  # the live site, elsewhere
    assert _check(domain).outcome == "waiting"
    validation = domain.checks["certificate"]["http_validation"]
    assert validation[0]["redirect_from"].startswith(f"http://{HOST}/.well-known/")
    assert selectors.domain_http_validation(domain) == validation


def test_self_hosted_prevalidation_refused_before_dns_waits_with_a_reason(
    saas_stack: dict[str, Any], dns_server: Any, moto_server: Any
) -> None:
    # The emulator's default: CloudFront refuses the tenant until DNS moves (never kinder).
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None,
                                      prevalidation="self-hosted")
    dns_server.set_record(HOST, "A", "127.0.0.2")
    assert _check(domain).outcome == "waiting"
    assert domain.status == DomainStatus.PENDING_VALIDATION and not domain.cdn_resource_id
    assert domain.checks["cdn"]["wait"] == "wait_dns"
    assert "CloudFront does not see it yet" in domain.last_error
    assert not CapacityAlert.objects.exists()
    dns_server.delete(HOST, "A")
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    outcome = _check(domain)
    assert outcome.outcome == "activated", (outcome, domain.checks)


def test_acm_prevalidation_attaches_the_issued_certificate_before_the_cname_moves(
    saas_stack: dict[str, Any], dns_server: Any, moto_server: Any
) -> None:
    moto_server.saas_configure(prevalidated_before_dns=True)
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None,
                                      prevalidation="acm")
    assert certificates.domain_request_certificate(domain_id=domain.pk) == "requested"
    domain.refresh_from_db()
    purposes = [r["purpose"] for r in selectors.domain_dns_records(domain)]
    assert purposes == ["routing", "certificate_validation"]
    _until(lambda: _check(domain), "waiting")

    def tenant_created() -> str:
        if not domain.cdn_resource_id:
            _check(domain)
        return domain.cdn_resource_id

    wait_for(tenant_created, 10, "the tenant to be created")
    tenant = _cf().get_distribution_tenant(Identifier=domain.cdn_resource_id)[
        "DistributionTenant"]
    assert tenant["Customizations"]["Certificate"]["Arn"] == domain.certificate_arn
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    assert _check(domain).outcome == "activated"


def test_apex_without_anycast_ips_is_a_clear_400(saas_stack: dict[str, Any], api: Any,
                                                 settings: Any) -> None:
    settings.VEDOMAINS_CDN_APEX_IPS = []
    response = api.post("/api/domains/", {"hostname": "client.com", "workspace": "acme"},
                        format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "apex_not_supported"


def test_apex_with_anycast_ips_gets_a_records_and_activates(
    saas_stack: dict[str, Any], dns_server: Any, api: Any, settings: Any
) -> None:
    # The connection group's anycast static IPs: here the edge's address, as the emulator
    # treats EDGE_IP as CloudFront's.
    settings.VEDOMAINS_CDN_APEX_IPS = ["127.0.0.1", "::1"]
    response = api.post("/api/domains/", {"hostname": "client.com", "workspace": "acme"},
                        format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["dns_records"] == [
        {"purpose": "routing", "type": "A", "name": "client.com", "value": "127.0.0.1"},
        {"purpose": "routing", "type": "AAAA", "name": "client.com", "value": "::1"},
    ]
    domain = CustomDomain.objects.get(hostname="client.com")
    dns_server.set_record("client.com", "A", "127.0.0.9")  # still the old host
    assert _check(domain).outcome == "waiting"
    assert domain.checks["dns"]["reason"] == "wrong_target"
    assert not domain.cdn_resource_id  # DNS first

    dns_server.set_record("client.com", "A", "127.0.0.1")
    assert _check(domain).outcome == "activated"
    assert domain.status == DomainStatus.ACTIVE
    tenant = _cf().get_distribution_tenant(Identifier=domain.cdn_resource_id)[
        "DistributionTenant"]
    assert tenant["Domains"][0]["ServeOn"] == "anycast-ip-list-only"


def test_failure_advice_for_a_managed_certificate_mentions_no_validation_record() -> None:
    advice = failure_advice(CERTIFICATE_FAILURES["validation-timed-out"])
    assert "one CNAME" in advice and "validation CNAME" not in advice


def test_hostname_moves_to_another_workspace_between_tenants_without_overlap(
    saas_stack: dict[str, Any], dns_server: Any
) -> None:
    old_ws = WorkspaceFactory(slug="old-owner", plan="pro")
    new_ws = WorkspaceFactory(slug="new-owner", plan="pro")
    old = services.domain_register(workspace=old_ws, hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    assert _check(old).outcome == "activated"
    old_tenant = old.cdn_resource_id

    # The DNS owner proves the name for the new workspace with the TXT record.
    token = services.ownership_token_for(workspace_id=new_ws.pk, hostname=HOST)
    dns_server.set_record(f"_vedomains-challenge.{HOST}", "TXT", f"vedomains-verification={token}")
    new = services.domain_register(workspace=new_ws, hostname=HOST, by=None)
    assert new.ownership_required
    old.refresh_from_db()
    assert old.status == DomainStatus.REMOVED

    # The new tenant takes the domain over in one step (DNS points at CloudFront): at no
    # moment do both tenants hold it, nor neither.
    assert _check(new).outcome == "activated", new.last_error
    holder = _cf().get_distribution_tenant_by_domain(Domain=HOST)["DistributionTenant"]
    assert holder["Id"] == new.cdn_resource_id != old_tenant
    assert _cf().get_distribution_tenant(Identifier=old_tenant)["DistributionTenant"][
        "Domains"] == []
    wait_for(lambda: cleanup.domain_cleanup(domain_id=old.pk) == "clean", 10,
             "the old domain's cleanup", step=0.1)
    # The emptied old tenant cannot be disabled by a whole-tenant update (it has no domain
    # to name; the emulator refuses, as the API reference reads): the cleanup finishes and
    # leaves it to staff, holding nothing (docs/aws-fidelity.md, unverified).
    tenants = {t["Id"]: t for t in _cf().list_distribution_tenants()["DistributionTenantList"]}
    assert set(tenants) <= {new.cdn_resource_id, old_tenant}
    assert tenants.get(old_tenant, {}).get("Domains", []) == []
    assert old.events.filter(kind=EventKind.CDN_DETACHED).exists()


def test_prevalidation_asked_after_the_tenant_exists_switches_its_certificate(
    saas_stack: dict[str, Any], dns_server: Any, moto_server: Any
) -> None:
    moto_server.saas_configure(edge_proxy="")  # the token cannot be served: stays pending
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    _check(domain)
    assert domain.cdn_resource_id
    assert "http_validation" not in domain.checks["certificate"]
    services.domain_prevalidate(domain=domain, mode="self-hosted", by=None)
    _check(domain)  # asks CloudFront for a self-hosted token
    _check(domain)
    assert domain.prevalidation == "self-hosted"
    assert selectors.domain_http_validation(domain)


def test_a_record_keeps_its_strategy_after_a_switch(
    saas_stack: dict[str, Any], dns_server: Any, settings: Any, moto_server: Any
) -> None:
    edge = moto_server.saas_configure()["edge_proxy"]
    moto_server.saas_configure(edge_proxy="")  # the certificate stays pending for now
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    _check(domain)
    assert domain.cdn_resource_id.startswith("dt_")
    assert domain.status == DomainStatus.PENDING_VALIDATION
    settings.VEDOMAINS_CDN_STRATEGY = "distribution-per-domain"  # switched meanwhile
    moto_server.saas_configure(edge_proxy=edge)
    assert _check(domain).outcome == "activated"
    services.domain_remove(domain=domain, by=None)
    wait_for(lambda: cleanup.domain_cleanup(domain_id=domain.pk) == "clean", 10,
             "the cleanup", step=0.1)
    assert _cf().list_distribution_tenants()["DistributionTenantList"] == []


def test_a_vanished_tenant_is_made_again(saas_stack: dict[str, Any], dns_server: Any,
                                         moto_server: Any) -> None:
    moto_server.saas_configure(edge_proxy="")  # pending, so the check keeps the tenant path
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    _check(domain)
    gone = domain.cdn_resource_id
    got = _cf().get_distribution_tenant(Identifier=gone)
    etag = _cf().update_distribution_tenant(
        **{**cdn.tenant_update_body(got["DistributionTenant"]), "Enabled": False},
        IfMatch=got["ETag"])["ETag"]
    _cf().delete_distribution_tenant(Id=gone, IfMatch=etag)
    _check(domain)
    assert domain.cdn_resource_id == ""
    _check(domain)
    assert domain.cdn_resource_id and domain.cdn_resource_id != gone
