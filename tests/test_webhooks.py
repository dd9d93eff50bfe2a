"""Signed webhooks against a real HTTP receiver on 127.0.0.1 started by each test.

The signature is checked with the verification snippet exactly as docs/webhooks.md shows
it (the code block is read from the file and executed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from domains.models import CustomDomain, DomainStatus
from domains.task_names import TaskName
from notifications import outbox, sending, tasks
from notifications.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEventType
from tests.factories import CustomDomainFactory, WebhookEndpointFactory, WorkspaceFactory
from tests.notify_helpers import Receiver, TaskRecorder, webhook_receiver
from workflow import lifecycle

pytestmark = [pytest.mark.django_db]

ROOT = Path(__file__).resolve().parent.parent
HOST = "gallery.client.com"


def documented_verifier() -> Callable[..., bool]:
    """The `verify_signature` function from docs/webhooks.md, byte for byte."""
    text = (ROOT / "docs" / "webhooks.md").read_text()
    after_marker = text.split("<!-- verify-snippet -->", 1)[1]
    code = after_marker.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/webhooks.md", "exec"), namespace)
    return namespace["verify_signature"]


verify_signature = documented_verifier()


@pytest.fixture
def queued(queued_tasks: TaskRecorder) -> TaskRecorder:
    return queued_tasks


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


@pytest.fixture
def endpoint(receiver: Receiver, db) -> WebhookEndpoint:
    return WebhookEndpointFactory(url=receiver.url)


def _move(domain: CustomDomain, to: str, capture, *, message: str = "") -> None:
    domain.refresh_from_db()
    with capture(execute=True), transaction.atomic():
        assert lifecycle.domain_transition(domain=domain, to=to, allowed_from=[domain.status],
                                   source="test", message=message)


def _deliveries(queued: TaskRecorder) -> list[str]:
    return queued.run(TaskName.WEBHOOK_DELIVER)


def test_status_change_is_delivered_signed_and_verifies_with_the_documented_snippet(
    endpoint, receiver, queued, django_capture_on_commit_callbacks,
):
    domain = CustomDomainFactory(workspace=WorkspaceFactory(slug="acme"), hostname=HOST)
    _move(domain, DomainStatus.ACTIVE, django_capture_on_commit_callbacks,
          message="DNS, ownership and certificate verified; attached.")
    assert _deliveries(queued) == ["delivered"]

    [request] = receiver.requests
    header = request.headers["X-Vedomains-Signature"]
    assert header.startswith("t=") and ",v1=" in header
    assert verify_signature(endpoint.secret, request.body, header) is True
    event = request.json()
    delivery = WebhookDelivery.objects.get()
    assert event == {
        "id": f"evt_{delivery.event_id}",
        "type": "domain.status_changed",
        "created_at": event["created_at"],
        "version": delivery.event_id,
        "domain": {"id": domain.pk, "hostname": HOST, "workspace": "acme",
                   "status": "active", "previous_status": "pending_validation"},
        "reason": "DNS, ownership and certificate verified; attached.",
    }
    assert request.headers["X-Vedomains-Event-Id"] == event["id"]
    assert request.headers["X-Vedomains-Delivery-Attempt"] == "1"
    assert request.headers["Content-Type"] == "application/json"
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.status_code == 200
    assert delivery.attempts == 1 and delivery.latency_ms is not None
    # The receiver's body is neither read nor stored.
    assert not hasattr(delivery, "response_excerpt")


def test_tampered_body_fails_verification(endpoint, receiver, queued,
                                          django_capture_on_commit_callbacks):
    domain = CustomDomainFactory(hostname=HOST)
    _move(domain, DomainStatus.ACTIVE, django_capture_on_commit_callbacks)
    _deliveries(queued)
    [request] = receiver.requests
    header = request.headers["X-Vedomains-Signature"]
    assert verify_signature(endpoint.secret, request.body, header)

    tampered = request.body.replace(b'"status":"active"', b'"status":"removed"')
    assert tampered != request.body
    assert verify_signature(endpoint.secret, tampered, header) is False
    assert verify_signature("whsec_wrong", request.body, header) is False
    # A captured request replayed later is refused by the timestamp tolerance.
    assert verify_signature(endpoint.secret, request.body, header, now=time.time() + 3600) is False
    assert verify_signature(endpoint.secret, request.body, "v1=deadbeef") is False


def test_receiver_500_then_200_gets_the_event_once_more_and_no_more(
    endpoint, receiver, queued, django_capture_on_commit_callbacks,
):
    receiver.script = [500, 200]
    domain = CustomDomainFactory(hostname=HOST)
    _move(domain, DomainStatus.ACTIVE, django_capture_on_commit_callbacks)
    assert _deliveries(queued) == ["retry"]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.status_code) == ("pending", 1, 500)
    assert delivery.last_error == "HTTP 500"
    # Exponential backoff with jitter: the first retry waits 15-30 s (base 30 s).
    wait = delivery.next_attempt_at - timezone.now()
    assert timedelta(seconds=10) < wait <= timedelta(seconds=31)
    # Not due yet: an early duplicate task does nothing.
    assert sending.webhook_deliver(delivery_id=delivery.pk) == "not_due"

    with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1), tick=True):
        tasks.notifications_dispatch()  # beat's pass queues what is due
        assert _deliveries(queued) == ["delivered"]
    for hours in (1, 6, 25, 48):
        with time_machine.travel(timezone.now() + timedelta(hours=hours), tick=True):
            assert sending.due_deliveries() == []
            tasks.notifications_dispatch()
            assert _deliveries(queued) == []

    assert len(receiver.requests) == 2
    first, second = receiver.requests
    assert first.body == second.body  # the same event: same id, same version
    assert [r.headers["X-Vedomains-Delivery-Attempt"] for r in receiver.requests] == ["1", "2"]
    assert all(verify_signature(endpoint.secret, r.body, r.headers["X-Vedomains-Signature"])
               for r in receiver.requests)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
    assert [a["status_code"] for a in delivery.attempt_log] == [500, 200]


def test_retries_back_off_for_24_hours_then_give_up(
    endpoint, receiver, queued, django_capture_on_commit_callbacks,
):
    receiver.default = 503
    domain = CustomDomainFactory(hostname=HOST)
    _move(domain, DomainStatus.ACTIVE, django_capture_on_commit_callbacks)
    _deliveries(queued)
    delivery = WebhookDelivery.objects.get()
    gaps = []
    while delivery.status == DeliveryStatus.PENDING:
        due = delivery.next_attempt_at
        with time_machine.travel(due + timedelta(seconds=1), tick=False):
            assert sending.webhook_deliver(delivery_id=delivery.pk) in {"retry", "failed"}
        delivery.refresh_from_db()
        if delivery.next_attempt_at:
            gaps.append((delivery.next_attempt_at - due).total_seconds())
    assert delivery.status == DeliveryStatus.FAILED and delivery.next_attempt_at is None
    assert len(receiver.requests) == delivery.attempts
    assert 12 <= delivery.attempts <= 30, delivery.attempts
    # Gaps grow (exponential, with jitter) up to the 2 h cap, and attempts stop at 24 h.
    # gaps[0] follows the second failure: half to all of 2 x base (60 s), plus the 1 s the
    # test travels past each due time.
    assert gaps[0] <= 60 + 1 and max(gaps) <= 7200 + 5 and gaps[6] > gaps[1]
    last = delivery.attempt_log[-1]["at"]
    assert last <= outbox.datetime_iso(delivery.expires_at)


def test_redirects_are_not_followed(endpoint, queued, django_capture_on_commit_callbacks):
    with webhook_receiver() as elsewhere, webhook_receiver() as redirecting:
        redirecting.default = (307, {"Location": elsewhere.url}, 0.0)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=redirecting.url)
        domain = CustomDomainFactory(hostname=HOST)
        _move(domain, DomainStatus.ACTIVE, django_capture_on_commit_callbacks)
        assert _deliveries(queued) == ["retry"]
        assert len(redirecting.requests) == 1
        assert elsewhere.requests == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status_code == 307
    assert "not followed" in delivery.last_error and elsewhere.url in delivery.last_error


def test_non_http_urls_are_refused(db, queued, django_capture_on_commit_callbacks):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        WebhookEndpointFactory.build(url="file:///etc/passwd").full_clean()
    # Even if one got into the table, the sender refuses it (and does not retry).
    endpoint = WebhookEndpointFactory()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url="file:///etc/passwd")
    domain = CustomDomainFactory(hostname=HOST)
    _move(domain, DomainStatus.ACTIVE, django_capture_on_commit_callbacks)
    assert _deliveries(queued) == ["failed"]
    delivery = WebhookDelivery.objects.get()
    assert "only https" in delivery.last_error and delivery.status_code is None


def test_a_slow_receiver_times_out_and_is_retried(endpoint, receiver, queued, settings,
                                                  django_capture_on_commit_callbacks):
    settings.VEDOMAINS_WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.script = [(200, {}, 2.0)]
    domain = CustomDomainFactory(hostname=HOST)
    _move(domain, DomainStatus.ACTIVE, django_capture_on_commit_callbacks)
    started = time.monotonic()
    assert _deliveries(queued) == ["retry"]
    assert time.monotonic() - started < 1.9
    delivery = WebhookDelivery.objects.get()
    assert "timed out" in delivery.last_error and delivery.status_code is None


def test_replay_from_the_admin_sends_the_same_event_again(
    endpoint, receiver, queued, staff_user, client, django_capture_on_commit_callbacks,
):
    domain = CustomDomainFactory(hostname=HOST)
    _move(domain, DomainStatus.ACTIVE, django_capture_on_commit_callbacks)
    assert _deliveries(queued) == ["delivered"]
    delivery = WebhookDelivery.objects.get()

    client.force_login(staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/notifications/webhookdelivery/",
                               {"action": "replay", "_selected_action": [delivery.pk]})
    assert response.status_code == 302
    assert _deliveries(queued) == ["delivered"]
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body
    delivery.refresh_from_db()
    assert delivery.replays == 1 and delivery.attempts == 2
    assert any(e.get("replayed_by") == staff_user.username for e in delivery.attempt_log)
    # The delivery's admin page shows the attempts; the secret is not on it.
    page = client.get(
        f"/admin/notifications/webhookdelivery/{delivery.pk}/change/"
    ).content.decode()
    assert f"replayed by {staff_user.username}" in page
    assert endpoint.secret not in page


def test_versions_grow_and_each_endpoint_gets_what_it_asked_for(
    endpoint, receiver, queued, django_capture_on_commit_callbacks,
):
    WebhookEndpointFactory(url=receiver.url, event_types=[WebhookEventType.CERTIFICATE_TROUBLE])
    WebhookEndpointFactory(url=receiver.url, active=False)
    domain = CustomDomainFactory(hostname=HOST)
    for to in (DomainStatus.ACTIVE, DomainStatus.MISCONFIGURED, DomainStatus.ACTIVE,
               DomainStatus.REMOVED):
        _move(domain, to, django_capture_on_commit_callbacks)
    # Deliver newest first: receivers must not depend on arrival order.
    queued.calls.reverse()
    _deliveries(queued)
    events = [r.json() for r in receiver.requests]
    assert len(events) == 4  # only the endpoint that wants status changes, and is active
    newest_first = [(e["version"], e["domain"]["previous_status"], e["domain"]["status"])
                    for e in events]
    by_version = sorted(newest_first)
    assert [s for _, _, s in by_version] == ["active", "misconfigured", "active", "removed"]
    assert len({v for v, _, _ in by_version}) == 4
    # The documented receiver logic keeps the newest state whatever the arrival order.
    last: dict[str, int] = {}
    state = {}
    for event in events:
        host = event["domain"]["hostname"]
        if event["version"] <= last.get(host, 0):
            continue
        last[host] = event["version"]
        state[host] = event["domain"]["status"]
    assert state == {HOST: "removed"}


def test_the_outbox_commits_or_rolls_back_with_the_status_change(endpoint, queued):
    domain = CustomDomainFactory(hostname=HOST)
    with pytest.raises(RuntimeError), transaction.atomic():
        lifecycle.domain_transition(domain=domain, to=DomainStatus.ACTIVE,
                            allowed_from=[DomainStatus.PENDING_VALIDATION], source="test")
        assert WebhookDelivery.objects.count() == 1
        raise RuntimeError("the caller failed after the transition")
    assert WebhookDelivery.objects.count() == 0
    assert CustomDomain.objects.get(pk=domain.pk).status == DomainStatus.PENDING_VALIDATION


def test_the_signing_helper_matches_the_documented_format(db):
    body = sending.canonical_body({"b": 1, "a": "é"})
    assert body == b'{"a":"\\u00e9","b":1}'
    header = sending.sign("whsec_x", 1700000000, body)
    assert verify_signature("whsec_x", body, header, now=1700000000)
    assert json.loads(body) == {"a": "é", "b": 1}
