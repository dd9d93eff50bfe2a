"""Sentry: on only with a DSN, personal data and secrets scrubbed; no network.

Each case runs in a fresh interpreter: sentry_sdk.init patches Django and Celery process-wide,
which must not leak into the rest of the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EMAIL = "owner.person@client-example.com"
DRF_TOKEN = "0123456789abcdef0123456789abcdef01234567"
WEBHOOK_SECRET = "whsec_c2VudHJ5LXRlc3Qtc2VjcmV0LXZhbHVlLTEyMzQ1Ng"
# Nothing listens there: if anything tried to send, it would fail, not reach a server.
DEAD_DSN = "http://public@127.0.0.1:9/1"


def _python(code: str, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "DJANGO_"))}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**env, "DJANGO_SETTINGS_MODULE": "vedomains_site.settings", "DJANGO_DEBUG": "true",
             "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}", **extra})


STATE = """
import django, json, sentry_sdk
django.setup()
client = sentry_sdk.get_client()
print(json.dumps({"active": client.is_active(),
                  "integrations": sorted(getattr(client, "integrations", {}) or {}),
                  "pii": client.options.get("send_default_pii"),
                  "locals": client.options.get("include_local_variables")}))
"""


def test_nothing_is_initialised_without_a_dsn(tmp_path: Path) -> None:
    out = _python(STATE, tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["active"] is False


def test_a_dsn_turns_on_django_and_celery_reporting_without_personal_data(
    tmp_path: Path,
) -> None:
    out = _python(STATE, tmp_path, SENTRY_DSN=DEAD_DSN)
    assert out.returncode == 0, out.stderr
    state = json.loads(out.stdout.splitlines()[-1])
    assert state["active"] is True
    assert {"django", "celery", "logging"} <= set(state["integrations"])
    assert state["pii"] is False and state["locals"] is False


BOOM_URLS = f'''
import logging
from django.http import HttpResponse
from django.urls import path

def boom(request):
    owner_email = "{EMAIL}"
    token = "{DRF_TOKEN}"
    logging.getLogger("vedomains.test").info("looked up %s with Token %s", owner_email, token)
    raise RuntimeError(f"delivery for {{owner_email}} failed; secret {WEBHOOK_SECRET}, "
                       f"token={{token}}")

urlpatterns = [path("boom", boom)]
'''

CAPTURE = f"""
import django, json
django.setup()
from sentry_sdk.transport import Transport
from django.test import Client
from django.test.utils import override_settings
from vedomains_site.observability import sentry

events = []

class Capture(Transport):
    def capture_envelope(self, envelope):
        for item in envelope.items:
            if item.type == "event":
                events.append(item.payload.json)

sentry.init(dsn="{DEAD_DSN}", environment="test", release="r1", traces_sample_rate=0.0,
            transport=Capture)
with override_settings(ROOT_URLCONF="boom_urls", ALLOWED_HOSTS=["testserver"]):
    response = Client(raise_request_exception=False).get(
        "/boom?email={EMAIL}", HTTP_AUTHORIZATION="Token {DRF_TOKEN}",
        HTTP_COOKIE="sessionid=abcdef123456; csrftoken=zyxw98765",
        HTTP_X_FORWARDED_FOR="203.0.113.9")
import sentry_sdk
sentry_sdk.flush(timeout=5)
print("STATUS", response.status_code)
print("EVENTS", json.dumps(events))
"""


def test_an_error_event_is_captured_with_emails_tokens_and_secrets_scrubbed(
    tmp_path: Path,
) -> None:
    (tmp_path / "boom_urls.py").write_text(BOOM_URLS)
    out = _python(CAPTURE, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "STATUS 500" in out.stdout
    events = json.loads(out.stdout.split("EVENTS ", 1)[1])
    assert len(events) == 1, events
    event = events[0]
    text = json.dumps(event)
    # It is the real error, from the Django integration, with its breadcrumb...
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert "delivery for [redacted] failed" in event["exception"]["values"][-1]["value"]
    assert any("looked up" in c.get("message", "")
               for c in event.get("breadcrumbs", {}).get("values", []))
    # ...and nothing personal or secret survives anywhere in it.
    for secret in (EMAIL, DRF_TOKEN, WEBHOOK_SECRET, "abcdef123456", "zyxw98765",
                   "203.0.113.9"):
        assert secret not in text, secret
    assert "ip_address" not in json.dumps(event.get("user", {}))
