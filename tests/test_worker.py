"""The task path end to end with a real Celery worker on Redis (no eager mode)."""

from __future__ import annotations

import time

import pytest

from domains import services, tasks
from domains.integrations import edge_store
from domains.models import CustomDomain, DomainStatus
from tests.factories import WorkspaceFactory

pytestmark = [pytest.mark.integration, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _wait_for(predicate, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.25)


def test_worker_takes_a_domain_from_registration_to_the_edge(celery_worker, dns_server):  # type: ignore[no-untyped-def]
    workspace = WorkspaceFactory(slug="acme")
    # The certificate is requested once the CNAME shows intent (issue 15).
    dns_server.store.set_record("shop.client.com", "CNAME", "domain.ve.ai")
    # Committed (transactional test): the on_commit hook queues the first check, which
    # sees the CNAME and queues request_certificate.
    domain = services.domain_register(workspace=workspace, hostname="shop.client.com", by=None)
    _wait_for(lambda: CustomDomain.objects.get(pk=domain.pk).certificate_arn, 20,
              "the worker to request the certificate")
    # What beat does every few seconds: dispatch due checks to the worker.
    deadline = time.monotonic() + 30
    while CustomDomain.objects.get(pk=domain.pk).status != DomainStatus.ACTIVE:
        assert time.monotonic() < deadline, celery_worker.log_path.read_text()[-3000:]
        CustomDomain.objects.filter(pk=domain.pk).update(next_check_at=None)
        services.domain_request_check(domain=domain, by=None, source="test")
        time.sleep(1.0)

    def pushed() -> bool:
        item = edge_store.get_item("shop.client.com")
        return item is not None and item.status == "active" and item.workspace_id == "acme"

    _wait_for(pushed, 20, "the worker to push the mapping to DynamoDB")
    _wait_for(lambda: CustomDomain.objects.get(pk=domain.pk).edge_in_sync, 10, "sync recorded")

    services.domain_remove(domain=CustomDomain.objects.get(pk=domain.pk), by=None, source="test")

    def cleaned() -> bool:
        d = CustomDomain.objects.get(pk=domain.pk)
        item = edge_store.get_item("shop.client.com")
        return not d.cleanup_pending and item is not None and item.status == "inactive"

    deadline = time.monotonic() + 30
    while not cleaned():
        assert time.monotonic() < deadline, celery_worker.log_path.read_text()[-3000:]
        tasks.dispatch_due_checks()  # cleanup steps that must wait are re-dispatched
        time.sleep(1.0)
