"""Fleet-wide AWS rate limits: one token bucket per operation in Redis, shared by every worker.

AWS throttles per account, not per process: ten workers each keeping to ACM's documented
10 DescribeCertificate calls a second would send a hundred. Each bucket lives in Redis and
is refilled by Redis's own clock inside one Lua script, so workers on other machines (with
other clocks) draw from the same tokens atomically.
https://docs.aws.amazon.com/acm/latest/userguide/acm-limits.html (API rate quotas)

A caller that finds no token waits for one, up to `VEDOMAINS_AWS_RATE_LIMIT_MAX_WAIT_SECONDS`
seconds, then gets a transient `IntegrationError` (code `RateLimited`) that the task's retry
policy backs off from. If Redis cannot be reached the limiter lets calls through: AWS's own
throttling answers are transient too, so the worst case is the retries we had without it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

from domains.integrations.errors import IntegrationError

log = logging.getLogger(__name__)

KEY_PREFIX = "vedomains:aws-rate:"
# Seconds between two "Redis is unreachable" warnings, so an outage does not flood the log.
UNREACHABLE_LOG_INTERVAL = 60.0

# Takes one token if there is one. Returns 0 when it did, else the milliseconds until the
# next token. `now` comes from Redis (TIME), never from the caller's clock.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
"""


@dataclass(frozen=True)
class Limit:
    """`rate` calls a second on average, at most `burst` at once after a quiet spell."""

    rate: float
    burst: float


def limit_for(service: str, operation: str) -> tuple[str, Limit] | None:
    """The bucket name and limit for an operation: its own entry, else its service's `*`."""
    limits: dict[str, float] = settings.VEDOMAINS_AWS_RATE_LIMITS
    for name in (f"{service}.{operation}", f"{service}.*"):
        rate = limits.get(name)
        if rate:
            return name, Limit(rate=float(rate), burst=max(1.0, float(rate)))
    return None


class RateLimiter:
    def __init__(self, url: str, *, max_wait: float) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._take = self._redis.register_script(_TAKE)
        self._max_wait = max_wait
        self._last_warning = 0.0

    def acquire(self, name: str, limit: Limit) -> float:
        """Wait for a token of bucket `name`; returns the seconds waited."""
        deadline = time.monotonic() + self._max_wait
        waited = 0.0
        while True:
            try:
                wait_ms = int(self._take(keys=[KEY_PREFIX + name], args=[limit.rate, limit.burst]))
            except redis.RedisError as exc:
                self._warn_unreachable(exc)
                return waited
            if wait_ms == 0:
                return waited
            pause = wait_ms / 1000
            if time.monotonic() + pause > deadline:
                raise IntegrationError(
                    f"{name}: our own rate limit ({limit.rate:g}/s, shared by every worker) "
                    f"has no capacity within {self._max_wait:g} s",
                    permanent=False,
                    code="RateLimited",
                )
            time.sleep(pause)
            waited += pause

    def _warn_unreachable(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning >= UNREACHABLE_LOG_INTERVAL:
            self._last_warning = now
            log.warning("AWS rate limiter: Redis unreachable (%s); calls are not limited", exc)


_lock = threading.Lock()
_limiters: dict[str, RateLimiter] = {}


def limiter() -> RateLimiter:
    url = settings.VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL
    found = _limiters.get(url)
    if found is None:
        with _lock:
            found = _limiters.setdefault(
                url, RateLimiter(url, max_wait=settings.VEDOMAINS_AWS_RATE_LIMIT_MAX_WAIT_SECONDS)
            )
    return found


def before_send(event_name: str, **_: Any) -> None:
    """botocore `before-send.<service>.<Operation>` hook: runs once per HTTP attempt.

    Per attempt, not per call, because AWS counts each request botocore sends, retries
    included. Returning None lets the request go on.
    """
    _event, service, operation = event_name.split(".", 2)
    found = limit_for(service, operation)
    if found is not None:
        limiter().acquire(*found)
