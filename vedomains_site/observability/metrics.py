"""Prometheus exposition for operators, computed when scraped.

Why Prometheus over CloudWatch EMF for these: most of what an operator asks ("how many
domains are stuck pending", "how deep is each queue", "how far behind is the edge") is a
state best read from the database and Redis at the moment of asking, which a scrape does
in a few indexed queries, where EMF can only record events as they happen. Prometheus also
gives rates and percentiles over any window from the counters below, and it is what
Grafana/Alertmanager set-ups expect. The one number CloudWatch needs (queue depth, for ECS
autoscaling) is written by beat as EMF as well (emf.py).

Sources:
- the database: domains by status, checks done (the sum of every domain's check_count, a
  counter that moves with every check by whichever process ran it), webhook deliveries by
  status, edge sync backlog and lag;
- the broker: queue depth per queue;
- the event counters in Redis (counters.py): AWS calls/errors/throttles (botocore events),
  task durations and outcomes (Celery signals), webhook attempts by outcome.

A fresh registry holds only this collector: the default process and platform collectors
would describe whichever gunicorn worker answered the scrape, which is noise here.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import Final

from django.conf import settings
from django.db.models import Count, F, Min, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from domains.models import CustomDomain, DomainStatus
from notifications.models import DeliveryStatus, WebhookDelivery
from vedomains_site.observability import aws_metrics, celery_hooks, counters, queues

log = logging.getLogger(__name__)

# Counters recorded in Redis: name -> (help, label names).
EVENT_COUNTERS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    aws_metrics.CALLS: ("AWS API calls (after botocore's retries)", ("service", "operation")),
    aws_metrics.ERRORS: ("AWS API calls that failed, by error code",
                         ("service", "operation", "code")),
    aws_metrics.THROTTLES: ("AWS attempts answered with a throttling error, retried or not",
                            ("service", "operation")),
    celery_hooks.TASKS: ("Celery tasks finished, by final state", ("task", "state")),
    celery_hooks.WEBHOOK_ATTEMPTS: ("Webhook delivery attempts, by outcome", ("outcome",)),
}
EVENT_HISTOGRAMS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    celery_hooks.TASK_DURATION: ("Celery task run time (domains_check_batch: one batch of checks)",
                                 ("task",)),
}


class OperatorCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("vedomains_metrics_source_up",
                               "1 if the source answered this scrape", labels=["source"])
        for source, produce in (("database", self._database), ("broker", self._broker),
                                ("counters", self._events)):
            try:
                yield from list(produce())
                up.add_metric([source], 1)
            except Exception:
                log.warning("metrics source %s failed", source, exc_info=True)
                up.add_metric([source], 0)
        yield up

    def _database(self) -> Iterator[Metric]:
        by_status = dict.fromkeys(DomainStatus.values, 0)
        for row in CustomDomain.objects.values("status").annotate(n=Count("id")).order_by():
            by_status[row["status"]] = row["n"]
        domains = GaugeMetricFamily("vedomains_domains", "Custom domains by status",
                                    labels=["status"])
        for status, n in sorted(by_status.items()):
            domains.add_metric([status], n)
        yield domains

        checks = CustomDomain.objects.aggregate(n=Sum("check_count"))["n"] or 0
        yield CounterMetricFamily("vedomains_domain_checks",
                                  "Domain checks done (rate() gives checks per minute)",
                                  value=checks)

        deliveries = GaugeMetricFamily("vedomains_webhook_deliveries",
                                       "Webhook deliveries by status (failed = gave up)",
                                       labels=["status"])
        by_delivery = dict.fromkeys(DeliveryStatus.values, 0)
        for row in WebhookDelivery.objects.values("status").annotate(n=Count("id")).order_by():
            by_delivery[row["status"]] = row["n"]
        for status, n in sorted(by_delivery.items()):
            deliveries.add_metric([status], n)
        yield deliveries

        backlog = CustomDomain.objects.filter(edge_synced_version__lt=F("edge_version")).aggregate(
            n=Count("id"), oldest=Min("updated_at"))
        yield GaugeMetricFamily("vedomains_edge_unsynced_domains",
                                "Domains whose latest change is not confirmed in DynamoDB",
                                value=backlog["n"])
        lag = 0.0
        if backlog["oldest"] is not None:
            lag = max(0.0, (timezone.now() - backlog["oldest"]).total_seconds())
        yield GaugeMetricFamily(
            "vedomains_edge_sync_lag_seconds",
            "Age of the oldest unconfirmed edge change (0 when the edge is in sync)",
            value=lag)

    def _broker(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("vedomains_queue_depth", "Messages waiting per Celery queue",
                                  labels=["queue"])
        for name, n in queues.depths(settings.CELERY_BROKER_URL).items():
            depth.add_metric([name], n)
        yield depth

    def _events(self) -> Iterator[Metric]:
        samples = counters.read_all()
        families: dict[str, CounterMetricFamily] = {
            name: CounterMetricFamily(name, doc, labels=list(labels))
            for name, (doc, labels) in EVENT_COUNTERS.items()
        }
        histograms: dict[str, dict[tuple[str, ...], dict[str, float]]] = defaultdict(
            lambda: defaultdict(dict))
        for sample in samples:
            if sample.name in families:
                labels = EVENT_COUNTERS[sample.name][1]
                families[sample.name].add_metric(
                    [sample.labels.get(k, "") for k in labels], sample.value)
                continue
            for name, (_, labels) in EVENT_HISTOGRAMS.items():
                suffix = sample.name.removeprefix(name)
                if suffix in {"_bucket", "_sum", "_count"} and sample.name.startswith(name):
                    key = tuple(sample.labels.get(k, "") for k in labels)
                    part = sample.labels["le"] if suffix == "_bucket" else suffix
                    histograms[name][key][part] = sample.value
        yield from families.values()
        for name, (doc, labels) in EVENT_HISTOGRAMS.items():
            family = HistogramMetricFamily(name, doc, labels=list(labels))
            for key, parts in sorted(histograms[name].items()):
                buckets = [(le, parts.get(le, 0.0)) for le in
                           [counters.le_label(b) for b in counters.DURATION_BUCKETS]]
                buckets.append(("+Inf", parts.get("+Inf", parts.get("_count", 0.0))))
                family.add_metric(list(key), buckets, sum_value=parts.get("_sum", 0.0))
            yield family


def exposition() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OperatorCollector())
    return generate_latest(registry)
