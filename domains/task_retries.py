"""The retry policy the apps' Celery tasks share (each app's `tasks` module holds
its tasks; its AppConfig.ready imports them so every process knows them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from domains.integrations.errors import IntegrationError, TransientIntegrationError

# The retry policy of the tasks that call AWS: Celery's autoretry, exponential from 5 s to
# 10 minutes with full jitter, 8 times; only for transient errors (a permanent one, such as
# an alias held by another account, fails at once).
RETRY_TRANSIENT: dict[str, Any] = {
    "autoretry_for": (TransientIntegrationError,),
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
}


@contextmanager
def transient_errors_retried() -> Iterator[None]:
    """Re-raise a transient IntegrationError as the class RETRY_TRANSIENT retries."""
    try:
        yield
    except TransientIntegrationError:
        raise
    except IntegrationError as exc:
        if exc.permanent:
            raise
        raise TransientIntegrationError(exc.message, code=exc.code) from exc
