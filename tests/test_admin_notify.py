"""Admin pages for notifications: endpoints (secret handling), deliveries, notifications."""

from __future__ import annotations

import pytest
from django.utils import timezone

from domains.models import DomainStatus
from notifications.models import Notification, NotificationKind, WebhookEndpoint
from tests.factories import CustomDomainFactory, WebhookEndpointFactory

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_endpoint_secret_is_generated_and_shown_only_on_its_change_page(staff_client):
    response = staff_client.post("/admin/notifications/webhookendpoint/add/", {
        "name": "ve.ai app", "url": "https://app.ve.ai/hooks/domains", "active": "on",
        "event_types": ["domain.status_changed"],
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) > 40
    assert endpoint.event_types == ["domain.status_changed"]
    assert endpoint.secret not in str(endpoint) and endpoint.secret not in repr(endpoint)

    listing = staff_client.get("/admin/notifications/webhookendpoint/").content.decode()
    assert "ve.ai app" in listing and endpoint.secret not in listing
    change = staff_client.get(f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/")
    assert endpoint.secret in change.content.decode()


def test_bad_endpoint_urls_are_refused_by_the_form(staff_client):
    for url in ("ftp://app.ve.ai/hooks", "javascript:alert(1)", "not a url"):
        response = staff_client.post("/admin/notifications/webhookendpoint/add/",
                                     {"name": "x", "url": url, "active": "on"})
        assert response.status_code == 200  # the form again, with an error
    assert not WebhookEndpoint.objects.exists()


def test_rotate_secret(staff_client):
    endpoint = WebhookEndpointFactory()
    old = endpoint.secret
    staff_client.post("/admin/notifications/webhookendpoint/",
                      {"action": "rotate_secret", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret.startswith("whsec_")


def test_domain_page_shows_the_certificate_watch_and_lists_filter(staff_client):
    domain = CustomDomainFactory(status=DomainStatus.ACTIVE, certificate_trouble="CAA says no.",
                                 certificate_trouble_at=timezone.now(),
                                 certificate_renewal_status="PENDING_AUTO_RENEWAL")
    page = staff_client.get(f"/admin/domains/customdomain/{domain.pk}/change/").content.decode()
    assert "Certificate renewal watch" in page and "CAA says no." in page
    listing = staff_client.get("/admin/domains/customdomain/").content.decode()
    assert "certificate trouble" in listing.lower() and "needs attention" in listing.lower()


def test_notification_and_delivery_lists_render(staff_client):
    domain = CustomDomainFactory()
    Notification.objects.create(domain=domain, kind=NotificationKind.DOMAIN_ACTIVE,
                                state_key="status:1", recipients=["o@acme.test"],
                                sent_at=timezone.now())
    assert "o@acme.test" in staff_client.get("/admin/notifications/notification/").content.decode()
    assert staff_client.get("/admin/notifications/webhookdelivery/").status_code == 200
    assert staff_client.get("/admin/domains/dashboard/").status_code == 200
