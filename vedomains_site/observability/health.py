"""Readiness: can this web process serve a request right now (database, broker, cache)?

Our own ~80 lines rather than django-health-check: its database check writes and deletes a
row on every probe (a table and a migration of its own), and its Celery check sends a task
and waits for a worker, which would take every web task out of the load balancer whenever
the workers are down: a worker outage must slow background work, not the API. What we need
is three reads with a deadline each and a JSON reason, which is this module.

Each check runs in its own thread with one shared deadline, so a host that drops packets
(no answer, no error) costs the probe `VEDOMAINS_READINESS_TIMEOUT_SECONDS` seconds, not the
driver's default timeout of minutes, and the answer still names what hung.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Final

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connections

CHECKS: Final = ("database", "broker", "cache")


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    ms: int


def check_database() -> str:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        # This runs in a short-lived thread: its connection must not outlive it.
        connections["default"].close()
    return "SELECT 1 answered"


def check_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return f"not checked ({url.split(':', 1)[0]} broker)"
    timeout = settings.VEDOMAINS_READINESS_TIMEOUT_SECONDS
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()
    return "PING answered"


def check_cache() -> str:
    key = f"vedomains:ready:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    try:
        if cache.get(key) != "1":
            raise RuntimeError("a value written to the cache did not read back")
    finally:
        cache.delete(key)
    return "set/get answered"


_FUNCTIONS: Final[dict[str, Callable[[], str]]] = {
    "database": check_database,
    "broker": check_broker,
    "cache": check_cache,
}


def _timed(name: str) -> CheckResult:
    started = time.monotonic()
    try:
        detail = _FUNCTIONS[name]()
        ok = True
    except Exception as exc:  # noqa: BLE001 - any failure is a "not ready" with its reason
        detail, ok = f"{type(exc).__name__}: {exc}".strip()[:300], False
    return CheckResult(name, ok, detail, int((time.monotonic() - started) * 1000))


def readiness() -> list[CheckResult]:
    timeout = settings.VEDOMAINS_READINESS_TIMEOUT_SECONDS
    pool = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="readiness")
    try:
        futures = {name: pool.submit(_timed, name) for name in CHECKS}
        wait(futures.values(), timeout=timeout)
        results = []
        for name, future in futures.items():
            if future.done():
                results.append(future.result())
            else:
                results.append(CheckResult(name, False, f"no answer within {timeout:g} s",
                                           int(timeout * 1000)))
        return results
    finally:
        # A hung check keeps its thread until its I/O gives up; the probe does not wait.
        pool.shutdown(wait=False, cancel_futures=True)
