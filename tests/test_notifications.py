"""Owner emails: the right people, the right content, once per state.

The checks run against the real loopback DNS server; emails go through Django's locmem
backend; the Celery tasks queued after commit are run in-process by the TaskRecorder.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from domains.models import CustomDomain, DomainStatus, Role
from domains.task_names import TaskName
from notifications import sending
from notifications.models import Notification, NotificationKind
from tests.factories import CustomDomainFactory, MembershipFactory, UserFactory, WorkspaceFactory
from tests.notify_helpers import LOCMEM_EMAIL, TaskRecorder
from workflow import checks, lifecycle, services

pytestmark = [pytest.mark.django_db]

HOST = "gallery.client.com"
TARGET = "domain.ve.ai"


@pytest.fixture
def queued(queued_tasks: TaskRecorder, settings) -> TaskRecorder:
    settings.EMAIL_BACKEND = LOCMEM_EMAIL
    return queued_tasks


@pytest.fixture
def people(db):
    """A workspace with an owner, an admin, a plain member and an inactive owner."""
    workspace = WorkspaceFactory(slug="acme", name="Acme Photos")
    owner = MembershipFactory(workspace=workspace, role=Role.OWNER,
                              user=UserFactory(email="owner@acme.test")).user
    admin = MembershipFactory(workspace=workspace, role=Role.ADMIN,
                              user=UserFactory(email="admin@acme.test")).user
    MembershipFactory(workspace=workspace, role=Role.MEMBER, user=UserFactory(email="m@acme.test"))
    MembershipFactory(workspace=workspace, role=Role.OWNER,
                      user=UserFactory(email="gone@acme.test", is_active=False))
    return workspace, owner, admin


def _active_domain(workspace) -> CustomDomain:
    now = timezone.now()
    # No certificate ARN: these tests are about DNS states; the certificate watch has its own.
    return CustomDomainFactory(workspace=workspace, hostname=HOST, status=DomainStatus.ACTIVE,
                               activated_at=now, verified_at=now, next_check_at=now,
                               edge_version=1, edge_synced_version=1)


def _check(domain: CustomDomain, django_capture_on_commit_callbacks) -> str:
    with django_capture_on_commit_callbacks(execute=True):
        return checks.domain_check(domain_id=domain.pk, force=True).outcome


def test_misconfigured_email_names_hostname_record_and_deadline(
    people, dns_server, queued, settings, django_capture_on_commit_callbacks,
):
    workspace, _, _ = people
    domain = _active_domain(workspace)
    dns_server.store.set_record(HOST, "CNAME", "elsewhere.example.net")

    assert _check(domain, django_capture_on_commit_callbacks) == "misconfigured"
    # Sent by Celery after commit, with the row id only.
    assert TaskName.NOTIFICATION_SEND in queued.names()
    assert queued.run(TaskName.NOTIFICATION_SEND) == ["sent"]

    domain.refresh_from_db()
    deadline = domain.misconfigured_at + timedelta(
        seconds=settings.VEDOMAINS_MISCONFIGURED_GRACE_SECONDS)
    assert sorted(m.to[0] for m in mail.outbox) == ["admin@acme.test", "owner@acme.test"]
    message = mail.outbox[0]
    assert HOST in message.subject
    html = message.alternatives[0][0]
    for body in (message.body, html):
        assert HOST in body
        # What the check found, the exact record to fix, and the date it will be detached.
        assert domain.checks["dns"]["detail"] in body
        assert "elsewhere.example.net" in body
        assert "CNAME" in body and TARGET in body
        assert deadline.strftime("%d %B %Y").lstrip("0") in body
        assert deadline.strftime("%H:%M") in body
    assert "Acme Photos" in message.body

    # The same state seen again, many times: no second message.
    for hours in (1, 5, 30):
        with time_machine.travel(timezone.now() + timedelta(hours=hours), tick=True):
            assert _check(domain, django_capture_on_commit_callbacks) == "still_misconfigured"
            queued.run()
            for pk in sending.due_notifications():
                sending.notification_send(notification_id=pk)
    assert len(mail.outbox) == 2
    assert Notification.objects.filter(domain=domain).count() == 1
    sent = Notification.objects.get(domain=domain)
    assert sent.kind == NotificationKind.DOMAIN_MISCONFIGURED and sent.sent_at is not None
    assert sent.recipients == ["admin@acme.test", "owner@acme.test"]


def test_each_transition_gets_one_message_and_recovery_says_so(
    people, dns_server, queued, django_capture_on_commit_callbacks,
):
    workspace, _, _ = people
    domain = _active_domain(workspace)
    dns_server.store.set_record(HOST, "CNAME", "elsewhere.example.net")
    assert _check(domain, django_capture_on_commit_callbacks) == "misconfigured"
    queued.run()
    dns_server.store.set_record(HOST, "CNAME", TARGET)
    assert _check(domain, django_capture_on_commit_callbacks) == "fixed"
    queued.run()
    assert _check(domain, django_capture_on_commit_callbacks) == "ok"
    queued.run()

    subjects = [m.subject for m in mail.outbox if m.to == ["owner@acme.test"]]
    assert subjects == [f"Action needed: {HOST} no longer points to ve.ai",
                        f"{HOST} is working again"]
    assert list(Notification.objects.filter(domain=domain).order_by("pk")
                .values_list("kind", flat=True)) == [NotificationKind.DOMAIN_MISCONFIGURED,
                                                    NotificationKind.DOMAIN_ACTIVE]


def test_state_key_is_a_database_guarantee(people):
    workspace, _, _ = people
    domain = _active_domain(workspace)
    Notification.objects.create(domain=domain, kind=NotificationKind.DOMAIN_ACTIVE,
                                state_key="status:1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(domain=domain, kind=NotificationKind.DOMAIN_ACTIVE,
                                    state_key="status:1")


def test_racing_senders_send_once(people, queued, django_capture_on_commit_callbacks):
    workspace, _, _ = people
    domain = CustomDomainFactory(workspace=workspace, hostname=HOST)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        lifecycle.domain_transition(domain=domain, to=DomainStatus.ACTIVE,
                            allowed_from=[DomainStatus.PENDING_VALIDATION], source="test",
                            updates={"activated_at": timezone.now()})
    # The task queued after commit, a duplicate of it, and the periodic pass all try.
    [(pk,)] = [args for name, args in queued.calls if name == TaskName.NOTIFICATION_SEND]
    results = [sending.notification_send(notification_id=pk) for _ in range(3)]
    assert results == ["sent", "not_due", "not_due"]
    assert len(mail.outbox) == 2
    assert mail.outbox[0].subject == f"{HOST} is live on ve.ai"
    assert f"https://{HOST}/" in mail.outbox[0].body


def test_failed_email_says_why_and_what_to_do(
    people, dns_server, queued, settings, django_capture_on_commit_callbacks,
):
    workspace, _, _ = people
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    later = timezone.now() + timedelta(
        seconds=settings.VEDOMAINS_PENDING_TIMEOUT_SECONDS) + timedelta(minutes=1)
    # A certificate ARN is not needed to fail: the domain was never pointed at us.
    CustomDomain.objects.filter(pk=domain.pk).update(certificate_arn="")
    with time_machine.travel(later, tick=True):
        # No ARN: the check asks for one (queued, not run) and fails the domain.
        assert _check(domain, django_capture_on_commit_callbacks) == "failed"
        queued.run(TaskName.NOTIFICATION_SEND)
    assert len(mail.outbox) == 2
    message = mail.outbox[0]
    assert message.subject == f"{HOST} could not be connected to ve.ai"
    assert "never pointed at us" in message.body  # why
    assert "Create the CNAME record shown below" in message.body  # what to do
    assert f"CNAME  {HOST}  ->  {TARGET}" in message.body


def test_a_state_left_before_sending_is_not_announced(
    people, queued, django_capture_on_commit_callbacks,
):
    workspace, _, _ = people
    domain = _active_domain(workspace)
    with django_capture_on_commit_callbacks(execute=True):
        for to, old in ((DomainStatus.MISCONFIGURED, DomainStatus.ACTIVE),
                        (DomainStatus.ACTIVE, DomainStatus.MISCONFIGURED)):
            domain.refresh_from_db()
            with transaction.atomic():
                lifecycle.domain_transition(domain=domain, to=to, allowed_from=[old], source="test",
                                    updates={"misconfigured_at": timezone.now()})
    # Both emails were queued; by the time they run the domain is fine again, and the
    # owner never heard it was broken, so neither message goes out.
    assert queued.run(TaskName.NOTIFICATION_SEND) == ["superseded", "superseded"]
    assert mail.outbox == []


def test_no_owner_email_is_recorded_not_retried(queued, django_capture_on_commit_callbacks):
    domain = CustomDomainFactory(workspace=WorkspaceFactory(), hostname=HOST)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        lifecycle.domain_transition(domain=domain, to=DomainStatus.ACTIVE,
                            allowed_from=[DomainStatus.PENDING_VALIDATION], source="test")
    assert queued.run(TaskName.NOTIFICATION_SEND) == ["no_recipients"]
    assert Notification.objects.get(domain=domain).skipped == "no_recipients"
    assert sending.due_notifications() == []


def test_smtp_failure_is_retried_later_and_then_sent(
    people, queued, monkeypatch, django_capture_on_commit_callbacks,
):
    from django.core.mail.backends.locmem import EmailBackend

    workspace, _, _ = people
    domain = CustomDomainFactory(workspace=workspace, hostname=HOST)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        lifecycle.domain_transition(domain=domain, to=DomainStatus.ACTIVE,
                            allowed_from=[DomainStatus.PENDING_VALIDATION], source="test")
    real_send = EmailBackend.send_messages

    def broken_for_owner(self, messages):
        if messages[0].to == ["owner@acme.test"]:
            raise OSError("connection refused")
        return real_send(self, messages)

    # The admin's copy goes out, then the server drops the connection.
    monkeypatch.setattr(EmailBackend, "send_messages", broken_for_owner)
    assert queued.run(TaskName.NOTIFICATION_SEND) == ["retry"]
    notification = Notification.objects.get(domain=domain)
    assert "connection refused" in notification.last_error
    assert notification.next_attempt_at > timezone.now()
    assert notification.recipients == ["admin@acme.test"] and notification.sent_at is None
    monkeypatch.setattr(EmailBackend, "send_messages", real_send)
    with time_machine.travel(notification.next_attempt_at + timedelta(seconds=1), tick=True):
        assert [sending.notification_send(notification_id=pk)
                for pk in sending.due_notifications()] == ["sent"]
    # Each person got the message once: the retry did not resend the admin's copy.
    assert sorted(m.to[0] for m in mail.outbox) == ["admin@acme.test", "owner@acme.test"]
