"""Host names: the canonical form of a viewer's Host, and the platform's own hosts."""

from __future__ import annotations

import re
import stringprep
from typing import TYPE_CHECKING, Final, TypeGuard

if TYPE_CHECKING:
    from .config import Settings

_LABEL_RE: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_HOST_RE: Final = re.compile(
    r"(?=[a-z0-9.-]{1,253}\Z)"  # total length, allowed characters
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"  # one or more labels and a dot
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z"  # last label (a TLD needs at least one dot)
)
# IDNA 2003 (stdlib) and IDNA 2008 (what the Django side registers with) map these four
# differently, e.g. "ß" -> "ss" versus "xn--zca". Refusing them keeps one host from ever
# resolving to two spellings.
_IDNA_DEVIATIONS: Final = frozenset("\u00df\u03c2\u200c\u200d")
# The full stops IDNA treats as label separators, mapped to "." before the port and
# trailing-dot handling so "bücher.de。" and "bücher.de." normalize alike (RFC 3490 3.1).
_IDNA_DOTS: Final = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
# Longer Host values are garbage; refuse them before spending any CPU on them.
_MAX_RAW_HOST: Final = 1024


def normalize_host(raw: object) -> str | None:
    """Return the canonical form of a Host header value, or None for anything unusable.

    Lowercase ASCII (punycode for IDNs), no port, no trailing dot, at least two labels,
    no IP literal. Never raises; `normalize_host(normalize_host(x)) == normalize_host(x)`.
    """
    if not isinstance(raw, str) or not raw or len(raw) > _MAX_RAW_HOST:
        return None
    host = raw.strip().lower()
    if not host.isascii():
        host = host.translate(_IDNA_DOTS)
    if host.startswith("["):  # IPv6 literal, "[::1]:443"
        return None
    if ":" in host:
        host, _, port = host.rpartition(":")
        if (port and not port.isdigit()) or ":" in host:
            return None
    if host.endswith("."):
        host = host[:-1]
    if not host.isascii():
        ascii_host = _to_ascii(host)
        if ascii_host is None:
            return None
        host = ascii_host
    if _HOST_RE.match(host) is None:
        return None
    if host[host.rfind(".") + 1 :].isdigit():  # IPv4 literal: no TLD is numeric
        return None
    return host


def _to_ascii(host: str) -> str | None:
    """Punycode a unicode host with the stdlib IDNA codec; None if it cannot be encoded."""
    if not _IDNA_DEVIATIONS.isdisjoint(host):
        return None
    # The stdlib codec knows Unicode 3.2 and passes newer code points through unmapped,
    # where Django's IDNA 2008 maps or refuses them (U+1DFD0 -> U+0263): refuse them here
    # too, so the edge never looks up a spelling that no record can be stored under.
    if any(stringprep.in_table_a1(c) for c in host):
        return None
    try:
        encoded = host.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return None
    # One trailing dot was already stripped; a second one makes the host invalid.
    return None if encoded.endswith(".") else encoded


def is_dns_label(value: object) -> TypeGuard[str]:
    """True for a lowercase LDH label of 1-63 characters (workspace slugs are these)."""
    return isinstance(value, str) and _LABEL_RE.match(value) is not None


def platform_workspace(host: str, settings: Settings) -> str | None:
    """For a normalized host on the platform domain: its workspace slug, or None.

    Only `<slug>.<platform_domain>` with a single, non-reserved label is a workspace; the
    bare platform domain, reserved labels and deeper names are not.
    """
    if not host.endswith(settings.platform_suffix):
        return None
    slug = host[: -len(settings.platform_suffix)]
    if "." in slug or slug in settings.reserved_labels:
        return None
    return slug
