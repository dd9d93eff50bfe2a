"""Event counters shared by every process, kept in Redis and read at scrape time.

Why not prometheus-client's own multiprocess mode: it shares values between the processes
of ONE host through files in PROMETHEUS_MULTIPROC_DIR. Our events happen in other
containers (a worker task calls AWS, a web request is scraped), so the web process that
answers /metrics could never see them. One Redis hash, incremented with HINCRBY(FLOAT),
is shared by every web, worker and beat process of the deployment, survives restarts
(counters stay monotonic), and the scrape reads it in one HGETALL.

Recording must never hurt the work it measures: short socket timeouts, and after a failure
recording is switched off for a while (a Redis outage costs one timeout per process per
`_COOL_DOWN`, not one per AWS call).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, cast

import redis
from django.conf import settings

log = logging.getLogger(__name__)

KEY: Final = "vedomains:metrics:v1"
_TIMEOUT: Final = 0.25
_COOL_DOWN: Final = 30.0
# Check durations: a batch resolves DNS and reads ACM, so seconds, not milliseconds.
DURATION_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

_lock = threading.Lock()
_client: redis.Redis | None = None
_client_url: str | None = None
_disabled_until = 0.0

Labels = tuple[tuple[str, str], ...]


def redis_url() -> str:
    return settings.VEDOMAINS_METRICS_REDIS_URL or settings.CELERY_BROKER_URL


def _redis() -> redis.Redis | None:
    global _client, _client_url
    url = redis_url()
    if not url.startswith(("redis://", "rediss://")):
        return None
    with _lock:
        if _client is None or _client_url != url:
            # redis-py's pool notices a fork (Celery's prefork) and reconnects in the child.
            _client = redis.Redis.from_url(url, socket_connect_timeout=_TIMEOUT,
                                           socket_timeout=_TIMEOUT)
            _client_url = url
        return _client


def _field(name: str, labels: Mapping[str, str] | Labels = ()) -> str:
    items = sorted(labels.items()) if isinstance(labels, Mapping) else sorted(labels)
    # "|" and "=" never occur in our label values (service, operation, error codes, task
    # names, outcomes), so the field parses back unambiguously.
    return "|".join([name, *(f"{k}={_clean(v)}" for k, v in items)])


def _clean(value: str) -> str:
    return "".join(c if c.isalnum() or c in "._-:" else "_" for c in str(value))[:80]


def _write(increments: Iterable[tuple[str, float]]) -> None:
    """Integers through HINCRBY; a float amount (a histogram's sum) through HINCRBYFLOAT."""
    global _disabled_until
    if time.monotonic() < _disabled_until:
        return
    client = _redis()
    if client is None:
        return
    try:
        pipe = client.pipeline(transaction=False)
        for field, amount in increments:
            if isinstance(amount, int):
                pipe.hincrby(KEY, field, amount)
            else:
                pipe.hincrbyfloat(KEY, field, amount)
        pipe.execute()
    except redis.RedisError as exc:
        _disabled_until = time.monotonic() + _COOL_DOWN
        log.warning("metrics not recorded for %.0f s: %s", _COOL_DOWN, exc)


def incr(name: str, labels: Mapping[str, str] | None = None, amount: int = 1) -> None:
    _write([(_field(name, labels or {}), amount)])


def incr_many(items: Iterable[tuple[str, Mapping[str, str]]]) -> None:
    _write([(_field(name, labels), 1) for name, labels in items])


def observe(name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
    """A histogram observation: cumulative buckets, sum and count, in one round trip."""
    labels = dict(labels or {})
    writes: list[tuple[str, float]] = [
        (_field(f"{name}_bucket", {**labels, "le": le_label(bound)}), 1)
        for bound in DURATION_BUCKETS if value <= bound
    ]
    writes.append((_field(f"{name}_bucket", {**labels, "le": "+Inf"}), 1))
    writes.append((_field(f"{name}_count", labels), 1))
    writes.append((_field(f"{name}_sum", labels), float(value)))
    _write(writes)


def le_label(bound: float) -> str:
    return repr(float(bound))


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def read_all() -> list[Sample]:
    """Every recorded value; raises redis.RedisError (the collector reports it)."""
    client = _redis()
    if client is None:
        return []
    raw = client.hgetall(KEY)
    samples = []
    for field, value in raw.items():
        # redis-py types replies as bytes | str; without decode_responses they are bytes.
        name, *pairs = cast(bytes, field).decode().split("|")
        labels = dict(pair.split("=", 1) for pair in pairs)
        samples.append(Sample(name, labels, float(value)))
    return samples


def reset_state() -> None:
    """Forget the client and any cool-down (tests that restart or repoint Redis)."""
    global _client, _client_url, _disabled_until
    with _lock:
        _client, _client_url, _disabled_until = None, None, 0.0
