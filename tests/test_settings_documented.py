"""Every environment variable settings.py reads is documented in .env.example."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.test_settings_defaults import settings_sources

ROOT = Path(__file__).resolve().parent.parent
# Set by pytest-xdist or by the test harness itself, not by operators.
INTERNAL = {"PYTEST_XDIST_WORKER", "VEDOMAINS_TEST_BROKER_URL", "VEDOMAINS_TEST_MODE"}


def test_env_example_documents_every_setting() -> None:
    source = "\n".join(path.read_text() for path in settings_sources())
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z0-9_]+)"', source)) - INTERNAL
    documented = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "no env reads found: the pattern no longer matches settings.py"
    assert sorted(read - documented) == [], "add these to .env.example"
    assert sorted(documented - read) == [], ".env.example names settings nobody reads"


def test_the_documented_values_load(tmp_path: Path) -> None:
    """A copy of .env.example (plus a secret) is a working configuration."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("VEDOMAINS_", "DJANGO_"))}
    env.pop("DATABASE_URL", None)
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    env["DJANGO_SECRET_KEY"] = "x" * 50
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.DATABASES['default']['ENGINE'], s.VEDOMAINS_CNAME_TARGET, "
            "s.VEDOMAINS_DNS_NAMESERVERS, s.VEDOMAINS_PLAN_LIMITS['pro'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60,
                         env={**env, "DJANGO_SETTINGS_MODULE": "vedomains_site.settings",
                              "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[:2] == ["django.db.backends.sqlite3", "domain.ve.ai"]
    assert out.stdout.strip().endswith("3")


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("VEDOMAINS_", "DJANGO_"))}
    out = subprocess.run([sys.executable, "-c", "import vedomains_site.settings"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={**env, "PYTHONPATH": str(ROOT), "DJANGO_DEBUG": "false"})
    assert out.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in out.stderr


_DUMP_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({k: repr(getattr(settings, k)) for k in dir(settings) if k.isupper()}))
"""


def _settings_with(env_values: dict[str, str], tmp_path: Path) -> dict[str, str]:
    import os
    import subprocess
    import sys

    documented = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    # Nothing from this shell may leak in: only the values under test.
    env = {k: v for k, v in os.environ.items() if k not in documented
           and not k.startswith(("VEDOMAINS_", "DJANGO_", "PYTEST"))}
    env.update(env_values)
    env.update({"DJANGO_SECRET_KEY": "x" * 50, "DJANGO_SETTINGS_MODULE": "vedomains_site.settings",
                "PYTHONPATH": str(ROOT)})
    out = subprocess.run([sys.executable, "-c", _DUMP_SETTINGS], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    # The SQLite test database is named after the process: not a setting's value.
    return {k: re.sub(r"test-\d+\.sqlite3", "test-PID.sqlite3", v)
            for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def test_every_documented_value_is_the_default(tmp_path: Path) -> None:
    """.env.example says "the value shown is the default": copying it must change nothing
    (it switched SMTP to port 25 without TLS)."""
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    values.pop("DJANGO_SECRET_KEY")  # REQUIRED in production: it has no default to show
    # Production refuses the built-in per-process cache, so the example shows the shared
    # Redis a deployment must set; both runs are given it.
    cache = {"CACHE_URL": values["CACHE_URL"]}
    defaults = _settings_with(cache, tmp_path)
    documented = _settings_with(values, tmp_path)
    differ = {k: (defaults.get(k), documented.get(k))
              for k in set(defaults) | set(documented) if defaults.get(k) != documented.get(k)}
    assert differ == {}, f"{differ}: these .env.example values are not the settings' defaults"
