"""The one backoff for retries that are not Celery's (Celery tasks use its own autoretry).

Exponential from `base`, capped at `cap`, with jitter so many callers that failed together
do not retry together (AWS Architecture Blog, "Exponential Backoff And Jitter"). The same
formula as Celery's `retry_backoff` + `retry_jitter`; `floor` keeps a share of the delay
out of the jitter where a retry must never come almost at once.
"""

from __future__ import annotations

import random
from datetime import timedelta

# Full jitter: anywhere from 0 to the exponential delay (Celery's retry_jitter=True).
FULL_JITTER = 0.0
# Equal jitter: at least half the exponential delay.
EQUAL_JITTER = 0.5


def backoff_seconds(retry: int, *, base: float, cap: float, floor: float = FULL_JITTER) -> float:
    """Seconds to wait before retry number `retry` (0 for the first retry)."""
    delay = min(cap, base * 2 ** max(0, retry))
    return delay * floor + random.uniform(0, delay * (1 - floor))


def backoff_delay(retry: int, *, base: float, cap: float, floor: float = FULL_JITTER
                  ) -> timedelta:
    return timedelta(seconds=backoff_seconds(retry, base=base, cap=cap, floor=floor))
