"""The Celery queues, which task goes to which, and how deep each one is.

One image runs a worker per queue (`run worker checks`), so a backlog of checks never
delays a webhook and each pool scales on its own queue's depth. A worker started without
`-Q` consumes every queue below, which is what local runs and the tests do.
"""

from __future__ import annotations

from typing import Final

import redis
from kombu import Queue

DEFAULT_QUEUE: Final = "celery"
QUEUES: Final = ("checks", "aws", "notify", DEFAULT_QUEUE)

ROUTES: Final[dict[str, dict[str, str]]] = {
    # Frequent, DNS-bound, latency matters to a customer waiting for "active".
    "domains.tasks.dispatch_due_checks": {"queue": "checks"},
    "domains.tasks.check_batch": {"queue": "checks"},
    "domains.tasks.check_domain": {"queue": "checks"},
    # AWS writes and slow passes, bounded by AWS rate limits rather than by CPU.
    "domains.tasks.request_certificate": {"queue": "aws"},
    "domains.tasks.cleanup_domain": {"queue": "aws"},
    "domains.tasks.sync_edge": {"queue": "aws"},
    "domains.tasks.sync_pending_edges": {"queue": "aws"},
    "domains.tasks.reconcile_edge": {"queue": "aws"},
    "domains.tasks.sweep_expired_certificates": {"queue": "aws"},
    # Outbound HTTP and email: a slow receiver must not hold up checks.
    "domains.tasks.deliver_webhook": {"queue": "notify"},
    "domains.tasks.send_notification": {"queue": "notify"},
    "domains.tasks.dispatch_notifications": {"queue": "notify"},
}


def task_queues() -> list[Queue]:
    return [Queue(name, routing_key=name) for name in QUEUES]


# kombu's Redis transport keeps a queue as a list named after it, plus one list per
# priority step ("<queue>\x06\x16<step>") when priorities are used.
_PRIORITY_SEP: Final = "\x06\x16"
_PRIORITY_STEPS: Final = (3, 6, 9)


def depths(url: str, *, timeout: float = 2.0) -> dict[str, int]:
    """Messages waiting per queue (not counting the ones a worker holds unacked)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        pipe = client.pipeline(transaction=False)
        for name in QUEUES:
            pipe.llen(name)
            for step in _PRIORITY_STEPS:
                pipe.llen(f"{name}{_PRIORITY_SEP}{step}")
        values = pipe.execute()
    finally:
        client.close()
    per_queue = 1 + len(_PRIORITY_STEPS)
    return {name: int(sum(values[i * per_queue:(i + 1) * per_queue]))
            for i, name in enumerate(QUEUES)}
