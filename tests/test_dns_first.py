"""DNS first: nothing in AWS until the hostname resolves to us; what AWS answers
means for the domain; CAA before the first certificate; live means served.

The decisions (domains.dns_first) as tables with no servers; the behaviour against the real
servers: moto + the SaaS Manager emulator, the loopback DNS server, the local edge proxy.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from django.core import mail
from django.utils import timezone

from domains import dns_first, selectors
from domains.integrations import aws, dns, dns_caa
from domains.integrations.errors import IntegrationError
from domains.models import CustomDomain, DomainStatus
from domains.task_names import TaskName
from localdev.saas_manager import DNS_NOT_VERIFIED_MESSAGE
from tests.factories import UserFactory, WorkspaceFactory
from tests.polling import wait_for
from workflow import checks, services
from workflow.models import CapacityAlert, CertificateBudgetDay

HOST = "gallery.client.com"
AwsAnswer = dns_first.AwsAnswer
Verdict = dns_first.CertificateVerdict


# --- the decisions, as tables ------------------------------------------------------------------


def _routing(ok: bool, reason: str) -> dns.RoutingCheck:
    return dns.RoutingCheck(HOST, ok, reason, "")


@pytest.mark.parametrize(("ok", "reason", "ready"), [
    (True, "points_to_target", True),
    (False, "wrong_target", False),
    (False, "nxdomain", False),
    (False, "transient", False),
])
def test_dns_ready(ok: bool, reason: str, ready: bool) -> None:
    assert dns_first.dns_ready(_routing(ok, reason)) is ready


@pytest.mark.parametrize(("error", "answer"), [
    (IntegrationError(f"cloudfront.CreateDistributionTenant: InvalidArgument: "
                      f"{DNS_NOT_VERIFIED_MESSAGE}", permanent=True, code="InvalidArgument"),
     AwsAnswer.WAIT_DNS),
    (IntegrationError("quota", permanent=False, code="EntityLimitExceeded", capacity=True),
     AwsAnswer.WAIT_CAPACITY),
    (IntegrationError("slow down", permanent=False, code="Throttling"),
     AwsAnswer.WAIT_TRANSIENT),
    (IntegrationError("taken", permanent=True, code="CNAMEAlreadyExists"),
     AwsAnswer.FAIL_CUSTOMER),
    (IntegrationError("InvalidArgument: some other field", permanent=True,
                      code="InvalidArgument"), AwsAnswer.ALERT_UNKNOWN),
    (IntegrationError("denied", permanent=True, code="AccessDenied"), AwsAnswer.ALERT_UNKNOWN),
])
def test_classify_aws_error(error: IntegrationError, answer: AwsAnswer) -> None:
    assert dns_first.classify_aws_error(error) is answer


@pytest.mark.parametrize(("status", "dns_ok", "caa_forbids", "verdict"), [
    ("issued", True, False, Verdict.ISSUED),
    ("pending-validation", False, False, Verdict.PENDING),
    ("validation-timed-out", False, False, Verdict.FAIL_CUSTOMER),
    ("validation-timed-out", True, False, Verdict.ALERT_UNKNOWN),
    ("failed", True, True, Verdict.FAIL_CUSTOMER),
    ("failed", True, False, Verdict.ALERT_UNKNOWN),
    ("revoked", True, False, Verdict.ALERT_UNKNOWN),
    ("expired", True, False, Verdict.ALERT_UNKNOWN),
    ("inactive", True, False, Verdict.ALERT_UNKNOWN),
    ("something-new", True, False, Verdict.ALERT_UNKNOWN),
])
def test_managed_certificate_verdict(status: str, dns_ok: bool, caa_forbids: bool,
                                     verdict: Verdict) -> None:
    assert dns_first.managed_certificate_verdict(status, dns_ok=dns_ok,
                                                 caa_forbids=caa_forbids) is verdict


def _caa(*values: str, transient: bool = False) -> dns_caa.CaaResult:
    return dns_caa.CaaResult(HOST, found_at="client.com" if values else "",
                             records=tuple(dns_caa.CaaRecord(0, "issue", v) for v in values),
                             transient=transient)


@pytest.mark.parametrize(("caa", "forbids"), [
    (_caa(), False),
    (_caa("amazon.com"), False),
    (_caa("letsencrypt.org", "amazontrust.com; account=1"), False),
    (_caa("letsencrypt.org"), True),
    (_caa(";"), True),
    (_caa("letsencrypt.org", transient=True), False),
])
def test_caa_forbids_amazon(caa: dns_caa.CaaResult, forbids: bool) -> None:
    assert dns_first.caa_forbids_amazon(caa) is forbids


@pytest.mark.parametrize("answer", list(AwsAnswer))
def test_every_wait_has_words(answer: AwsAnswer) -> None:
    words = dns_first.wait_words(answer)
    assert bool(words) is (answer is not AwsAnswer.FAIL_CUSTOMER)


def test_waits_back_off() -> None:
    assert dns_first.wait_delay(0) <= timedelta(seconds=30)
    assert dns_first.wait_delay(3) >= timedelta(seconds=120)
    assert dns_first.wait_delay(50) <= dns_first.WAIT_CAP


# --- against the real servers --------------------------------------------------------------------




def _cf() -> Any:
    return aws.client("cloudfront", "us-east-1")


@pytest.fixture(autouse=True)
def _on_commit(request: pytest.FixtureRequest) -> Any:
    """Run after-commit callbacks (the tasks a check queues) inside the test's transaction."""
    global _capture
    if "db" not in request.fixturenames and "django_db" not in request.keywords:
        yield
        return
    _capture = request.getfixturevalue("django_capture_on_commit_callbacks")
    yield
    _capture = None


