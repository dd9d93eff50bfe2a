"""Reference client for vedomains' sync API (signature scheme `vedomains-hmac-sha256-v2`).

Standard library only: copy it into the main app, or port it (about 40 lines matter). The
tests sign every sync request with this file, so it cannot drift from the server
(tests/veai/helpers.py loads it). docs/veai-integration.md describes the scheme.

    client = SyncClient("https://domains.ve.ai", secret)
    client.request("PUT", "/api/service/workspaces/ws_123",
                   {"slug": "acme", "name": "Acme", "plan": "pro", "version": 7})
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

SCHEME = "vedomains-hmac-sha256-v2"
HEADER = "X-Vedomains-Signature"
# RFC 3986 unreserved characters: never percent-encoded in the canonical form.
_SAFE = "-._~"


def canonical_path(path: str) -> str:
    """The path decoded once, then every byte but unreserved ones and `/` percent-encoded.

    So `ws%3Fx` and an id `ws?x` (encoded by any client) sign the same, and differently from
    the path `ws` with the query `x`.
    """
    return quote(unquote(path), safe="/" + _SAFE)


def canonical_query(query: str) -> str:
    """Parameters decoded, sorted by name then value, re-encoded: `a=1&b=&b=2`."""
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{quote(k, safe=_SAFE)}={quote(v, safe=_SAFE)}" for k, v in pairs)


def string_to_sign(timestamp: int, method: str, path: str, query: str, body: bytes) -> str:
    """Six lines: the scheme, the timestamp, the method, the path, the query, the body hash."""
    return "\n".join([SCHEME, str(timestamp), method.upper(), canonical_path(path),
                      canonical_query(query), hashlib.sha256(body).hexdigest()])


def sign(secret: str, timestamp: int, method: str, url_or_path: str, body: bytes) -> str:
    """The header value: `t=<unix seconds>,v2=<hex HMAC-SHA256(secret, string_to_sign)>`."""
    parts = urlsplit(url_or_path)
    message = string_to_sign(timestamp, method, parts.path, parts.query, body)
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v2={digest}"


class SyncClient:
    def __init__(self, base_url: str, secret: str, *, timeout: float = 10.0) -> None:
        self.base_url, self.secret, self.timeout = base_url.rstrip("/"), secret, timeout

    def request(self, method: str, path: str, payload: Any = None, *,
                body: bytes | None = None, content_type: str = "application/json"
                ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body). `path` may carry a query; ids are quoted by the caller."""
        if body is None:
            body = b"" if payload is None else json.dumps(payload).encode()
        headers = {HEADER: sign(self.secret, int(time.time()), method, path, body)}
        if body:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base_url + path, data=body or None,
                                         method=method.upper(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()
