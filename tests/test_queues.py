"""Celery queues: checks, edge sync and notifications never wait behind one another."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
from django.utils import timezone

from domains import queueing
from domains.integrations import edge_store
from domains.models import CustomDomain, DomainStatus
from domains.task_names import TaskName
from edge import tasks as edge_tasks
from tests.factories import CustomDomainFactory, WorkspaceFactory
from tests.infra import WorkerProcess
from tests.polling import wait_for
from workflow import tasks as workflow_tasks

pytestmark = [pytest.mark.integration]


def _lengths(url: str) -> dict[str, int]:
    # Kombu's Redis transport keeps each queue as a list named after it.
    client = redis.Redis.from_url(url)
    return {name: int(client.llen(name)) for name in ("checks", "edge", "notifications")}


@pytest.mark.parametrize(
    ("task", "args", "queue"),
    [
        (workflow_tasks.domain_check, (1,), "checks"),
        (workflow_tasks.domains_check_batch, ([1, 2],), "checks"),
        (workflow_tasks.domain_request_certificate, (1,), "checks"),
        (workflow_tasks.domain_cleanup, (1,), "checks"),
        (edge_tasks.edge_sync_hostname, ("gallery.client.com",), "edge"),
        (edge_tasks.edge_sync_pending, (), "edge"),
        (edge_tasks.edge_reconcile, (), "edge"),
        (workflow_tasks.domains_dispatch, (), "checks"),
    ],
)
def test_each_task_is_queued_on_its_own_queue(clean_redis: str, task: Any,
                                              args: tuple[Any, ...], queue: str) -> None:
    queueing.task_send(task.name, *args)
    lengths = _lengths(clean_redis)
    assert lengths.pop(queue) == 1
    assert set(lengths.values()) == {0}


@pytest.mark.django_db(transaction=True)
def test_an_edge_push_is_not_delayed_by_a_flood_of_checks(
    clean_redis: str, aws_stack: Any, dns_server: Any, tmp_path: Path
) -> None:
    for domain_id in range(500):
        # Ids of no domain: no-ops.
        queueing.task_send(TaskName.DOMAIN_CHECK, 10_000_000 + domain_id)
    domain = CustomDomainFactory(
        workspace=WorkspaceFactory(slug="acme"), hostname="gallery.client.com",
        status=DomainStatus.ACTIVE, verified_at=timezone.now(), activated_at=timezone.now(),
    )
    CustomDomain.objects.filter(pk=domain.pk).update(edge_version=1)
    worker = WorkerProcess(clean_redis, tmp_path / "edge-worker.log", queues=["edge"]).start()
    try:
        queueing.task_send(TaskName.EDGE_SYNC_HOSTNAME, domain.hostname)
        wait_for(lambda: edge_store.get_item(domain.hostname), 30, "the edge worker's push",
                 on_timeout=lambda: worker.log_path.read_text()[-3000:])
    finally:
        worker.stop()
    # Every check is still waiting: the edge worker never had to get through them.
    assert _lengths(clean_redis)["checks"] == 500
