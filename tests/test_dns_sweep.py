"""DNS-ready first (workflow/dns_sweep.py): a pending domain whose CNAME has just been set is
checked now, not at its backed-off next check; the crowd whose DNS is still wrong costs no
AWS call and no write. Against the loopback DNS server and the SaaS Manager emulator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from domains.models import CustomDomain, DomainStatus
from tests.factories import WorkspaceFactory
from workflow import checks, dns_sweep, schedule, services, tasks

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def crowd(saas_stack: dict[str, Any], django_capture_on_commit_callbacks: Any
          ) -> list[CustomDomain]:
    """Six pending domains, checked once with no DNS, now on a backed-off schedule (2 h)."""
    workspace = WorkspaceFactory(slug="crowd", plan="enterprise")
    domains = [services.domain_register(workspace=workspace, hostname=f"shop{i}.crowd.com",
                                        by=None) for i in range(6)]
    with django_capture_on_commit_callbacks(execute=True):
        checks.domains_check_batch(domain_ids=[d.pk for d in domains], force=True)
    CustomDomain.objects.update(
        fast_checks_until=None, next_check_at=F("last_checked_at") + timedelta(hours=2))
    return list(CustomDomain.objects.order_by("pk"))


def _due_ids() -> set[int]:
    return set(schedule.domains_due(now=timezone.now()))


def test_a_cname_just_set_is_made_due_with_fast_checks_and_nothing_else_moves(
    crowd: list[CustomDomain], dns_server: Any, moto_server: Any
) -> None:
    assert _due_ids() == set()
    calls_before = moto_server.saas_calls()
    untouched = {d.pk: d.next_check_at for d in crowd}

    dns_server.set_record(crowd[3].hostname, "CNAME", settings.VEDOMAINS_CNAME_TARGET)
    result = dns_sweep.pending_dns_sweep()

    assert result.looked_up == 6
    assert result.ready == [crowd[3].pk]
    assert _due_ids() == {crowd[3].pk}
    ready = CustomDomain.objects.get(pk=crowd[3].pk)
    assert ready.fast_checks_until is not None and ready.fast_checks_until > timezone.now()
    del untouched[crowd[3].pk]
    assert dict(CustomDomain.objects.exclude(pk=crowd[3].pk)
                .values_list("pk", "next_check_at")) == untouched
    # DNS only: the emulator saw no call at all.
    assert moto_server.saas_calls() == calls_before


def test_the_sweep_task_checks_the_ready_domain_at_once(
    crowd: list[CustomDomain], dns_server: Any, moto_server: Any,
    django_capture_on_commit_callbacks: Any
) -> None:
    before = moto_server.saas_calls().get("CreateDistributionTenant", 0)
    dns_server.set_record(crowd[0].hostname, "CNAME", settings.VEDOMAINS_CNAME_TARGET)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.pending_dns_sweep() == 1
    ready = CustomDomain.objects.get(pk=crowd[0].pk)
    # Checked by the sweep's own task: its tenant exists and (the emulator deploys at once
    # here) it is live.
    assert ready.cdn_resource_id
    assert ready.status == DomainStatus.ACTIVE
    assert moto_server.saas_calls().get("CreateDistributionTenant", 0) == before + 1
    # The crowd: still without a tenant, still on its own schedule.
    assert not CustomDomain.objects.exclude(pk=ready.pk).exclude(cdn_resource_id="").exists()
    # A second tick finds nothing new (the ready one has a tenant now).
    assert tasks.pending_dns_sweep() == 0


def test_bounded_per_tick_resuming_where_the_last_tick_stopped(
    crowd: list[CustomDomain], dns_server: Any
) -> None:
    dns_server.set_record(crowd[4].hostname, "CNAME", settings.VEDOMAINS_CNAME_TARGET)
    first = dns_sweep.pending_dns_sweep(limit=2)
    second = dns_sweep.pending_dns_sweep(limit=2)
    third = dns_sweep.pending_dns_sweep(limit=2)
    assert (first.looked_up, first.ready, first.wrapped) == (2, [], False)
    assert (second.looked_up, second.ready, second.wrapped) == (2, [], False)
    assert (third.looked_up, third.ready) == (2, [crowd[4].pk])
    # The end of the crowd: the next tick starts from the beginning again.
    assert dns_sweep.pending_dns_sweep(limit=2).wrapped
    dns_server.set_record(crowd[0].hostname, "CNAME", settings.VEDOMAINS_CNAME_TARGET)
    again = dns_sweep.pending_dns_sweep(limit=2)
    assert (again.looked_up, again.ready) == (2, [crowd[0].pk])


def test_a_domain_in_the_middle_of_a_check_is_never_made_due(
    crowd: list[CustomDomain], dns_server: Any
) -> None:
    """A second check beside a running one could create its tenant twice."""
    target = crowd[2]
    # Its backed-off check comes due and a worker claims it (the lease), then DNS changes.
    CustomDomain.objects.filter(pk=target.pk).update(next_check_at=timezone.now())
    assert schedule.domains_claim([target.pk], now=timezone.now()) == [target.pk]
    dns_server.set_record(target.hostname, "CNAME", settings.VEDOMAINS_CNAME_TARGET)
    # Another domain, due in a minute after a check long ago (an interval longer than the
    # lease): it might be leased as far as the sweep can tell, so it keeps its schedule.
    other = crowd[5]
    dns_server.set_record(other.hostname, "CNAME", settings.VEDOMAINS_CNAME_TARGET)
    now = timezone.now()
    CustomDomain.objects.filter(pk=other.pk).update(
        last_checked_at=now - timedelta(hours=2), next_check_at=now + timedelta(minutes=1))

    result = dns_sweep.pending_dns_sweep()

    assert result.ready == []
    assert _due_ids() == set()


def test_a_domain_whose_dns_was_already_right_is_not_looked_up(
    crowd: list[CustomDomain], dns_server: Any
) -> None:
    """Right at its last check and still without a tenant (CAA, the budget): waiting on
    something else, which its own schedule follows."""
    held = crowd[1]
    dns_server.set_record(held.hostname, "CNAME", settings.VEDOMAINS_CNAME_TARGET)
    record = dict(held.checks)
    record["dns"] = {**record["dns"], "ok": True}
    CustomDomain.objects.filter(pk=held.pk).update(checks=record)
    result = dns_sweep.pending_dns_sweep()
    assert result.looked_up == 5
    assert result.ready == []
    assert CustomDomain.objects.get(pk=held.pk).status == DomainStatus.PENDING_VALIDATION
