"""The www/apex pair through the whole local stack (docs/redirects.md), over HTTP only.

Registered in one request with `include_www`, both records get their DNS at the local DNS
server, both go live through beat and the worker, and the edge proxy (the real edge function
on moto's DynamoDB) then serves the primary and answers the other with the redirect.
The stack is the one tests/e2e/test_end_to_end.py starts, with apex domains enabled.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e import test_end_to_end as _e2e
from tests.e2e.test_end_to_end import (
    ACTIVE_TIMEOUT,
    ROOT,
    RunningStack,
    _create_records,
    http,
)
from tests.polling import wait_for

# The same stack (and its database) as the end-to-end test, as fixtures of this module.
stack = _e2e.stack
e2e_database = _e2e.e2e_database

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _apex_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    # Read by the stack fixture from the environment: the connection group's anycast IP,
    # which the local emulator treats as CloudFront's (the edge proxy's address).
    monkeypatch.setenv("VEDOMAINS_CDN_APEX_IPS", "127.0.0.1")


def _raw_get(base: str, host: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """One GET through the edge proxy, the request-target sent byte for byte, no following."""
    parts = urlsplit(base)
    conn = HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=15)
    try:
        conn.request("GET", target, headers={"Host": host, "Accept": "application/json"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_pair_from_registration_to_both_routes(stack: RunningStack) -> None:
    urls = stack.urls
    apex = f"studio-{uuid.uuid4().hex[:8]}.com"
    www = f"www.{apex}"
    made = subprocess.run(
        [sys.executable, "-m", "localdev.bootstrap", "member", "--workspace", "e2e-pair",
         "--username", "e2e-pair-owner"],
        cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=120, check=True)
    token = json.loads(made.stdout.splitlines()[-1])["token"]

    # One request, both records, DNS records for both in the answer.
    status, body, _ = http("POST", urls["api"], token=token,
                           body={"hostname": www, "workspace": "e2e-pair", "include_www": True})
    assert status == 201, body
    assert body["hostname"] == www and body["redirects"] == [apex]
    pair = body["pair"]
    assert (pair["hostname"], pair["redirect_to"], pair["redirect_code"]) == (apex, www, 308)
    assert [(r["type"], r["value"]) for r in pair["dns_records"]
            if r["purpose"] == "routing"] == [("A", "127.0.0.1")]
    _create_records(urls, [r for r in body["dns_records"] + pair["dns_records"]
                           if r["purpose"] == "routing"])

    def both_active() -> dict[str, Any] | None:
        _, primary, _ = http("GET", f"{urls['api']}{www}/", token=token)
        _, redirect, _ = http("GET", f"{urls['api']}{apex}/", token=token)
        done = primary["status"] == redirect["status"] == "active"
        return redirect if done and redirect["redirect_active"] else None

    redirect = wait_for(both_active, 2 * ACTIVE_TIMEOUT, "both records to turn active", step=0.5)
    assert redirect["redirect_to"] == www

    # The primary serves the workspace through the edge.
    def primary_served() -> dict[str, Any] | None:
        code, _, raw = _raw_get(urls["edge"], www, "/gallery/?format=json")
        return json.loads(raw) if code == 200 else None

    seen = wait_for(primary_served, 30, "the edge to serve the primary", step=0.5)
    assert seen["workspace"] == "e2e-pair" and seen["host"] == www

    # The apex is answered by the edge itself: path, query and encoded characters kept.
    target = "/albums/caf%C3%A9/?page=2&q=a%20b"

    def redirected() -> dict[str, str] | None:
        code, headers, _ = _raw_get(urls["edge"], apex, target)
        return headers if code == 308 else None

    headers = wait_for(redirected, 30, "the edge to answer the apex with the redirect",
                       step=0.5)
    assert headers["location"] == f"https://{www}{target}"
    _, log, _ = http("GET", f"{urls['origin']}__origin/requests")
    assert "/albums/caf%C3%A9/" not in [r["path"] for r in log["requests"]]

    # Removing the primary is refused while the apex redirects to it, then takes both.
    status, refused, _ = http("DELETE", f"{urls['api']}{www}/", token=token)
    assert status == 409 and refused["error"]["code"] == "has_redirects", refused
    status, removed, _ = http("DELETE", f"{urls['api']}{www}/?remove_redirects=true",
                              token=token)
    assert status == 200 and removed["status"] == "removed", removed
    _, gone, _ = http("GET", f"{urls['api']}?status=removed", token=token)
    assert {d["hostname"] for d in gone["results"]} >= {www, apex}
