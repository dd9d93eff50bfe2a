"""The one skip policy: a test that needs something missing fails under CI, skips locally.

CI (`CI=true`, set by the CI runner) must run every test, so a missing Chromium or
PostgreSQL there is a failure with the reason, never a silent skip. On a developer's machine
the same test skips with the reason, so a quick local run on SQLite still works.
"""

from __future__ import annotations

import os
import shutil

import pytest
from django.db import connection


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def need(available: bool, reason: str) -> None:
    if available:
        return
    if under_ci():
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def need_postgresql(why: str) -> None:
    need(connection.vendor == "postgresql", f"PostgreSQL only ({why}); set DATABASE_URL")


def need_programs(*names: str, install: str) -> list[str]:
    """The full paths of `names` (each a list of alternatives separated by "|")."""
    found = [next((p for n in name.split("|") if (p := shutil.which(n))), "") for name in names]
    missing = [name for name, path in zip(names, found, strict=True) if not path]
    need(not missing, f"not installed: {', '.join(missing)} ({install})")
    return found
