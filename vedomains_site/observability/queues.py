"""How deep each Celery queue is (settings.CELERY_TASK_QUEUES: checks, edge, notifications).

One image runs a worker per queue (`run worker edge`), so a backlog of checks never delays an
edge push and each pool scales on its own queue's depth.
"""

from __future__ import annotations

from typing import Final

import redis
from django.conf import settings


def names() -> tuple[str, ...]:
    return tuple(settings.CELERY_TASK_QUEUES)


# kombu's Redis transport keeps a queue as a list named after it (after the broker's key
# prefix, CELERY_BROKER_KEY_PREFIX), plus one list per priority step
# ("<queue>\x06\x16<step>") when priorities are used.
_PRIORITY_SEP: Final = "\x06\x16"
_PRIORITY_STEPS: Final = (3, 6, 9)


def depths(url: str, *, timeout: float = 2.0) -> dict[str, int]:
    """Messages waiting per queue (not counting the ones a worker holds unacked)."""
    queues = names()
    prefix = settings.CELERY_BROKER_KEY_PREFIX
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        pipe = client.pipeline(transaction=False)
        for name in queues:
            pipe.llen(f"{prefix}{name}")
            for step in _PRIORITY_STEPS:
                pipe.llen(f"{prefix}{name}{_PRIORITY_SEP}{step}")
        values = pipe.execute()
    finally:
        client.close()
    per_queue = 1 + len(_PRIORITY_STEPS)
    return {name: int(sum(values[i * per_queue:(i + 1) * per_queue]))
            for i, name in enumerate(queues)}
