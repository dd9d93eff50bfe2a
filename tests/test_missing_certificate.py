"""A certificate ACM no longer has (deleted by hand in the console, or
the local emulator restarted) is a visible state, and the domain recovers by itself.

Real moto server and DNS server; the certificate is deleted through the ACM API as a
person would in the console (moto, like ACM, then answers ResourceNotFoundException)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from domains.integrations import acm, aws
from domains.models import CustomDomain, DomainEvent, DomainStatus, EventKind
from domains.task_names import TaskName
from tests.notify_helpers import TaskRecorder
from tests.polling import wait_for
from workflow import certificates, checks, services

# The per-domain strategy (ACM certificates the engine requests, template clones).
pytestmark = [
    pytest.mark.integration, pytest.mark.django_db,
    pytest.mark.per_domain,
]

HOST = "gallery.client.com"


@pytest.fixture
def queued(queued_tasks: TaskRecorder) -> TaskRecorder:
    return queued_tasks


def _wait_issued(arn: str, seconds: float = 15) -> None:
    wait_for(lambda: acm.describe_certificate(arn).status == "ISSUED", seconds,
             "moto to issue the certificate")


def test_a_deleted_certificate_is_shown_and_replaced(
    aws_stack: Any, dns_server: Any, workspace: Any, api: APIClient, queued: TaskRecorder,
    django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    assert certificates.domain_request_certificate(domain_id=domain.pk) == "requested"
    domain.refresh_from_db()
    old_arn = domain.certificate_arn
    aws.client("acm", "us-east-1").delete_certificate(CertificateArn=old_arn)
    dns_server.store.set_record(HOST, "CNAME", "domain.ve.ai")

    with django_capture_on_commit_callbacks(execute=True):
        outcome = checks.domain_check(domain_id=domain.pk, force=True)
    assert outcome.outcome == "waiting"
    domain.refresh_from_db()
    # Visible: status, reason, the certificate check and the audit trail all say so.
    assert domain.status == DomainStatus.PENDING_VALIDATION
    assert domain.certificate_status == "MISSING"
    assert domain.certificate_arn == ""
    assert "no longer exists" in domain.last_error and old_arn in domain.last_error
    assert domain.checks["certificate"]["ok"] is False
    event = DomainEvent.objects.get(domain=domain, kind=EventKind.CERTIFICATE_MISSING)
    assert event.data == {"arn": old_arn}
    shown = api.get(f"/api/domains/{HOST}/").json()
    assert shown["certificate_status"] == "MISSING"
    assert "no longer exists" in shown["last_error"]
    # A second check before the new request runs finds nothing more to record or log.
    with django_capture_on_commit_callbacks(execute=True):
        checks.domain_check(domain_id=domain.pk, force=True)
    assert DomainEvent.objects.filter(kind=EventKind.CERTIFICATE_MISSING).count() == 1

    # By itself: the queued request gets a new certificate (a new idempotency token: the
    # old one would give back the deleted ARN), and the domain goes on to active.
    assert sorted(queued.run(TaskName.DOMAIN_REQUEST_CERTIFICATE)) == ["exists", "requested"]
    domain.refresh_from_db()
    assert domain.certificate_arn and domain.certificate_arn != old_arn
    assert domain.certificate_status == "PENDING_VALIDATION"
    _wait_issued(domain.certificate_arn)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = checks.domain_check(domain_id=domain.pk, force=True)
    assert outcome.outcome == "activated", outcome
    domain.refresh_from_db()
    assert domain.status == DomainStatus.ACTIVE and domain.last_error == ""
    assert CustomDomain.objects.filter(pk=domain.pk, certificate_status="ISSUED").exists()
