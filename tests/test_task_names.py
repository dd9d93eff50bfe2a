"""Every Celery task is queued by its `TaskName` (domains/task_names.py), never by a string.

The registry and the enum must name the same tasks, so a renamed task cannot be queued by
a stale name; and no code outside task_names.py spells a task name as a string literal.
"""

from __future__ import annotations

import inspect
import re
from importlib import import_module
from pathlib import Path

from celery import current_app

from domains.task_names import TaskName

ROOT = Path(__file__).resolve().parent.parent


def _our_registered_tasks() -> set[str]:
    # Celery's own tasks (celery.chord, celery.backend_cleanup, ...) are not ours.
    return {
        name
        for name in current_app.tasks
        if name.split(".", 1)[0] in ("domains", "notifications", "edge", "workflow", "veai")
    }


def test_every_task_name_is_registered_and_every_task_has_a_name() -> None:
    current_app.loader.import_default_modules()
    registered = _our_registered_tasks()
    assert registered, "no task of this app is registered: the test would prove nothing"
    assert {str(name) for name in TaskName} == registered


def test_each_task_has_the_name_of_its_function() -> None:
    """The naming rule: `<app>.tasks.<function>`, and the function has the service's name."""
    for name in TaskName:
        module, function = name.value.rsplit(".", 1)
        assert module.split(".")[1:] == ["tasks"], name
        assert name.name == function.upper(), name
        assert getattr(import_module(module), function).name == name


def test_each_task_runs_the_service_of_its_name() -> None:
    """A task is a thin wrapper: its body calls `<module>.<its own name>(...)`."""
    current_app.loader.import_default_modules()
    for name in TaskName:
        function = name.value.rsplit(".", 1)[1]
        body = inspect.getsource(current_app.tasks[name].run)
        assert re.search(rf"\b\w+\.{function}\(", body), f"{name} does not call *.{function}()"


def test_no_two_task_names_differ_by_a_plural_alone() -> None:
    """`domain_check` and `domains_check` once named two tasks; the batch says `_batch`."""
    functions = [name.value.rsplit(".", 1)[1] for name in TaskName]
    singular = [re.sub(r"s(?=_|$)", "", f) for f in functions]
    assert len(set(singular)) == len(singular), functions


def test_no_code_queues_a_task_by_a_string() -> None:
    literal = re.compile(
        r"""(?<!\w)(?:enqueue_after_commit|task_send|send_task|signature|queued\w*\.run)"""
        r"""\(\s*f?["']"""
        r"""|["']\w+\.tasks\.\w+["']""")
    offenders = []
    for folder in (
        "domains",
        "notifications",
        "edge",
        "workflow",
        "veai",
        "staff",
        "api",
        "vedomains_site",
        "tests",
        "bench",
        "localdev",
    ):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "task_names.py" or ".venv" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if literal.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == [], "queue through TaskName:\n" + "\n".join(offenders)
