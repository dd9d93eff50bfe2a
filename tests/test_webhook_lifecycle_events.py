"""The main app hears of a domain when it is registered and when it is
removed, not only when it leaves pending. Real HTTP receiver, real API calls."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from domains.task_names import TaskName
from notifications.models import WebhookEventType
from tests.factories import WebhookEndpointFactory
from tests.notify_helpers import Receiver, TaskRecorder, webhook_receiver

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def queued(queued_tasks: TaskRecorder) -> TaskRecorder:
    return queued_tasks


@pytest.fixture
def receiver() -> Any:
    with webhook_receiver() as r:
        yield r


def test_registration_and_removal_send_events(
    api: APIClient, workspace: Any, receiver: Receiver, queued: TaskRecorder,
    django_capture_on_commit_callbacks: Any,
) -> None:
    WebhookEndpointFactory(url=receiver.url)
    # An endpoint that subscribed to status changes before these types existed keeps
    # hearing of both; one that wants only certificate trouble hears neither.
    WebhookEndpointFactory(url=receiver.url, event_types=[WebhookEventType.STATUS_CHANGED])
    WebhookEndpointFactory(url=receiver.url, event_types=[WebhookEventType.CERTIFICATE_TROUBLE])
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post("/api/domains/", {"hostname": "gallery.client.com", "workspace": "acme"},
                     format="json")
    assert r.status_code == 201
    assert queued.run(TaskName.WEBHOOK_DELIVER) == ["delivered", "delivered"]
    registered = [q.json() for q in receiver.requests]
    assert {e["type"] for e in registered} == {"domain.registered"}
    assert registered[0]["domain"] == {
        "id": registered[0]["domain"]["id"], "hostname": "gallery.client.com",
        "workspace": "acme", "status": "pending_validation", "previous_status": "",
    }
    assert registered[0]["id"] == registered[1]["id"]  # one event, one id per endpoint

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete("/api/domains/gallery.client.com/").status_code == 200
    assert queued.run(TaskName.WEBHOOK_DELIVER) == ["delivered", "delivered"]
    removed = [q.json() for q in receiver.requests[2:]]
    assert {e["type"] for e in removed} == {"domain.removed"}
    assert {(e["domain"]["previous_status"], e["domain"]["status"]) for e in removed} == {
        ("pending_validation", "removed")}
    assert removed[0]["version"] > registered[0]["version"]
