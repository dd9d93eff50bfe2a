"""The dispatcher: each due domain is queued once per lease, and the due query uses its index."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import redis
import time_machine
from django.db import connection
from django.utils import timezone

from domains.models import CustomDomain
from tests.factories import WorkspaceFactory
from tests.needs import need_postgresql
from workflow import schedule, tasks

pytestmark = [pytest.mark.integration]


def _postgresql_only(why: str) -> None:
    need_postgresql(why)


def _due_domains(n: int, *, overdue: timedelta = timedelta(minutes=1)) -> list[int]:
    workspace = WorkspaceFactory(slug="acme", plan="enterprise")
    now = timezone.now()
    made = CustomDomain.objects.bulk_create(
        [
            CustomDomain(hostname=f"site{i}.client.com", workspace=workspace,
                         ownership_token="t", next_check_at=now - overdue - timedelta(seconds=i))
            for i in range(n)
        ],
        batch_size=5000,
    )
    return [d.pk for d in made]


def _queued(url: str) -> int:
    return int(redis.Redis.from_url(url).llen("checks"))


@pytest.mark.django_db
def test_a_backlog_is_queued_once_per_lease_not_once_per_tick(clean_redis: str,
                                                              settings: Any) -> None:
    _due_domains(300)
    batches = 300 // settings.VEDOMAINS_DISPATCH_CHUNK
    for _ in range(5):  # five beat ticks with no worker running
        tasks.domains_dispatch()
    assert _queued(clean_redis) == batches  # the old dispatcher queued 5 x as many
    # A check whose message was lost runs once the lease ends: queued once more, not lost.
    with time_machine.travel(timezone.now() + timedelta(
        seconds=settings.VEDOMAINS_DISPATCH_LEASE_SECONDS)
                             + timedelta(seconds=1)):
        tasks.domains_dispatch()
        tasks.domains_dispatch()
    assert _queued(clean_redis) == 2 * batches


@pytest.mark.django_db
def test_a_new_due_time_is_dispatched_at_once(settings: Any) -> None:
    ids = _due_domains(3)
    assert sorted(schedule.domains_dispatch()) == sorted(ids)
    assert schedule.domains_dispatch() == []
    now = timezone.now()
    # The check starts (its lease moves the due time), or anything reschedules it: the next
    # due time is dispatched when it comes, not a dispatch lease later.
    assert sorted(schedule.domains_claim(ids[:2], now=now)) == sorted(ids[:2])
    CustomDomain.objects.filter(pk=ids[2]).update(next_check_at=now + timedelta(seconds=5))
    later = now + timedelta(
        seconds=settings.VEDOMAINS_DISPATCH_LEASE_SECONDS) - timedelta(seconds=1)
    assert sorted(schedule.domains_dispatch(now=later)) == sorted(ids)


@pytest.mark.django_db
def test_check_domains_command_includes_queued_domains() -> None:
    ids = _due_domains(2)
    schedule.domains_dispatch()
    assert schedule.domains_due() == []
    assert sorted(schedule.domains_due(queued=True)) == sorted(ids)


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_hand_out_disjoint_ids() -> None:
    need_postgresql("the dispatcher's SELECT ... FOR UPDATE SKIP LOCKED")
    ids = _due_domains(400)
    got: list[list[int]] = []
    start = threading.Barrier(2)

    def dispatch() -> None:
        start.wait()
        try:
            got.append(schedule.domains_dispatch(limit=400))
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(got) == 2
    assert not set(got[0]) & set(got[1])
    assert sorted(got[0] + got[1]) == sorted(ids)


@pytest.mark.django_db
def test_the_due_query_reads_its_index_at_100000_rows() -> None:
    need_postgresql("the plan under test is PostgreSQL's")
    template = CustomDomain.objects.get(pk=_due_domains(1)[0])
    table = CustomDomain._meta.db_table
    columns = [f.column for f in CustomDomain._meta.concrete_fields if f.column != "id"]
    # As in a real fleet: most rows are checked later, some never again (failed, done),
    # a few are due. Copies of one row made by the server: seconds, not minutes.
    chosen = {
        "hostname": "'site' || g || '.example.com'",
        "next_check_at": "CASE WHEN g <= 90000 THEN now() + interval '6 hours' "
                         "WHEN g <= 95000 THEN NULL ELSE now() - g * interval '1 second' END",
    }
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"SELECT {', '.join(chosen.get(c, c) for c in columns)} "
            f"FROM {table}, generate_series(1, 100000) AS g WHERE id = %s",
            [template.pk],
        )
        cursor.execute(f"ANALYZE {table}")
    assert CustomDomain.objects.count() == 100_001
    plan = schedule._due(timezone.now()).values("pk")[:10_000].explain()
    assert "domain_next_check_idx" in plan, plan
    assert "Seq Scan" not in plan, plan
