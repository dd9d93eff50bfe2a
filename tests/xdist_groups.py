"""pytest plugin (`-p tests.xdist_groups` in pyproject's addopts): tests that must not run
beside each other under pytest-xdist go to one worker, one after another.

`./dev test` runs the suite with `--dist loadgroup` (docs/testing.md): tests marked
`xdist_group(name)` all go to the worker that takes the group; the rest are spread freely.
Without xdist the marks change nothing. It also gives each test a node id of its own, which
xdist's group scheduling needs (`_unique_node_ids`).
"""

from __future__ import annotations

import pytest
from _pytest.nodeid import coerce_node_id

# marker -> group. The whole-stack tests share one Redis database (VEDOMAINS_E2E_BROKER_URL),
# which each flushes, and two stacks at once would starve a 2-core machine. The benchmark
# smoke tests (when present) share one background benchmark run and its Redis database.
GROUPS = {"e2e": "e2e-stack", "bench_smoke": "bench"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _unique_node_ids(items)
    for item in items:
        for marker, group in GROUPS.items():
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.xdist_group(group))
                break
    # pytest-xdist sets `loadgroup` only on the processes of a `--dist loadgroup` run; a
    # serial run (`./dev test <args>`) has no such option at all.
    if getattr(config.option, "loadgroup", False):
        _group_suffix(items)


def _group_suffix(items: list[pytest.Item]) -> None:
    # `--dist loadgroup` schedules by the `@group` suffix of a node id. pytest-xdist 3.8 adds
    # it to `item._nodeid`, which pytest 9 no longer reads (the id lives in `_id`), so no
    # group held together: the e2e stacks ran on both workers at once and failed.
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if names and "@" not in item.nodeid:
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(names)}")


def _unique_node_ids(items: list[pytest.Item]) -> None:
    # schemathesis' `schema.parametrize()` gives every API operation the same node id
    # (tests/test_api_fuzz.py: `...::test_api_conforms_to_its_schema`, the operation only in
    # the name). xdist's group scheduling keys tests by node id and ran one operation of 16;
    # the name (`test_...[GET /api/domains/]`) tells them apart.
    seen: dict[str, int] = {}
    for item in items:
        seen[item.nodeid] = seen.get(item.nodeid, 0) + 1
    for item in items:
        if seen[item.nodeid] > 1 and "[" in item.name and not item.nodeid.endswith("]"):
            # pytest 9 derives `nodeid` from the private `_id`; nothing public renames a node.
            item._id = coerce_node_id(f"{item.nodeid.rpartition('::')[0]}::{item.name}")
