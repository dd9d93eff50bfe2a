"""pytest plugin (loaded by `-p tests.testmode` in pyproject's addopts): test mode on.

Settings enter test mode only from VEDOMAINS_TEST_MODE, never because pytest
happens to be imported. This runs before pytest-django loads the settings; once they are
loaded the variable is removed again, so the processes tests start (Celery workers, the
local stack) run as they would outside the suite, as before.
"""

from __future__ import annotations

import os

import pytest

os.environ["VEDOMAINS_TEST_MODE"] = "true"


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    os.environ.pop("VEDOMAINS_TEST_MODE", None)
