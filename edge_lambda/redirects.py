"""Redirect domains: which redirect items the edge may answer, and the answer itself.

A redirect domain's item carries `redirectTo` (a bare hostname, never a URL) and
`redirectCode` (301 or 308). The edge answers such a host itself, on either trigger and
without contacting the origin, but only when the item vouches for a safe target: a
normalized hostname other than the host itself, off the platform domain, whose own item
is active for the SAME workspace and is not itself a redirect (no chains, no loops). Any
other redirect item serves its workspace as a plain mapping, so a bad or tampered item is
never an open redirect. The target is looked up (and cached) when the redirect host's
item is read (`handler._redirect_for`); the visitor's next request is usually for that
target anyway. docs/redirects.md has the whole feature.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

# edge_lambda.redirects in the repository, `redirects` at the zip's root (see handler.py).
if TYPE_CHECKING or __package__:
    from .config import Settings
    from .hosts import normalize_host
else:
    from config import Settings
    from hosts import normalize_host


class Redirect(NamedTuple):
    """A validated redirect, cached in place of a workspace slug."""

    target: str
    code: int
    workspace: str


_REDIRECT_WORDS: Final = {301: "Moved Permanently", 308: "Permanent Redirect"}
# Everything outside RFC 3986's unreserved, sub-delims, ":" "@" "/" and "%" is escaped in
# the Location, so a path cannot end the header or add a fragment; "%" is kept so
# characters the viewer sent encoded stay exactly as they were.
_LOCATION_UNSAFE: Final = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]")
_QUERY_UNSAFE: Final = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/%?]")


class Chain:
    """Marker: the target's item is itself a redirect."""


class Unvouched(str):
    """The workspace of a redirect item that failed validation: served like any mapping,
    but (cached) it is still a redirect item, so never a valid target for another one."""

    __slots__ = ()


def redirect_target(
    host: str, item: Mapping[str, Any], settings: Settings
) -> tuple[str, int] | None:
    """(target, code) that `host`'s redirect item asks for, or None when the item itself
    is unusable: no target or code, a target that is not a normalized hostname, the host
    itself or a platform host. Whether the target vouches back is the caller's lookup."""
    target = item.get("redirectTo")
    target = target.get("S") if isinstance(target, dict) else None
    code = item.get("redirectCode")
    code = code.get("N") if isinstance(code, dict) else None
    if (
        not isinstance(target, str)
        or code not in ("301", "308")
        or normalize_host(target) != target
        or target == host
        or target == settings.platform_domain
        or target.endswith(settings.platform_suffix)
    ):
        return None
    return target, int(code)


def _escaped(text: str, unsafe: re.Pattern[str]) -> str:
    return unsafe.sub(lambda m: urllib.parse.quote(m.group(), safe="", errors="replace"), text)


def redirect_response(
    request: Mapping[str, Any], redirect: Redirect, settings: Settings
) -> dict[str, Any]:
    """The redirect to `https://<target><uri>[?<querystring>]`, path and query kept."""
    uri = request.get("uri") or "/"
    if not uri.startswith("/"):
        uri = "/" + uri
    location = "https://" + redirect.target + _escaped(uri, _LOCATION_UNSAFE)
    query = request.get("querystring")
    if query:
        location += "?" + _escaped(query, _QUERY_UNSAFE)
    return {
        "status": str(redirect.code),
        "statusDescription": _REDIRECT_WORDS[redirect.code],
        "headers": {
            "location": [{"key": "Location", "value": location}],
            # Browsers keep a permanent redirect with no max-age for a very long time;
            # this bounds how long a removed redirect outlives its item.
            "cache-control": [
                {"key": "Cache-Control", "value": f"public, max-age={int(settings.positive_ttl)}"}
            ],
        },
    }