_capture: Any = None


def _check(domain: CustomDomain) -> checks.CheckOutcome:
    with _capture(execute=True):
        outcome = checks.domain_check(domain_id=domain.pk, force=True)
    domain.refresh_from_db()
    return outcome


def _aws_resources() -> dict[str, int]:
    """What exists in the local AWS account: tenants, ACM certificates, distributions."""
    dists = _cf().list_distributions()["DistributionList"].get("Items") or []
    return {
        "tenants": len(_cf().list_distribution_tenants()["DistributionTenantList"]),
        "certificates": len(aws.client("acm", "us-east-1").list_certificates()[
            "CertificateSummaryList"]),
        "distributions": len(dists),
    }


@pytest.mark.integration
@pytest.mark.django_db
def test_saas_five_checks_without_dns_create_nothing_in_aws(
    saas_stack: dict[str, Any], dns_server: Any, moto_server: Any, queued_tasks: Any
) -> None:
    before = _aws_resources()
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    for _ in range(5):
        assert _check(domain).outcome == "waiting"
    queued_tasks.run()
    assert _aws_resources() == before
    calls = moto_server.saas_calls()
    assert "CreateDistributionTenant" not in calls
    assert domain.checks["cdn"]["detail"].startswith("Nothing is created at CloudFront")
    assert not CertificateBudgetDay.objects.filter(count__gt=0).exists()
    # The audit trail says nothing was attached or requested.
    assert list(domain.events.values_list("kind", flat=True)) == ["registered"]


@pytest.mark.integration
@pytest.mark.django_db
@pytest.mark.per_domain
def test_per_domain_five_checks_without_dns_create_nothing_in_aws(
    aws_stack: dict[str, Any], dns_server: Any, queued_tasks: Any
) -> None:
    before = _aws_resources()
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    for _ in range(5):
        assert _check(domain).outcome == "waiting"
    assert TaskName.DOMAIN_REQUEST_CERTIFICATE not in queued_tasks.names()
    queued_tasks.run()
    assert _aws_resources() == before
    # The first DNS-ready check queues the certificate request.
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    _check(domain)
    assert domain.checks["certificate"]["detail"] == "Requesting a certificate."
    assert TaskName.DOMAIN_REQUEST_CERTIFICATE in queued_tasks.names()


@pytest.mark.integration
@pytest.mark.django_db
def test_dns_caches_refusal_waits_with_backoff_and_never_fails(
    saas_stack: dict[str, Any], dns_server: Any, moto_server: Any, settings: Any
) -> None:
    settings.VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY = 5
    settings.VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY = 5
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    # Our resolver sees the CNAME; CloudFront's (here: a server that does not answer) not yet.
    moto_server.saas_configure(dns_server="127.0.0.1:9")
    waits = []
    for _ in range(3):
        now = timezone.now()
        outcome = _check(domain)
        assert outcome.outcome == "waiting", outcome
        assert "Could not verify Domain Name ownership" in outcome.detail
        waits.append(domain.next_check_at - now)
    assert domain.checks["cdn"]["wait"] == "wait_dns"
    assert domain.checks["cdn"]["attempt"] == 2
    assert waits[-1] > timedelta(seconds=30)  # grows
    assert "CloudFront does not see it yet" in domain.last_error
    assert "CloudFront does not see it yet" in selectors.domain_seed_status(domain)[1]
    assert not CapacityAlert.objects.exists()
    # Refused calls requested no certificate: the budget is untouched.
    assert not CertificateBudgetDay.objects.filter(count__gt=0).exists()
    # Past the pending window it still waits.
    CustomDomain.objects.filter(pk=domain.pk).update(
        created_at=timezone.now() - 3 * timedelta(
            seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS))
    domain.refresh_from_db()
    assert _check(domain).outcome == "waiting"
    assert domain.status == DomainStatus.PENDING_VALIDATION
    # CloudFront's view catches up: created, and live.
    moto_server.saas_configure(dns_server=f"127.0.0.1:{dns_server.port}")
    assert _check(domain).outcome == "activated"
    assert CertificateBudgetDay.objects.get(workspace=workspace).count == 1


