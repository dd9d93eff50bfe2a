"""pytest plugin (`-p tests.xdist_groups` in pyproject's addopts): tests that must not run
beside each other under pytest-xdist go to one worker, one after another.

`./dev test` runs the suite with `--dist loadgroup` (docs/testing.md): tests marked
`xdist_group(name)` all go to the worker that takes the group; the rest are spread freely.
Without xdist the marks change nothing.
"""

from __future__ import annotations

import pytest

# marker -> group. The whole-stack tests share one Redis database (VEDOMAINS_E2E_BROKER_URL),
# which each flushes, and two stacks at once would starve a 2-core machine. The benchmark
# smoke tests (when present) share one background benchmark run and its Redis database.
GROUPS = {"e2e": "e2e-stack", "bench_smoke": "bench"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker, group in GROUPS.items():
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.xdist_group(group))
                break
