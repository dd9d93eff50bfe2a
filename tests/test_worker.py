"""The task path end to end with a real Celery worker on Redis (no eager mode)."""

from __future__ import annotations

import pytest

from domains.integrations import edge_store
from domains.models import CustomDomain, DomainStatus
from tests.factories import WorkspaceFactory
from tests.polling import wait_for
from workflow import services, tasks

# The per-domain strategy (ACM certificates the engine requests, template clones).
pytestmark = [
    pytest.mark.integration, pytest.mark.worker, pytest.mark.django_db(transaction=True),
    pytest.mark.per_domain,
]


def test_worker_takes_a_domain_from_registration_to_the_edge(celery_worker, dns_server):
    workspace = WorkspaceFactory(slug="acme")
    # The certificate is requested once the CNAME shows intent.
    dns_server.store.set_record("shop.client.com", "CNAME", "domain.ve.ai")
    # Committed (transactional test): the on_commit hook queues the first check, which
    # sees the CNAME and queues domain_request_certificate.
    domain = services.domain_register(workspace=workspace, hostname="shop.client.com", by=None)
    wait_for(lambda: CustomDomain.objects.get(pk=domain.pk).certificate_arn, 20,
              "the worker to request the certificate")
    # What beat does every few seconds: dispatch due checks to the worker.
    def checked_active() -> bool:
        if CustomDomain.objects.get(pk=domain.pk).status == DomainStatus.ACTIVE:
            return True
        CustomDomain.objects.filter(pk=domain.pk).update(next_check_at=None)
        services.domain_request_check(domain=domain, by=None, source="test")
        return False

    wait_for(checked_active, 30, "the worker to activate the domain", step=1.0,
             on_timeout=lambda: celery_worker.log_path.read_text()[-3000:])

    def pushed() -> bool:
        item = edge_store.get_item("shop.client.com")
        return item is not None and item.status == "active" and item.workspace_id == "acme"

    wait_for(pushed, 20, "the worker to push the mapping to DynamoDB")
    wait_for(lambda: CustomDomain.objects.get(pk=domain.pk).edge_in_sync, 10, "sync recorded")

    services.domain_remove(domain=CustomDomain.objects.get(pk=domain.pk), by=None, source="test")

    def cleaned() -> bool:
        d = CustomDomain.objects.get(pk=domain.pk)
        item = edge_store.get_item("shop.client.com")
        return not d.cleanup_pending and item is not None and item.status == "inactive"

    def dispatched_and_cleaned() -> bool:
        if cleaned():
            return True
        tasks.domains_dispatch()  # cleanup steps that must wait are re-dispatched
        return False

    wait_for(dispatched_and_cleaned, 30, "the worker to clean up", step=1.0,
             on_timeout=lambda: celery_worker.log_path.read_text()[-3000:])
