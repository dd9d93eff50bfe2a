"""The module layers (README, "Architecture"): the import contract holds and nothing cycles.

`./dev test` also runs `lint-imports` on its own; these tests keep the guarantee inside the
suite, and the second one states "no cycle" directly rather than through the layer list.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import grimp
import pytest
from celery import current_app
from importlinter import cli

from domains.lifecycle import TASK_PREFIX

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_no_two_modules_of_the_product_import_each_other() -> None:
    graph = grimp.build_graph("domains", cache_dir=None)
    # Top-level modules and subpackages of `domains` (a subpackage counts as one module).
    units = sorted({".".join(m.split(".")[:2]) for m in graph.modules if m != "domains"})
    cycles = [
        (a, b) for a, b in itertools.combinations(units, 2)
        if graph.chain_exists(importer=a, imported=b, as_packages=True)
        and graph.chain_exists(importer=b, imported=a, as_packages=True)
    ]
    assert cycles == []


def test_the_task_registry_knows_every_task_queued_by_name() -> None:
    """`lifecycle.enqueue_after_commit` looks tasks up by name: each name must be registered."""
    queued = set()
    for path in (ROOT / "domains").rglob("*.py"):
        text = path.read_text()
        queued |= set(re.findall(r'(?:enqueue_after_commit|task_send)\(\s*"(\w+)"', text))
        queued |= set(re.findall(r'\(\s*"(\w+)",\s*\w+(?:\.pk)?\)\s*for ', text))
    assert queued, "the search found no queued task names"
    registered = {name.removeprefix(TASK_PREFIX) for name in current_app.tasks}
    assert queued <= registered, queued - registered
