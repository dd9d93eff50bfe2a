"""The function's metrics: counters written as CloudWatch EMF log lines, no API call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final


class Metrics:
    """One window's counters, written as one CloudWatch EMF log line per flush.

    CloudWatch extracts the metrics from the log line itself, so the request path makes no
    API call: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

    COUNTERS is the only list of metrics: attribute -> EMF name; adding one is one line.
    What a recycled container had not flushed is lost: at most `metrics_flush_invocations`
    - 1 invocations' counts per container (see edge_lambda/README.md, "Metrics").
    """

    COUNTERS: Final[Mapping[str, str]] = {
        "requests": "Requests",
        "hit": "CacheHit",
        "miss": "CacheMiss",
        "error": "LookupError",
        "stale": "StaleServed",
        "stale_expired": "StaleExpired",
        "platform": "PlatformHost",
        "invalid_host": "InvalidHost",
        "invalid_item": "InvalidItem",
        "not_found": "NotFound",
        "unavailable": "Unavailable",
        "spoofed": "SpoofedHeader",
        "redirect": "Redirect",
    }
    # The seed's dashboards read these in their own namespace (CustomDomain/Cache).
    SEED_COUNTERS: Final = ("CacheHit", "CacheMiss")
    # EMF accepts at most 100 values per metric in one document; flush when full.
    MAX_SAMPLES: Final = 100

    __slots__ = (*COUNTERS, "deadline", "latency_ms", "window_start")

    requests: int
    hit: int
    miss: int
    error: int
    stale: int
    stale_expired: int
    platform: int
    invalid_host: int
    invalid_item: int
    not_found: int
    unavailable: int
    spoofed: int
    redirect: int

    def __init__(self, now: float) -> None:
        self.reset(now, 60.0)

    def reset(self, now: float, window_seconds: float) -> None:
        for name in self.COUNTERS:
            setattr(self, name, 0)
        self.latency_ms: list[float] = []
        self.window_start = now
        # The hot path compares one number; a full latency list pulls it to "now".
        self.deadline = now + window_seconds

    def add_latency(self, milliseconds: float) -> None:
        self.latency_ms.append(round(milliseconds, 3))
        if len(self.latency_ms) >= self.MAX_SAMPLES:
            self.deadline = -1.0

    def document(
        self, namespace: str, seed_namespace: str, region: str, timestamp_ms: int, cache_size: int
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {
            metric: getattr(self, name) for name, metric in self.COUNTERS.items()
        }
        definitions = [{"Name": metric, "Unit": "Count"} for metric in self.COUNTERS.values()]
        doc["CacheSize"] = cache_size
        definitions.append({"Name": "CacheSize", "Unit": "Count"})
        if self.latency_ms:
            doc["LookupLatency"] = list(self.latency_ms)
            definitions.append({"Name": "LookupLatency", "Unit": "Milliseconds"})
        doc["Region"] = region
        directives: list[dict[str, Any]] = [
            {"Namespace": namespace, "Dimensions": [["Region"]], "Metrics": definitions}
        ]
        if seed_namespace:
            # The same root values, once more without dimensions: what the seed's
            # PutMetricData wrote. Its Sum is the seed's Sum; its Average (the seed's hit
            # ratio, one 0/1 sample per request) is CacheHit / (CacheHit + CacheMiss).
            directives.append(
                {
                    "Namespace": seed_namespace,
                    "Dimensions": [[]],
                    "Metrics": [{"Name": m, "Unit": "Count"} for m in self.SEED_COUNTERS],
                }
            )
        doc["_aws"] = {"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}
        return doc
