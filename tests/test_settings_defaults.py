"""settings.py and .env.example give every setting the same default (.env.example's header
says "the value shown is the default", so a copied .env must change nothing)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Defaults that are not literals in settings.py, or equal in meaning but written differently.
NOT_COMPARED = {
    "DJANGO_STATIC_ROOT": "a path under the checkout (var/static)",
    "VEDOMAINS_TEST_BROKER_URL": "set by the test harness, not operators",
    "PYTEST_XDIST_WORKER": "set by pytest-xdist",
    "DJANGO_SECURE_HSTS_SECONDS": "a year when DJANGO_DEBUG=false, 0 when true",
    "CACHE_URL": "local memory by default, which DJANGO_DEBUG=false refuses: the "
                 "example shows the shared Redis production needs",
    "VEDOMAINS_TEST_MODE": "set by the test suite (tests/testmode.py), not operators",
}


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _is_number(text: str | None) -> bool:
    try:
        float(text or "")
    except ValueError:
        return False
    return True


def settings_sources() -> list[Path]:
    """settings.py and the modules it takes the VEDOMAINS_* settings from (retired.py only
    names variables nobody reads any more)."""
    config = ROOT / "vedomains_site" / "config"
    return [ROOT / "vedomains_site" / "settings.py",
            *sorted(p for p in config.glob("*.py") if p.name not in {"retired.py", "allowed.py"})]


def _defaults() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for node in (n for source in settings_sources()
                 for n in ast.walk(ast.parse(source.read_text()))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "env"
                and node.args and isinstance(node.args[0], ast.Constant)):
            default = {k.arg: k.value for k in node.keywords}.get("default")
            if default is not None and node.args[0].value not in NOT_COMPARED:
                found[node.args[0].value] = ast.literal_eval(default)
    return found


def test_every_default_in_settings_matches_env_example() -> None:
    example = dict(re.findall(r"^([A-Z0-9_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M))
    defaults = _defaults()
    assert len(defaults) > 50, "the pattern no longer finds settings.py's env reads"
    mismatched = {}
    for name, default in defaults.items():
        if name == "VEDOMAINS_PLAN_LIMITS":
            # "{}" merged over the built-in limits: the example shows the merged result.
            continue
        if isinstance(default, dict):
            if json.loads(example.get(name) or "null") != default:
                mismatched[name] = (json.dumps(default), example.get(name))
            continue
        if (isinstance(default, int | float) and not isinstance(default, bool)
                and _is_number(example.get(name))):
            # 10 and 10.0 are one value to env.float: compare numbers, not their spelling.
            if float(example[name]) != float(default):
                mismatched[name] = (_render(default), example.get(name))
            continue
        if _render(default) != example.get(name):
            mismatched[name] = (_render(default), example.get(name))
    assert mismatched == {}, "settings.py default vs .env.example"


def test_plan_limits_example_is_the_built_in_default() -> None:
    example = dict(re.findall(r"^([A-Z0-9_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M))
    assert json.loads(example["VEDOMAINS_PLAN_LIMITS"]) == {
        "free": 0, "pro": 3, "business": 25, "enterprise": 1000}
