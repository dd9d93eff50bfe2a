"""Queue a Celery task by name, now or once the transaction commits.

By name, because each app's tasks module sits at the top of its app (it calls
everything else): looking the task up in Celery's registry keeps the layers below free
of an import of it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from celery import current_app
from django.db import transaction

from domains.task_names import TaskName

log = logging.getLogger(__name__)


def task_send(task_name: TaskName, *args: object) -> None:
    """Queue a task now; a broker outage must not fail the request that caused it.

    Nothing is lost when the send fails: the state it was about is already committed, and
    the dispatcher (for checks and cleanups) and the reconcile pass (for the edge) pick it up.
    """
    # Outside the try: an unknown name is a bug to raise, not a broker outage to log.
    task = current_app.tasks[task_name]
    try:
        task.apply_async(args=args, retry=True, retry_policy={"max_retries": 2})
    except Exception:
        log.warning("could not queue %s%r; the periodic pass will catch up", task_name, args,
                    exc_info=True)


def enqueue_after_commit(task_name: TaskName, *args: object) -> None:
    """Send a task once the surrounding transaction has committed (never for a rollback)."""
    transaction.on_commit(lambda: task_send(task_name, *args))


def enqueue_all_after_commit(queued: Iterable[tuple[TaskName, int]]) -> None:
    for task_name, pk in queued:
        enqueue_after_commit(task_name, pk)
