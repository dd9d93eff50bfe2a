"""A test that needs something this machine lacks: skipped locally, a failure under CI=true.

CI must run every test; a skip there would hide a PostgreSQL-only test that never ran
(STYLE: "A test that needs something missing fails under CI=true").
"""

from __future__ import annotations

import os

import pytest
from django.db import connection


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def need(ok: bool, reason: str) -> None:
    if ok:
        return
    if on_ci():
        pytest.fail(f"{reason} (CI=true: a test that cannot run fails)")
    pytest.skip(reason)


def need_postgresql(why: str) -> None:
    need(connection.vendor == "postgresql",
         f"PostgreSQL only ({why}); set DATABASE_URL=postgres://...")
