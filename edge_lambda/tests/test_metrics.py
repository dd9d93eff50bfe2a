"""Edge metrics: one counter table, the loss bound, what a flush per invocation costs."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from edge_lambda import handler as edge
from edge_lambda.tests.conftest import ConfigureEdge, FakeClock, load_event

pytestmark = pytest.mark.integration


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def test_every_counter_comes_from_the_one_table(edge_fn: ModuleType) -> None:
    """Adding a metric is one line in Metrics.COUNTERS: the attribute, the reset, the EMF
    value and its definition all follow from it."""
    metrics = edge.Metrics(0.0)
    for number, name in enumerate(edge.Metrics.COUNTERS, start=1):
        setattr(metrics, name, number)
    doc = metrics.document("ns", "", "eu-west-1", 0, cache_size=7)
    definitions = [m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert definitions == [*edge.Metrics.COUNTERS.values(), "CacheSize"]
    for number, metric in enumerate(edge.Metrics.COUNTERS.values(), start=1):
        assert doc[metric] == number
    metrics.reset(5.0, 60.0)
    assert all(getattr(metrics, name) == 0 for name in edge.Metrics.COUNTERS)
    assert metrics.deadline == 65.0
    with pytest.raises(AttributeError):  # __slots__: a typo cannot add a silent counter
        metrics.hits = 1  # type: ignore[attr-defined]  # the unknown attribute is the point


def test_a_recycled_container_loses_at_most_flush_invocations_minus_one(
    configure_edge: ConfigureEdge, capsys: pytest.CaptureFixture[str]
) -> None:
    """The documented bound: counts are written every metrics_flush_invocations requests
    (or flush_seconds); a container that is recycled loses only its unwritten tail."""
    fn = configure_edge(metrics_flush_invocations=10, metrics_flush_seconds=3600)
    for _ in range(37):
        fn.handler(load_event("viewer-request", "acme.ve.ai"))
    written = sum(doc["Requests"] for doc in emitted(capsys))
    lost = 37 - written  # what a recycle now would lose
    assert written == 30 and 0 <= lost <= 10 - 1


def test_flush_seconds_bounds_the_delay_of_a_busy_container(
    configure_edge: ConfigureEdge, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    fn = configure_edge(metrics_flush_seconds=60)
    fn.handler(load_event("viewer-request", "acme.ve.ai"))
    clock.advance(59)
    fn.handler(load_event("viewer-request", "acme.ve.ai"))
    assert emitted(capsys) == []
    clock.advance(1)
    fn.handler(load_event("viewer-request", "acme.ve.ai"))
    (doc,) = emitted(capsys)
    assert doc["Requests"] == 3


def test_flush_per_invocation_costs_one_log_line_of_bounded_size(
    configure_edge: ConfigureEdge, capsys: pytest.CaptureFixture[str]
) -> None:
    """metrics_flush_invocations=1 loses nothing; each request then writes one EMF line
    (the bytes bench/edge.py reports per request, and CloudWatch Logs bills per GB)."""
    fn = configure_edge(metrics_flush_invocations=1)
    hosts = ["acme.ve.ai", "nobody.example.com", "[::1]"]
    for host in hosts:
        fn.handler(load_event("origin-request-custom", host))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(hosts)
    assert all(len(line.encode()) < 1500 for line in lines), [len(x) for x in lines]
    assert [json.loads(line)["Requests"] for line in lines] == [1, 1, 1]


def test_the_seed_namespace_can_be_turned_off(
    configure_edge: ConfigureEdge, capsys: pytest.CaptureFixture[str]
) -> None:
    fn = configure_edge(metrics_flush_invocations=1, seed_metrics_namespace="")
    fn.handler(load_event("viewer-request", "acme.ve.ai"))
    (doc,) = emitted(capsys)
    namespaces = [d["Namespace"] for d in doc["_aws"]["CloudWatchMetrics"]]
    assert namespaces == ["vedomains/Edge"]


def test_a_full_latency_list_forces_a_flush(edge_fn: ModuleType) -> None:
    metrics = edge_fn._metrics
    for _ in range(edge.Metrics.MAX_SAMPLES):
        metrics.add_latency(1.0)
    assert metrics.deadline < 0  # the next request flushes, whatever the clock says
