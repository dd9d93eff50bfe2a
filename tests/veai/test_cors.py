"""CORS for the ve.ai frontend (django-cors-headers), with real preflights over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://app.ve.ai"


def _request(url: str, method: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}


def _preflight(url: str, origin: str, method: str = "POST") -> tuple[int, dict[str, str]]:
    return _request(url, "OPTIONS", {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type",
    })


@pytest.fixture
def cors_server(live_server: Any, settings: Any) -> str:
    settings.CORS_ALLOWED_ORIGINS = ["https://ve.ai", ORIGIN]
    return str(live_server.url)


def test_a_preflight_from_the_frontend_is_allowed(cors_server: str) -> None:
    status, headers = _preflight(f"{cors_server}/api/domains/", ORIGIN)
    assert status == 200
    assert headers["access-control-allow-origin"] == ORIGIN
    allowed_headers = headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert "POST" in headers["access-control-allow-methods"]
    assert "DELETE" in headers["access-control-allow-methods"]
    # Bearer tokens, not cookies: the browser must not send credentials.
    assert "access-control-allow-credentials" not in headers
    status, headers = _preflight(f"{cors_server}/api/domains/gallery.client.com/", ORIGIN,
                                 "DELETE")
    assert headers["access-control-allow-origin"] == ORIGIN


def test_other_origins_get_no_cors_headers(cors_server: str) -> None:
    _, headers = _preflight(f"{cors_server}/api/domains/", "https://evil.example")
    assert "access-control-allow-origin" not in headers


def test_the_sync_api_is_not_open_to_browsers(cors_server: str) -> None:
    _, headers = _preflight(f"{cors_server}/api/service/workspaces/w1", ORIGIN, "PUT")
    assert "access-control-allow-origin" not in headers


def test_an_error_answer_is_readable_by_the_frontend(cors_server: str) -> None:
    # A 401 without CORS headers would reach the page as an opaque network error.
    status, headers = _request(f"{cors_server}/api/domains/", "GET",
                               {"Origin": ORIGIN, "Authorization": "Bearer nope"})
    assert status == 401
    assert headers["access-control-allow-origin"] == ORIGIN


NEW_SETTINGS = [
    "VEDOMAINS_JWT_JWKS_URL", "VEDOMAINS_JWT_PUBLIC_KEY", "VEDOMAINS_JWT_ISSUER",
    "VEDOMAINS_JWT_AUDIENCE", "VEDOMAINS_JWT_ALGORITHMS", "VEDOMAINS_JWT_LEEWAY_SECONDS",
    "VEDOMAINS_JWKS_CACHE_SECONDS", "VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS",
    "VEDOMAINS_JWKS_TIMEOUT_SECONDS", "VEDOMAINS_SERVICE_SECRETS",
    "VEDOMAINS_SERVICE_SIGNATURE_TOLERANCE_SECONDS", "VEDOMAINS_PLAN_GRACE_SECONDS",
    "VEDOMAINS_PLAN_WARNING_SECONDS", "VEDOMAINS_PLAN_ENFORCE_INTERVAL_SECONDS",
    "VEDOMAINS_CORS_ALLOWED_ORIGINS", "CORS_ALLOWED_ORIGINS",
]


def _effective_settings(extra_env: dict[str, str]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VEDOMAINS_", "DJANGO_", "CORS_"))}
    env.pop("DATABASE_URL", None)
    code = ("import json, django; django.setup(); from django.conf import settings as s; "
            f"print(json.dumps({{n: str(getattr(s, n)) for n in {NEW_SETTINGS!r}}}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd="/",
                         # Production settings refuse a per-process cache; none is opened.
                         env={**env, **extra_env, "DJANGO_SECRET_KEY": "x" * 50,
                              "CACHE_URL": "redis://127.0.0.1:6379/1",
                              "DJANGO_SETTINGS_MODULE": "vedomains_site.settings",
                              "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_env_example_gives_the_same_values_as_the_defaults() -> None:
    """The CORS origins (and every other ve.ai setting) documented = the built-in default."""
    documented = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#") and name in NEW_SETTINGS + [
                "VEDOMAINS_PLAN_GRACE_SECONDS", "VEDOMAINS_PLAN_WARNING_SECONDS"]:
            documented[name] = value
    assert documented["VEDOMAINS_CORS_ALLOWED_ORIGINS"] == "https://ve.ai,https://app.ve.ai"
    defaults = _effective_settings({})
    from_example = _effective_settings(documented)
    assert defaults == from_example
    assert defaults["CORS_ALLOWED_ORIGINS"] == "['https://ve.ai', 'https://app.ve.ai']"


def test_the_frontend_can_read_retry_after_location_and_the_request_id(cors_server: str
                                                                        ) -> None:
    """exposed response headers, and its own X-Request-ID allowed."""
    status, headers = _request(f"{cors_server}/api/domains/", "OPTIONS", {
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-request-id"})
    assert status == 200
    assert "x-request-id" in headers["access-control-allow-headers"].lower()
    status, headers = _request(f"{cors_server}/api/domains/", "GET",
                               {"Origin": ORIGIN, "X-Request-ID": "frontend-req-42"})
    assert status == 401
    exposed = {h.strip().lower() for h in headers["access-control-expose-headers"].split(",")}
    assert {"retry-after", "location", "x-request-id"} <= exposed
    assert headers["x-request-id"] == "frontend-req-42"


@pytest.mark.django_db(transaction=True)
def test_a_signed_in_answer_carries_the_cors_headers(cors_server: str) -> None:
    from rest_framework.authtoken.models import Token

    from tests.factories import MembershipFactory

    member = MembershipFactory(workspace__slug="cors-ws")
    token = Token.objects.create(user=member.user).key
    status, headers = _request(f"{cors_server}/api/workspaces/cors-ws/", "GET",
                               {"Origin": ORIGIN, "Authorization": f"Token {token}"})
    assert status == 200
    assert headers["access-control-allow-origin"] == ORIGIN
