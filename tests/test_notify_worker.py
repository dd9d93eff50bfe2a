"""Notifications end to end: a committed status change reaches a real receiver and the owners'
mailbox through a real Celery worker on Redis (no eager mode, no in-process task runs)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from domains.models import DomainStatus
from notifications.models import Notification, WebhookDelivery
from tests.factories import (
    CustomDomainFactory,
    MembershipFactory,
    UserFactory,
    WebhookEndpointFactory,
    WorkspaceFactory,
)
from tests.notify_helpers import webhook_receiver
from tests.polling import wait_for
from tests.test_webhooks import verify_signature
from workflow import lifecycle

pytestmark = [pytest.mark.integration, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_worker_sends_the_signed_webhook_and_the_email_after_commit(celery_worker, dns_server):
    def worker_log() -> str:
        return celery_worker.log_path.read_text()[-3000:]

    workspace = WorkspaceFactory(slug="acme", name="Acme Photos")
    MembershipFactory(workspace=workspace, user=UserFactory(email="owner@acme.test"))
    now = timezone.now()
    domain = CustomDomainFactory(workspace=workspace, hostname="shop.client.com",
                                 status=DomainStatus.ACTIVE, activated_at=now, edge_version=1,
                                 edge_synced_version=1)
    with webhook_receiver() as receiver:
        endpoint = WebhookEndpointFactory(url=receiver.url)
        with transaction.atomic():
            lifecycle.domain_transition(domain=domain, to=DomainStatus.MISCONFIGURED,
                                allowed_from=[DomainStatus.ACTIVE], source="test",
                                message="shop.client.com has no CNAME record.",
                                updates={"misconfigured_at": now})
            # Inside the transaction nothing has been queued yet.
            assert receiver.requests == []
        wait_for(lambda: receiver.requests, 20, "the webhook POST", on_timeout=worker_log)
        [request] = receiver.requests
    assert verify_signature(endpoint.secret, request.body,
                            request.headers["X-Vedomains-Signature"])
    assert request.json()["domain"]["status"] == "misconfigured"
    wait_for(lambda: WebhookDelivery.objects.filter(status="delivered").exists(), 10,
              "the delivery to be recorded", on_timeout=worker_log)

    wait_for(lambda: Notification.objects.filter(sent_at__isnull=False).exists(), 20,
              "the owner email", on_timeout=worker_log)
    notification = Notification.objects.get()
    assert notification.recipients == ["owner@acme.test"]
    # Locally the console backend prints the message: it is in the worker's output.
    wait_for(lambda: "Action needed: shop.client.com no longer points to ve.ai"
              in celery_worker.log_path.read_text(), 5, "the email in the worker log",
              on_timeout=worker_log)
