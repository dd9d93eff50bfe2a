"""Headers a viewer may not send: the ones a server reads as `workspace-id` or as the host.

The edge removes them from every request, before anything reads it (`handler.route`), so
nothing a viewer sends can choose the workspace at the origin (edge_lambda/README.md,
"Decisions").
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any, Final


def _spellings(*words: str) -> set[str]:
    """Every way of joining `words` with "-", "_" or nothing.

    CGI and WSGI servers turn both "-" and "_" into "_" (HTTP_WORKSPACE_ID), and some
    frameworks ignore separators, so each of these reads as the same header at the origin.
    """
    joined: set[str] = set()
    for separators in itertools.product(("-", "_", ""), repeat=len(words) - 1):
        name = words[0]
        for separator, word in zip(separators, words[1:], strict=True):
            name += separator + word
        joined.add(name)
    return joined


# Headers a viewer could use to impersonate a workspace, or the routed host at the origin
# (frameworks take the request's host from X-Forwarded-Host, X-Original-Host, X-Host,
# Forwarded: host=...). Removed on every path, before anything else reads the request.
# CloudFront lowercases the keys of `request.headers`, so case needs no variants.
_SPOOFABLE_HEADERS: Final = frozenset().union(
    _spellings("workspace", "id"),
    _spellings("x", "workspace", "id"),
    _spellings("x", "forwarded", "host"),
    _spellings("x", "forwarded", "server"),
    _spellings("x", "original", "host"),
    _spellings("x", "host"),
    _spellings("x", "http", "host", "override"),
    {"forwarded"},
)
STRIPPED_HEADERS: Final = tuple(sorted(_SPOOFABLE_HEADERS))
# ...and every other spelling: some origin stacks fold any non-alphanumeric character of a
# name ("workspace.id", "workspace~id", "x.forwarded.host"), so names are compared with
# every separator removed. Names found harmless are remembered (they repeat from request to
# request), so the usual request costs one set difference, as cheap as the old lookup.
_NOT_ALNUM: Final = re.compile(r"[^a-z0-9]+")
_SPOOFABLE_FOLDED: Final = frozenset(_NOT_ALNUM.sub("", n) for n in _SPOOFABLE_HEADERS)
_HARMLESS_NAMES_MAX: Final = 4096
_harmless_names: set[str] = set()


def is_spoofable_header(name: str) -> bool:
    if _NOT_ALNUM.sub("", name.lower()) in _SPOOFABLE_FOLDED:
        return True
    if len(_harmless_names) < _HARMLESS_NAMES_MAX:  # bounded: names are viewer input
        _harmless_names.add(name)
    return False


def spoofed_headers(headers: Mapping[str, Any]) -> list[str]:
    """The names in `headers` that read, at some origin, as one the edge sets."""
    unknown = headers.keys() - _harmless_names
    return [name for name in unknown if is_spoofable_header(name)] if unknown else []