@pytest.mark.integration
@pytest.mark.django_db
def test_stubbed_unknown_aws_error_pages_staff_and_the_domain_waits(
    saas_stack: dict[str, Any], dns_server: Any, monkeypatch: pytest.MonkeyPatch,
    settings: Any
) -> None:
    """botocore's Stubber (the emulator has no way to answer an unknown code)."""
    UserFactory(is_staff=True, email="ops@ve.ai")
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    client = boto3.client("cloudfront", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    real = aws.client
    monkeypatch.setattr(aws, "client", lambda service, region=None: client
                        if service == "cloudfront" else real(service, region))
    CustomDomain.objects.filter(pk=domain.pk).update(
        created_at=timezone.now() - 3 * timedelta(
            seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS))
    domain.refresh_from_db()
    with Stubber(client) as stub:
        stub.add_client_error("create_distribution_tenant", service_error_code="AccessDenied",
                              service_message="User is not authorized", http_status_code=403)
        outcome = _check(domain)
    assert outcome.outcome == "waiting"
    assert domain.status == DomainStatus.PENDING_VALIDATION
    assert "our team has been alerted" in domain.last_error
    alert = CapacityAlert.objects.get()
    assert alert.code == "unexpected:AccessDenied" and alert.is_open
    from workflow import capacity_alerts

    assert capacity_alerts.capacity_alert_email(alert_id=alert.pk) == 1
    assert "Unexpected AWS answer" in mail.outbox[-1].subject
    assert domain.next_check_at > timezone.now()


@pytest.mark.integration
@pytest.mark.django_db
def test_caa_forbidding_amazon_holds_the_first_certificate_then_fails_with_the_record(
    saas_stack: dict[str, Any], dns_server: Any, settings: Any
) -> None:
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    dns_server.set_record("client.com", "CAA", '0 issue "letsencrypt.org"')
    assert _check(domain).outcome == "waiting"
    assert not domain.cdn_resource_id
    assert _cf().list_distribution_tenants()["DistributionTenantList"] == []
    assert 'CAA client.com 0 issue "amazon.com"' in domain.last_error
    assert domain.checks["caa"]["ok"] is False
    # The seed frontend's answer says so too (not "the certificate is being issued").
    status, message = selectors.domain_seed_status(domain)
    assert status == "pending_validation" and '0 issue "amazon.com"' in message
    CustomDomain.objects.filter(pk=domain.pk).update(
        created_at=timezone.now() - 2 * timedelta(
            seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS))
    domain.refresh_from_db()
    assert _check(domain).outcome == "failed"
    assert 'CAA client.com 0 issue "amazon.com"' in domain.last_error


@pytest.mark.integration
@pytest.mark.django_db
def test_caa_allowing_amazon_lets_it_through(saas_stack: dict[str, Any], dns_server: Any
                                             ) -> None:
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    dns_server.set_record("client.com", "CAA", '0 issue "amazon.com"')
    assert _check(domain).outcome == "activated"
    assert domain.checks["caa"]["ok"] is True


@pytest.mark.integration
@pytest.mark.django_db
@pytest.mark.per_domain
def test_per_domain_caa_holds_the_acm_request(aws_stack: dict[str, Any], dns_server: Any,
                                              queued_tasks: Any) -> None:
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    dns_server.set_record("client.com", "CAA", '0 issue "letsencrypt.org"')
    assert _check(domain).outcome == "waiting"
    assert TaskName.DOMAIN_REQUEST_CERTIFICATE not in queued_tasks.names()
    assert 'CAA client.com 0 issue "amazon.com"' in domain.checks["certificate"]["detail"]


@pytest.mark.integration
@pytest.mark.django_db
def test_managed_certificates_count_against_the_certificate_budget(
    saas_stack: dict[str, Any], dns_server: Any, settings: Any
) -> None:
    settings.VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY = 0
    settings.VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY = 1
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    first, second = (services.domain_register(workspace=workspace, hostname=h, by=None)
                     for h in ("a.client.com", "b.client.com"))
    for d in (first, second):
        dns_server.set_record(d.hostname, "CNAME", "domain.ve.ai")
    assert _check(first).outcome == "activated"
    assert _check(second).outcome == "waiting"
    assert not second.cdn_resource_id
    assert second.checks["certificate"]["held"] is True
    assert "Certificate request held" in second.last_error
    assert CertificateBudgetDay.objects.get(workspace=None).count == 1
    assert len(_cf().list_distribution_tenants()["DistributionTenantList"]) == 1


@pytest.mark.integration
@pytest.mark.django_db
def test_live_means_served_deploying_until_the_certificate_is_attached(
    saas_stack: dict[str, Any], dns_server: Any, moto_server: Any
) -> None:
    moto_server.saas_configure(deploy_seconds=0, certificate_attach_seconds=1.0)
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    outcome = _check(domain)
    assert outcome.outcome == "deploying", outcome
    assert domain.certificate_status == "issued"
    assert "certificate is not attached yet" in domain.checks["cdn"]["detail"]
    tenant = _cf().get_distribution_tenant(Identifier=domain.cdn_resource_id)[
        "DistributionTenant"]
    assert tenant["Status"] == "Deployed"
    assert tenant["Domains"][0]["Status"] == "inactive"
    assert "Certificate" not in (tenant.get("Customizations") or {})
    wait_for(lambda: _check(domain).outcome == "activated", 10, "the domain to activate",
             on_timeout=lambda: str(domain.checks["cdn"]))
    tenant = _cf().get_distribution_tenant(Identifier=domain.cdn_resource_id)[
        "DistributionTenant"]
    assert tenant["Domains"][0]["Status"] == "active"
    assert tenant["Customizations"]["Certificate"]["Arn"]


@pytest.mark.integration
@pytest.mark.django_db
def test_emulator_refuses_a_tenant_for_a_name_not_pointing_at_the_edge(
    saas_stack: dict[str, Any], dns_server: Any
) -> None:
    params = {"DistributionId": saas_stack["distribution_id"], "Name": "probe-1",
              "Domains": [{"Domain": HOST}], "Enabled": True,
              "ConnectionGroupId": saas_stack["connection_group_id"],
              "ManagedCertificateRequest": {"ValidationTokenHost": "cloudfront",
                                            "PrimaryDomainName": HOST}}
    with pytest.raises(ClientError) as refused:
        _cf().create_distribution_tenant(**params)
    assert refused.value.response["Error"]["Code"] == "InvalidArgument"
    assert refused.value.response["Error"]["Message"] == DNS_NOT_VERIFIED_MESSAGE
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    assert _cf().create_distribution_tenant(**params)["DistributionTenant"]["Id"]


@pytest.mark.parametrize(("status", "reason", "verdict"), [
    ("ISSUED", "", Verdict.ISSUED),
    ("PENDING_VALIDATION", "", Verdict.PENDING),
    ("VALIDATION_TIMED_OUT", "", Verdict.FAIL_CUSTOMER),
    ("FAILED", "CAA_ERROR", Verdict.FAIL_CUSTOMER),
    ("FAILED", "OTHER", Verdict.ALERT_UNKNOWN),
    ("FAILED", "DOMAIN_NOT_ALLOWED", Verdict.ALERT_UNKNOWN),
    ("REVOKED", "", Verdict.ALERT_UNKNOWN),
])
def test_acm_certificate_verdict(status: str, reason: str, verdict: Verdict) -> None:
    assert dns_first.acm_certificate_verdict(status, reason) is verdict


ACM_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/stubbed"


def _acm_failed(reason: str) -> dict[str, Any]:
    return {"Certificate": {"CertificateArn": ACM_ARN, "DomainName": HOST, "Status": "FAILED",
                            "FailureReason": reason, "DomainValidationOptions": [
                                {"DomainName": HOST, "ValidationMethod": "DNS",
                                 "ValidationStatus": "FAILED"}]}}


@pytest.mark.django_db
@pytest.mark.per_domain
@pytest.mark.parametrize(("reason", "outcome"), [("OTHER", "waiting"), ("CAA_ERROR", "failed")])
def test_stubbed_acm_failure_fails_only_for_the_customers_cause(
    stubbed_acm: Stubber, dns_server: Any, reason: str, outcome: str
) -> None:
    """botocore's Stubber for ACM (moto cannot fail a certificate)."""
    workspace = WorkspaceFactory(slug="acme", plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    dns_server.set_record(HOST, "CNAME", "domain.ve.ai")
    CustomDomain.objects.filter(pk=domain.pk).update(certificate_arn=ACM_ARN)
    domain.refresh_from_db()
    stubbed_acm.add_response("describe_certificate", _acm_failed(reason),
                             {"CertificateArn": ACM_ARN})
    assert _check(domain).outcome == outcome
    if outcome == "waiting":
        assert domain.status == DomainStatus.PENDING_VALIDATION
        assert "our team has been alerted" in domain.last_error
        assert CapacityAlert.objects.get().code == "unexpected:acm:FAILED:OTHER"
    else:
        assert domain.status == DomainStatus.FAILED and "CAA_ERROR" in domain.last_error
        assert not CapacityAlert.objects.exists()
