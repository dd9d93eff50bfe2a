"""Certificate renewal watch and the expired-certificate sweep.

moto cannot put a certificate near its expiry or report a renewal status, so the ACM side
of these tests is botocore's Stubber (responses validated against the real ACM model:
tests named `test_stubbed_...`), while DNS is the real loopback server and time is moved
with time-machine. One test runs the watch against moto's own certificate end to end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from botocore.stub import Stubber
from django.core import mail
from django.utils import timezone

from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind, Role
from domains.task_names import TaskName
from notifications.models import Notification, NotificationKind, WebhookDelivery
from tests.factories import (
    CustomDomainFactory,
    MembershipFactory,
    UserFactory,
    WebhookEndpointFactory,
    WorkspaceFactory,
)
from tests.notify_helpers import LOCMEM_EMAIL, TaskRecorder
from workflow import checks, tasks

pytestmark = [pytest.mark.django_db]

HOST = "gallery.client.com"
TARGET = "domain.ve.ai"
ARN = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
VALIDATION_NAME = "_3f1a.gallery.client.com"
VALIDATION_VALUE = "_9c2b.xkqwhb.acm-validations.aws"
DISTRIBUTION = "arn:aws:cloudfront::123456789012:distribution/E2EXAMPLE"
# A definite moment, so that "20 days before expiry" is one to travel to.
NOT_AFTER = (datetime.now(UTC) + timedelta(days=400)).replace(hour=12, minute=0, second=0,
                                                               microsecond=0)



@pytest.fixture
def queued(queued_tasks: TaskRecorder, settings) -> TaskRecorder:
    settings.EMAIL_BACKEND = LOCMEM_EMAIL
    return queued_tasks


def described(*, not_after: datetime = NOT_AFTER, renewal: str | None = "PENDING_AUTO_RENEWAL",
              in_use: bool = True) -> dict[str, Any]:
    """A DescribeCertificate answer for an issued, DNS-validated certificate."""
    validation = {"DomainName": HOST, "ValidationMethod": "DNS", "ValidationStatus": "SUCCESS",
                  "ResourceRecord": {"Name": VALIDATION_NAME + ".", "Type": "CNAME",
                                     "Value": VALIDATION_VALUE + "."}}
    cert: dict[str, Any] = {
        "CertificateArn": ARN, "DomainName": HOST, "Status": "ISSUED", "Type": "AMAZON_ISSUED",
        "NotBefore": not_after - timedelta(days=395), "NotAfter": not_after,
        "DomainValidationOptions": [validation], "InUseBy": [DISTRIBUTION] if in_use else [],
        "RenewalEligibility": "ELIGIBLE",
    }
    if renewal is not None:
        cert["RenewalSummary"] = {"RenewalStatus": renewal, "DomainValidationOptions": [validation],
                                  "UpdatedAt": not_after - timedelta(days=40)}
    return {"Certificate": cert}


def _expect_describe(stub: Stubber, **kwargs: Any) -> None:
    stub.add_response("describe_certificate", described(**kwargs), {"CertificateArn": ARN})


@pytest.fixture
def watched(db, dns_server):
    """An active domain with its certificate attached and every DNS record in place."""
    workspace = WorkspaceFactory(slug="acme", name="Acme Photos")
    MembershipFactory(workspace=workspace, role=Role.OWNER,
                      user=UserFactory(email="owner@acme.test"))
    domain = CustomDomainFactory(
        workspace=workspace, hostname=HOST, status=DomainStatus.ACTIVE, certificate_arn=ARN,
        certificate_status="ISSUED", cdn_resource_id="E2EXAMPLE", edge_version=1,
        edge_synced_version=1,
        validation_records=[{"name": VALIDATION_NAME + ".", "type": "CNAME",
                             "value": VALIDATION_VALUE + "."}],
    )
    dns_server.store.set_record(HOST, "CNAME", TARGET)
    dns_server.store.set_record(VALIDATION_NAME, "CNAME", VALIDATION_VALUE)
    return domain


def _daily_check(domain: CustomDomain, when: datetime, capture,
                 queued: TaskRecorder | None = None) -> str:
    """The re-check at `when`, then (if given) the emails it queued, still at `when`."""
    with time_machine.travel(when, tick=True):
        with capture(execute=True):
            outcome = checks.domain_check(domain_id=domain.pk, force=True).outcome
        if queued is not None:
            queued.run(TaskName.NOTIFICATION_SEND)
    return outcome


def _trouble_listed(client, staff_user) -> str:
    client.force_login(staff_user)
    response = client.get("/admin/domains/customdomain/", {"cert_trouble": "yes"})
    assert response.status_code == 200
    return response.content.decode()


# Each reason the issue names (plus ACM's own verdict and an unused certificate), how to
# produce it, and the words the owner reads about it.
REASONS = {
    "not_renewing": ({"renewal": "FAILED"}, None, "renewal status: FAILED"),
    "validation_cname_missing": ({}, "drop_validation", f"CNAME {VALIDATION_NAME} -> "),
    "caa_forbids_amazon": ({}, "caa", 'CAA client.com 0 issue "amazon.com"'),
    "not_pointed_at_us": ({}, "repoint", f"CNAME {HOST} -> {TARGET}"),
    "not_in_use": ({"in_use": False}, None, "not attached to our CDN"),
}


@pytest.mark.parametrize("reason", list(REASONS))
def test_stubbed_each_reason_reaches_the_admin_filter_and_one_notification(
    reason, watched, dns_server, stubbed_acm, queued, staff_user, client,
    django_capture_on_commit_callbacks,
):
    acm_state, dns_change, words = REASONS[reason]
    endpoint = WebhookEndpointFactory(url="http://127.0.0.1:9/never-called")

    # Far from expiry, nothing is wrong whatever ACM says: renewal has time.
    _expect_describe(stubbed_acm, **acm_state)
    _daily_check(watched, NOT_AFTER - timedelta(days=60), django_capture_on_commit_callbacks)
    watched.refresh_from_db()
    assert watched.certificate_not_after == NOT_AFTER
    assert watched.certificate_trouble == ""
    assert HOST not in _trouble_listed(client, staff_user)

    # Then the customer's DNS changes.
    if dns_change == "drop_validation":
        dns_server.store.delete(VALIDATION_NAME)
    elif dns_change == "caa":
        dns_server.store.set_record("client.com", "CAA", '0 issue "letsencrypt.org"')
    elif dns_change == "repoint":
        dns_server.store.set_record(HOST, "CNAME", "old-host.example.net")

    # 20 days before expiry and not renewing: trouble, recorded with the reason.
    _expect_describe(stubbed_acm, **acm_state)
    _daily_check(watched, NOT_AFTER - timedelta(days=20), django_capture_on_commit_callbacks,
                 queued)
    watched.refresh_from_db()
    assert watched.certificate_trouble_at is not None
    assert reason in watched.checks["certificate_renewal"]["reasons"]
    assert watched.checks["certificate_renewal"]["ok"] is False
    assert HOST in _trouble_listed(client, staff_user)

    # The next daily checks see the same trouble: no new email, event or webhook.
    for day in (19, 18):
        _expect_describe(stubbed_acm, **acm_state)
        _daily_check(watched, NOT_AFTER - timedelta(days=day), django_capture_on_commit_callbacks,
                     queued)
    watched.refresh_from_db()
    assert HOST in _trouble_listed(client, staff_user)

    trouble = Notification.objects.filter(domain=watched,
                                          kind=NotificationKind.CERTIFICATE_TROUBLE)
    assert trouble.count() == 1 and trouble.get().sent_at is not None
    mails = [m for m in mail.outbox if "certificate" in m.subject]
    assert len(mails) == 1
    assert mails[0].subject == f"Action needed: the certificate for {HOST} cannot renew"
    assert words in mails[0].body, mails[0].body
    assert f"{NOT_AFTER:%A} {NOT_AFTER.day} {NOT_AFTER:%B %Y}" in mails[0].body
    assert DomainEvent.objects.filter(domain=watched, kind=EventKind.ERROR,
                                      message__startswith="Certificate trouble").count() == 1
    hooks = WebhookDelivery.objects.filter(endpoint=endpoint,
                                           event_type="domain.certificate_trouble")
    assert hooks.count() == 1
    assert reason in hooks.get().payload["certificate"]["reasons"]


def test_stubbed_renewed_certificate_clears_the_trouble(
    watched, stubbed_acm, queued, staff_user, client, django_capture_on_commit_callbacks,
):
    _expect_describe(stubbed_acm, renewal="FAILED")
    _daily_check(watched, NOT_AFTER - timedelta(days=20), django_capture_on_commit_callbacks)
    watched.refresh_from_db()
    assert watched.certificate_trouble

    # ACM renewed it (the support team fixed what blocked it): a new NotAfter, SUCCESS.
    renewed = NOT_AFTER + timedelta(days=395)
    _expect_describe(stubbed_acm, not_after=renewed, renewal="SUCCESS")
    with time_machine.travel(NOT_AFTER - timedelta(days=19), tick=True):
        with django_capture_on_commit_callbacks(execute=True):
            checks.domain_check(domain_id=watched.pk, force=True)
        # The trouble email queued yesterday (not sent yet) is moot now.
        assert queued.run(TaskName.NOTIFICATION_SEND) == ["superseded"]
    watched.refresh_from_db()
    assert watched.certificate_trouble == "" and watched.certificate_trouble_at is None
    assert watched.certificate_not_after == renewed
    assert watched.certificate_renewal_status == "SUCCESS"
    assert HOST not in _trouble_listed(client, staff_user)
    assert mail.outbox == []


def test_stubbed_watch_looks_at_acm_at_most_every_12_hours(
    watched, stubbed_acm, queued, django_capture_on_commit_callbacks,
):
    start = NOT_AFTER - timedelta(days=100)
    _expect_describe(stubbed_acm)  # exactly one response: a second call would fail
    for minutes in (0, 10, 60, 600):
        _daily_check(watched, start + timedelta(minutes=minutes),
                     django_capture_on_commit_callbacks)
        watched.refresh_from_db()
    assert watched.certificate_checked_at is not None


def test_stubbed_acm_error_never_fails_the_check(
    watched, stubbed_acm, django_capture_on_commit_callbacks,
):
    stubbed_acm.add_client_error("describe_certificate", "ThrottlingException",
                                 http_status_code=400, expected_params={"CertificateArn": ARN})
    assert _daily_check(watched, NOT_AFTER - timedelta(days=20),
                        django_capture_on_commit_callbacks) == "ok"
    watched.refresh_from_db()
    assert watched.status == DomainStatus.ACTIVE and watched.certificate_checked_at is None


def test_stubbed_sweep_deletes_expired_certificates_of_removed_domains_only(
    db, stubbed_acm,
):
    acme = WorkspaceFactory(slug="acme")
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/{}".format
    removed = CustomDomainFactory(workspace=acme, hostname="old.client.com",
                                  status=DomainStatus.REMOVED, certificate_arn=arn("held"))
    removed_twice = CustomDomainFactory(workspace=acme, hostname="older.client.com",
                                        status=DomainStatus.REMOVED)
    live = CustomDomainFactory(workspace=acme, hostname="live.client.com",
                               status=DomainStatus.ACTIVE, certificate_arn=arn("live"))
    stubbed_acm.add_response(
        "list_certificates",
        {"CertificateSummaryList": [{"CertificateArn": arn(n)}
                                    for n in ("held", "tagged", "live", "foreign", "untagged")]},
        {"CertificateStatuses": ["EXPIRED"]},
    )
    stubbed_acm.add_response("delete_certificate", {}, {"CertificateArn": arn("held")})
    stubbed_acm.add_response(
        "list_tags_for_certificate",
        {"Tags": [{"Key": "vedomains-domain-id", "Value": str(removed_twice.pk)},
                  {"Key": "vedomains-workspace", "Value": "acme"}]},
        {"CertificateArn": arn("tagged")})
    stubbed_acm.add_response("delete_certificate", {}, {"CertificateArn": arn("tagged")})
    # Same domain id, other workspace: another environment's record; never ours to delete.
    stubbed_acm.add_response(
        "list_tags_for_certificate",
        {"Tags": [{"Key": "vedomains-domain-id", "Value": str(removed_twice.pk)},
                  {"Key": "vedomains-workspace", "Value": "someone-else"}]},
        {"CertificateArn": arn("foreign")})
    stubbed_acm.add_response("list_tags_for_certificate",
                             {"Tags": [{"Key": "team", "Value": "marketing"}]},
                             {"CertificateArn": arn("untagged")})

    assert tasks.certificates_sweep_expired() == {"expired": 5, "deleted": 2, "kept": 3}
    removed.refresh_from_db()
    live.refresh_from_db()
    assert removed.certificate_arn == "" and removed.certificate_status == "DELETED"
    assert live.certificate_arn == arn("live")
    assert DomainEvent.objects.filter(kind=EventKind.CERTIFICATE_DELETED).count() == 2


@pytest.mark.per_domain
@pytest.mark.integration
def test_watch_records_moto_certificate_expiry_without_trouble(
    aws_stack, dns_server, django_capture_on_commit_callbacks,
):
    from tests.test_engine_lifecycle import _register_and_activate

    domain = _register_and_activate(WorkspaceFactory(slug="acme"), dns_server)
    assert domain.certificate_checked_at is None  # the activation check does not watch
    later = timezone.now() + timedelta(days=1)
    assert _daily_check(domain, later, django_capture_on_commit_callbacks) == "ok"
    domain.refresh_from_db()
    assert domain.certificate_checked_at is not None
    assert domain.certificate_not_after is not None
    assert domain.certificate_not_after > later + timedelta(days=300)
    assert domain.certificate_trouble == "" and domain.checks["certificate_renewal"]["ok"]
    assert not Notification.objects.filter(kind=NotificationKind.CERTIFICATE_TROUBLE).exists()
