"""check_decisions.next_interval directly: the fast window, the base, growth with age, the cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domains.models import CustomDomain
from workflow.check_decisions import next_interval

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _intervals(settings: Any) -> None:
    settings.VEDOMAINS_FAST_CHECK_SECONDS = 10
    settings.VEDOMAINS_CHECK_INTERVAL_SECONDS = 300
    settings.VEDOMAINS_MAX_CHECK_INTERVAL_SECONDS = 6 * 3600


def domain(age: timedelta, fast_for: timedelta | None = None) -> CustomDomain:
    # Unsaved: next_interval reads only these two fields.
    return CustomDomain(created_at=NOW - age,
                        fast_checks_until=NOW + fast_for if fast_for is not None else None)


def test_inside_the_fast_window_every_few_seconds() -> None:
    assert next_interval(domain(timedelta(days=30), fast_for=timedelta(minutes=1)),
                         NOW) == timedelta(seconds=10)


def test_the_fast_window_ends_at_its_instant() -> None:
    # now == fast_checks_until is outside the window (a strict "<").
    assert next_interval(domain(timedelta(minutes=1), fast_for=timedelta(0)),
                         NOW) == timedelta(minutes=5)


def test_a_young_domain_gets_the_base_interval() -> None:
    # A twelfth of 30 minutes is 2.5 minutes: below the base, so the base.
    assert next_interval(domain(timedelta(minutes=30)), NOW) == timedelta(minutes=5)


def test_the_interval_grows_with_age() -> None:
    assert next_interval(domain(timedelta(hours=12)), NOW) == timedelta(hours=1)
    assert next_interval(domain(timedelta(hours=24)), NOW) == timedelta(hours=2)


def test_the_interval_stops_at_the_maximum() -> None:
    assert next_interval(domain(timedelta(days=3)), NOW) == timedelta(hours=6)
    assert next_interval(domain(timedelta(days=300)), NOW) == timedelta(hours=6)


def test_a_clock_behind_creation_still_gets_the_base() -> None:
    # created_at in the future (clock skew between hosts): a negative age never shortens it.
    assert next_interval(domain(-timedelta(minutes=10)), NOW) == timedelta(minutes=5)
