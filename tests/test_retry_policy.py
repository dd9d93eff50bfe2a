"""One retry policy: Celery's autoretry for the tasks, one backoff helper for the rest."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domains.integrations import backoff
from domains.integrations.errors import IntegrationError, TransientIntegrationError
from edge import sync as edge_sync
from edge import tasks as edge_tasks
from notifications import sending
from workflow import tasks as workflow_tasks


@given(retry=st.integers(0, 40), base=st.floats(0.01, 100), cap=st.floats(0.01, 10_000))
def test_full_jitter_stays_within_the_capped_exponential(retry: int, base: float,
                                                         cap: float) -> None:
    delay = backoff.backoff_seconds(retry, base=base, cap=cap)
    assert 0 <= delay <= min(cap, base * 2**retry)


@given(retry=st.integers(0, 40), base=st.floats(0.01, 100), cap=st.floats(0.01, 10_000))
def test_equal_jitter_keeps_at_least_half(retry: int, base: float, cap: float) -> None:
    ceiling = min(cap, base * 2**retry)
    delay = backoff.backoff_seconds(retry, base=base, cap=cap, floor=backoff.EQUAL_JITTER)
    assert ceiling / 2 <= delay <= ceiling


def test_jitter_spreads_the_delays() -> None:
    random.seed(12)
    delays = {round(backoff.backoff_seconds(3, base=5, cap=600), 3) for _ in range(50)}
    assert len(delays) > 40  # not one shared delay that would make callers retry together


def test_webhook_backoff_doubles_from_the_base(settings: Any) -> None:
    settings.VEDOMAINS_WEBHOOK_RETRY_BASE_SECONDS = 30
    settings.VEDOMAINS_WEBHOOK_RETRY_MAX_SECONDS = 7200
    for attempt, full in ((1, 30), (2, 60), (3, 120), (20, 7200)):
        seconds = sending.webhook_backoff(attempt).total_seconds()
        assert full / 2 <= seconds <= full


def test_the_aws_tasks_share_celerys_autoretry_policy() -> None:
    for task in (
        workflow_tasks.domain_request_certificate,
        edge_tasks.edge_sync_hostname,
        workflow_tasks.domain_cleanup,
    ):
        assert task.autoretry_for == (TransientIntegrationError,)
        assert (task.retry_backoff, task.retry_backoff_max, task.retry_jitter) == (5, 600, True)
        assert task.max_retries == 8


def _failing(monkeypatch: pytest.MonkeyPatch, error: IntegrationError) -> list[str]:
    calls: list[str] = []

    def push(*, hostname: str) -> str:
        calls.append(hostname)
        raise error

    monkeypatch.setattr(edge_sync, "edge_sync_hostname", push)
    return calls


def test_a_transient_error_is_retried_then_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _failing(monkeypatch, IntegrationError("throttled", permanent=False, code="Slow"))
    # apply() runs in this process; Celery's eager retries run again at once (no countdown).
    result = edge_tasks.edge_sync_hostname.apply(args=("gallery.example.com",))
    assert len(calls) == 1 + edge_tasks.edge_sync_hostname.max_retries
    assert isinstance(result.result, TransientIntegrationError)
    assert result.result.code == "Slow"


def test_a_permanent_error_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _failing(monkeypatch, IntegrationError("not ours", permanent=True, code="Denied"))
    result = edge_tasks.edge_sync_hostname.apply(args=("gallery.example.com",))
    assert len(calls) == 1
    assert result.failed() and "not ours" in repr(result.result)
