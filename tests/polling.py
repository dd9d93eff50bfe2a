"""The one way tests wait: poll a condition until a deadline, never sleep a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], seconds: float, what: str,
             on_timeout: Callable[[], str] | None = None, step: float = 0.2) -> T:
    """Call `predicate` every `step` s until it returns something truthy, and return that.

    Past `seconds` the test fails, saying what it waited for (and `on_timeout()`, e.g. the
    tail of a worker's log).
    """
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f"\n{on_timeout()}" if on_timeout else ""
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}{extra}")
        time.sleep(step)
