"""Celery signal handlers: log context per task, task timings and outcomes, logging set-up,
and beat's queue-depth publisher. Connected by importing this module (vedomains_site/celery.py).

Signals rather than edits inside the tasks or the engine: every task gets the same treatment,
and the tasks module stays about the work.
"""

from __future__ import annotations

import inspect
import logging
import logging.config
import threading
import time
from functools import cache
from typing import Any, Final

from celery import Task
from celery.signals import beat_init, setup_logging, task_postrun, task_prerun
from django.conf import settings

from domains.task_names import TaskName
from vedomains_site.observability import context, counters, emf

log = logging.getLogger(__name__)

TASK_DURATION: Final = "vedomains_task_duration_seconds"
TASKS: Final = "vedomains_tasks_total"
WEBHOOK_ATTEMPTS: Final = "vedomains_webhook_attempts_total"
WEBHOOK_TASK: Final = TaskName.WEBHOOK_DELIVER

_started: dict[str, tuple[float, list[Any]]] = {}
_started_lock = threading.Lock()


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    # Connected, this stops Celery from installing its own handlers: workers and beat log
    # through settings.LOGGING (JSON in production) like the web processes.
    logging.config.dictConfig(settings.LOGGING)


@cache
def _parameters(task_name: str, run: Any) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(run).parameters)
    except (TypeError, ValueError):
        return ()


def _subject(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """domain_id / hostname when the task is about one domain (ids-only arguments)."""
    names = _parameters(task.name, task.run)
    bound = dict(zip(names, args, strict=False)) | kwargs
    found: dict[str, Any] = {}
    if isinstance(bound.get("domain_id"), int):
        found["domain_id"] = bound["domain_id"]
    if isinstance(bound.get("hostname"), str):
        found["hostname"] = bound["hostname"]
    return found


@task_prerun.connect
def _task_started(task_id: str, task: Task, args: tuple[Any, ...] = (),
                  kwargs: dict[str, Any] | None = None, **_: Any) -> None:
    tokens = context.set_values(task_id=task_id, task=task.name,
                                **_subject(task, args or (), kwargs or {}))
    with _started_lock:
        _started[task_id] = (time.monotonic(), tokens)


@task_postrun.connect
def _task_finished(task_id: str, task: Task, retval: Any = None, state: str | None = None,
                   **_: Any) -> None:
    with _started_lock:
        started, tokens = _started.pop(task_id, (None, []))
    try:
        labels = {"task": task.name}
        if started is not None:
            counters.observe(TASK_DURATION, time.monotonic() - started, labels)
        counters.incr(TASKS, {**labels, "state": state or "UNKNOWN"})
        if task.name == WEBHOOK_TASK and isinstance(retval, str):
            # notifications.webhook_deliver's outcome: delivered | retry | failed | ...
            counters.incr(WEBHOOK_ATTEMPTS, {"outcome": retval})
    finally:
        try:
            context.reset(tokens)
        except ValueError:
            # Reset from another context (a pool that ran prerun elsewhere): clear instead.
            context.set_values(**dict.fromkeys(context.FIELDS))


# --- beat: queue depth for autoscaling -----------------------------------------------------


@beat_init.connect
def _start_queue_publisher(**_: Any) -> None:
    interval = settings.VEDOMAINS_QUEUE_METRICS_INTERVAL_SECONDS
    if interval <= 0:
        return
    thread = threading.Thread(target=emf.publish_forever, args=(interval,), daemon=True,
                              name="queue-depth-emf")
    thread.start()
