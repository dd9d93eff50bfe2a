"""Queue depth as CloudWatch Embedded Metric Format lines, written by beat for autoscaling.

ECS scales the worker services on a CloudWatch metric, so the depth must reach CloudWatch.
An EMF line on stdout does, with no extra call and no IAM permission: the awslogs driver
sends stdout to CloudWatch Logs with PutLogEvents, and CloudWatch Logs extracts the metric
from any event in this shape.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Generation_PutLogEvents.html

Beat publishes it, not a task: beat runs exactly once, and a task would stop reporting the
backlog exactly when the workers are too busy (or too few) to run it.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Final, TextIO

import redis
from django.conf import settings

from vedomains_site.observability import queues

log = logging.getLogger(__name__)

METRIC: Final = "QueueDepth"
DIMENSION: Final = "Queue"


def record(depths: dict[str, int], *, namespace: str, now_ms: int | None = None) -> list[str]:
    """One EMF document per queue (a dimension value per document keeps each one simple)."""
    timestamp = now_ms if now_ms is not None else int(time.time() * 1000)
    return [
        json.dumps({
            "_aws": {
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": [{"Name": METRIC, "Unit": "Count"}],
                }],
            },
            DIMENSION: name,
            METRIC: depth,
        }, separators=(",", ":"))
        for name, depth in sorted(depths.items())
    ]


def publish_once(stream: TextIO | None = None) -> dict[str, int]:
    depths = queues.depths(settings.CELERY_BROKER_URL)
    out = stream or sys.stdout
    for line in record(depths, namespace=settings.VEDOMAINS_QUEUE_METRICS_NAMESPACE):
        out.write(line + "\n")
    out.flush()
    return depths


def publish_forever(interval: float, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            publish_once()
        except redis.RedisError as exc:
            # No line means no data point: the scaling policy holds its capacity.
            log.warning("queue depth not published: %s", exc)
        stop.wait(interval)
