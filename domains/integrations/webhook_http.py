"""Outbound webhook POSTs with the standard library: explicit timeout, no redirects.

Redirects are never followed: a receiver that answers 3xx gets a failed attempt naming the
Location, so a compromised or misconfigured receiver cannot bounce our signed requests (and
their bodies) to another host. Environment proxies are not used either: the receiver is the
ve.ai app, reached directly, and a stray HTTP(S)_PROXY in a worker must not reroute it.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException, HTTPResponse
from typing import Any
from urllib.parse import urlsplit

from domains.integrations.errors import IntegrationError

EXCERPT_BYTES = 500
ALLOWED_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True)
class HttpResult:
    status_code: int
    latency_ms: int
    excerpt: str
    location: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        # Returning None makes urllib hand the 3xx back as an HTTPError we record.
        return None


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def check_url(url: str) -> None:
    """Refuse anything but an absolute http(s) URL with a host (permanent: retrying won't fix)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        raise IntegrationError(f"Refusing webhook URL {url!r}: only http(s) URLs are allowed.",
                               permanent=True, code="bad_url")


def _excerpt(raw: bytes) -> str:
    return raw[:EXCERPT_BYTES].decode("utf-8", "replace")


def post_json(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> HttpResult:
    """POST `body`; any HTTP answer is a result, a network failure a transient error."""
    check_url(url)
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    started = time.monotonic()
    try:
        response: HTTPResponse = _opener.open(request, timeout=timeout)
        with response:
            raw = response.read(EXCERPT_BYTES)
            status = response.status
        return HttpResult(status, _elapsed_ms(started), _excerpt(raw))
    except urllib.error.HTTPError as exc:
        raw = b""
        if exc.fp is not None:
            try:
                raw = exc.read(EXCERPT_BYTES)
            except (OSError, HTTPException):
                raw = b""  # the status code is the result; a cut-off body does not matter
            finally:
                exc.fp.close()
        return HttpResult(exc.code, _elapsed_ms(started), _excerpt(raw),
                          location=exc.headers.get("Location", "") if exc.headers else "")
    except (urllib.error.URLError, HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise IntegrationError(f"POST {urlsplit(url).netloc} failed: {reason}",
                               permanent=False, code="network") from exc


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
