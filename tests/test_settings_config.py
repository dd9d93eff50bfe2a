"""The VEDOMAINS_* settings' conventions (vedomains_site/config/, docs/settings.md): each is
named as its variable, every duration is seconds, each is documented with an operator
verdict, and a value start-up cannot use stops it with the variable's name."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings

from tests.test_settings_defaults import settings_sources
from vedomains_site.config.retired import RETIRED

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "vedomains_site" / "config"


def _config_settings() -> dict[str, list[str]]:
    """Each VEDOMAINS_* assignment in vedomains_site/config/ -> the variables it reads."""
    found: dict[str, list[str]] = {}
    for path in settings_sources()[1:]:
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and node.target.id.startswith("VEDOMAINS_")):
                found[node.target.id] = [
                    call.args[0].value for call in ast.walk(node.value)
                    if isinstance(call, ast.Call) and call.args
                    and isinstance(call.args[0], ast.Constant)
                    and str(call.args[0].value).startswith("VEDOMAINS_")]
    return found


def test_each_setting_is_named_as_its_variable() -> None:
    found = _config_settings()
    assert len(found) > 80
    assert {name: read for name, read in found.items() if read != [name]} == {}


def test_settings_py_reads_no_vedomains_setting_itself() -> None:
    """All of them live in their subsystem's module (the API's throttle rates and the test
    harness's switches, which have no attribute, excepted)."""
    source = (ROOT / "vedomains_site" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"(VEDOMAINS_[A-Z0-9_]+)"', source))
    assert {n for n in read if not n.startswith(("VEDOMAINS_THROTTLE_", "VEDOMAINS_TEST_"))} \
        == set()


def test_every_duration_is_a_number_of_seconds() -> None:
    values = {name: getattr(settings, name) for name in _config_settings()}
    assert [n for n, v in values.items() if isinstance(v, timedelta)] == []
    # A name that says a unit says seconds.
    assert [n for n in values if re.search(r"_(HOURS|MINUTES|DAYS|MS)$", n)] == []
    # A duration named for what it is (the ten renamed by this convention) says its unit.
    assert [n for n in values
            if re.search(r"_(TIMEOUT|TTL|WAIT|INTERVAL|WINDOW|LEASE|GRACE|RECHECK)$", n)] == []


def test_docs_give_each_setting_a_type_a_default_and_an_operator_verdict() -> None:
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `(VEDOMAINS_\w+)` \|([^\n]*)$",
                                             (ROOT / "docs" / "settings.md").read_text(),
                                             re.M)}
    names = set(_config_settings())
    assert sorted(names - set(rows)) == [], "add these to docs/settings.md"
    assert sorted(set(rows) - names - set(RETIRED)) == [], "docs/settings.md names these"
    assert [n for n in names if not re.search(r"\| (yes|no)\b[^|]*\|$", rows[n])] == []


def test_no_retired_variable_is_still_read() -> None:
    read = set(_config_settings())
    assert sorted(read & set(RETIRED)) == []
    example = (ROOT / ".env.example").read_text()
    assert [n for n in RETIRED if re.search(rf"^{n}=", example, re.M)] == []


def _start(extra: dict[str, str], tmp_path: Path, show: tuple[str, ...] = ()
           ) -> subprocess.CompletedProcess[str]:
    """Django set up in a fresh process with `extra` in its environment; prints `show`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VEDOMAINS_", "DJANGO_"))}
    printed = "".join(f"; print(settings.{name})" for name in show)
    return subprocess.run(
        [sys.executable, "-c",
         f"import django; django.setup(); from django.conf import settings{printed}"],
        cwd=tmp_path,
        capture_output=True, text=True, timeout=60,
        env={**env, "PYTHONPATH": str(ROOT), "DJANGO_DEBUG": "true",
             "DJANGO_SETTINGS_MODULE": "vedomains_site.settings", **extra})


@pytest.mark.parametrize(("extra", "says"), [
    ({"VEDOMAINS_PENDING_TIMEOUT_HOURS": "24"},
     "VEDOMAINS_PENDING_TIMEOUT_HOURS was renamed VEDOMAINS_PENDING_TIMEOUT_SECONDS, in "
     "seconds: multiply the value by 3600"),
    ({"VEDOMAINS_DNS_TIMEOUT": "2"},
     "VEDOMAINS_DNS_TIMEOUT was renamed VEDOMAINS_DNS_TIMEOUT_SECONDS"),
    ({"VEDOMAINS_DISPATCH_LIMIT": "5"},
     "VEDOMAINS_DISPATCH_LIMIT is no longer a setting: a constant in workflow/schedule.py"),
    ({"VEDOMAINS_DNS_CONCURRENCY": "lots"},
     "VEDOMAINS_DNS_CONCURRENCY is 'lots', which is not a whole number."),
    ({"VEDOMAINS_DNS_TIMEOUT_SECONDS": "2s"},
     "VEDOMAINS_DNS_TIMEOUT_SECONDS is '2s', which is not a number."),
    ({"VEDOMAINS_DNS_TIMEOUT_SECONDS": "inf"},
     "VEDOMAINS_DNS_TIMEOUT_SECONDS is 'inf', which is not a finite number."),
    ({"VEDOMAINS_EDGE_REWRITE_ORIGIN": "maybe"},
     "VEDOMAINS_EDGE_REWRITE_ORIGIN is 'maybe', which is not true or false."),
    ({"VEDOMAINS_PLAN_LIMITS": "{pro: 3}"}, "VEDOMAINS_PLAN_LIMITS cannot be read"),
])
def test_a_value_start_up_cannot_use_stops_it_naming_the_variable(
        extra: dict[str, str], says: str, tmp_path: Path) -> None:
    out = _start(extra, tmp_path)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: ")
    assert says in last, last


def test_the_new_names_start(tmp_path: Path) -> None:
    out = _start({"VEDOMAINS_PENDING_TIMEOUT_SECONDS": "86400",
                  "VEDOMAINS_EDGE_REWRITE_ORIGIN": "yes"}, tmp_path,
                 show=("VEDOMAINS_PENDING_TIMEOUT_SECONDS", "VEDOMAINS_EDGE_REWRITE_ORIGIN"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["86400", "True"]


@pytest.mark.parametrize(("raw", "read"), [("1e3", 1000.0), ("6.048e5", 604800.0),
                                           ("2.5", 2.5), ("-1", -1.0)])
def test_a_number_in_any_float_spelling_is_read_as_written(raw: str, read: float,
                                                           tmp_path: Path) -> None:
    out = _start({"VEDOMAINS_PLAN_GRACE_SECONDS": raw}, tmp_path,
                 show=("VEDOMAINS_PLAN_GRACE_SECONDS",))
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout) == read
