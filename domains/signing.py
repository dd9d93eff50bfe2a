"""The one request-signing scheme, `vedomains-hmac-sha256-v2`, for both directions.

The main app signs its sync API requests with it (verified in `api.authentication`)
and vedomains signs its webhook deliveries with it (`notifications.sending`, next to the
older `v1=` value receivers may already check). The string to sign is a canonical request,
six lines: the scheme, the timestamp, the method, the canonical path, the canonical query and
the body's SHA-256. The path and the query are separate lines, each decoded and re-encoded
one way, so a signature made for the id `ws?x` cannot verify for the id `ws` with the query
`x`. docs/examples/veai_sync_client.py implements the same functions for the main app; the
tests sign with it, so the two cannot drift apart.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, quote, unquote, urlsplit

SCHEME = "vedomains-hmac-sha256-v2"
HEADER = "X-Vedomains-Signature"
_UNRESERVED = "-._~"


def canonical_path(path: str, *, decoded: bool = False) -> str:
    """Decoded once, then every byte but unreserved ones and `/` percent-encoded.

    `decoded`: the path was already decoded once (Django's `request.path`, decoded by the
    WSGI server): decoding it again would turn an id's literal `%41` into `A`, and the
    signature would never match the sender's.
    """
    return quote(path if decoded else unquote(path), safe="/" + _UNRESERVED)


def canonical_query(query: str) -> str:
    """Parameters decoded, sorted by name then value, re-encoded: `a=1&b=&b=2`."""
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{quote(k, safe=_UNRESERVED)}={quote(v, safe=_UNRESERVED)}"
                    for k, v in pairs)


def string_to_sign(timestamp: int, method: str, path: str, query: str, body_sha256: str,
                   *, path_decoded: bool = False) -> str:
    return "\n".join([SCHEME, str(timestamp), method.upper(),
                      canonical_path(path, decoded=path_decoded), canonical_query(query),
                      body_sha256])


def v2_digest(secret: str, timestamp: int, method: str, path: str, query: str,
              body: bytes | str, *, path_decoded: bool = False) -> str:
    """The hex HMAC-SHA256 of the canonical request; `body` is the bytes sent, or their
    SHA-256 in hex (a streamed body is hashed as it is read). `path_decoded`: see
    `canonical_path` (the query string is never decoded by the server, so it always is here).
    """
    body_sha256 = body if isinstance(body, str) else hashlib.sha256(body).hexdigest()
    message = string_to_sign(timestamp, method, path, query, body_sha256,
                             path_decoded=path_decoded)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def v2_digest_for_url(secret: str, timestamp: int, method: str, url: str, body: bytes) -> str:
    parts = urlsplit(url)
    return v2_digest(secret, timestamp, method, parts.path or "/", parts.query, body)
