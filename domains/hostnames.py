"""Hostname normalization and validation (DESIGN.md, "Hostname rules"), and the plan names
the main app may send (checked by the settings' system checks, which cannot import models).

`normalize_hostname` either returns the canonical form (lowercase ASCII, punycode labels, no
trailing dot) or raises `HostnameError` with a message a customer can act on. It never
raises anything else, whatever it is given.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

import idna
from django.conf import settings
from publicsuffixlist import PublicSuffixList

MAX_HOSTNAME_LENGTH = 253
MAX_LABEL_LENGTH = 63
_LDH_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_FORBIDDEN_CHARS = {
    "/": "a path",
    "?": "a query string",
    "#": "a fragment",
    "@": "user info",
    "\\": "a backslash",
}

# A plan name: what the main app calls it, short and printable (it appears in emails).
PLAN_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,19}$")


class HostnameError(ValueError):
    """The hostname cannot be used; `message` says why, `code` is machine-readable."""

    def __init__(self, message: str, code: str = "invalid_hostname") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    # The list ships inside the package (offline). accept_unknown=False so that a name under
    # an unknown TLD is rejected instead of being treated as its own public suffix.
    return PublicSuffixList(accept_unknown=False)


_CODEPOINT = re.compile(r"Codepoint U\+([0-9A-Fa-f]{4,6})")
_ALLOWED = "Hostnames use letters, digits and hyphens, in labels separated by dots."


def _quoted(text: str, limit: int = 80) -> str:
    return f"'{text[:limit]}\u2026'" if len(text) > limit else f"'{text}'"


def _length_error(host: str) -> HostnameError | None:
    """The hostname's or a label's length over its limit, in words with the limit."""
    if len(host) > MAX_HOSTNAME_LENGTH:
        return HostnameError(f"The hostname is {len(host)} characters long; a hostname may "
                             f"have at most {MAX_HOSTNAME_LENGTH}.")
    for label in host.split("."):
        if len(label) > MAX_LABEL_LENGTH:
            return HostnameError(
                f"The label {_quoted(label, 20)} is {len(label)} characters long; a label "
                f"(the part between two dots) may have at most {MAX_LABEL_LENGTH}.")
    return None


def _to_ascii(text: str) -> str:
    # Plain words before IDNA's own ("Codepoint U+005F not allowed at position 3", "Label
    # too long"), which name neither the character nor the limit.
    if "_" in text:
        raise HostnameError(f"{_quoted(text)}: underscores are not allowed in hostnames; "
                            "use a hyphen instead.")
    if text.isascii() and (error := _length_error(text.rstrip("."))):
        raise error
    try:
        # UTS #46 mapping lowercases and maps compatibility forms before IDNA 2008 checks;
        # std3_rules rejects underscores and other characters no certificate can carry.
        return idna.encode(text, uts46=True, std3_rules=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError, IndexError) as exc:
        raise _idna_error(text, exc) from exc


def _idna_error(text: str, exc: Exception) -> HostnameError:
    found = _CODEPOINT.search(str(exc))
    if found:
        code = int(found.group(1), 16)
        char = chr(code) if code < 0xD800 or code > 0xDFFF else ""
        return HostnameError(f"{_quoted(text)} contains {repr(char) + ' ' if char else ''}"
                             f"(U+{code:04X}), which is not allowed in a hostname. {_ALLOWED}")
    if str(exc) in ("Label too long", "Domain too long"):
        # A Unicode name over the limit once in its ASCII (punycode) form.
        return HostnameError(f"{_quoted(text)} is too long once encoded for DNS: a hostname "
                             f"may have at most {MAX_HOSTNAME_LENGTH} characters and each "
                             f"label at most {MAX_LABEL_LENGTH}.")
    reason = str(exc).rstrip(".")
    reason = f" ({reason[:1].lower()}{reason[1:]})" if reason else ""
    return HostnameError(f"{_quoted(text)} is not a valid hostname{reason}. {_ALLOWED}")


def to_unicode(host: str) -> str:
    """The hostname as a browser's address bar shows it: punycode labels decoded (IDNA 2008).
    A label that does not decode (never stored, but be safe) is shown as stored."""
    labels = []
    for label in host.split("."):
        try:
            labels.append(idna.decode(label) if label.startswith("xn--") else label)
        except (idna.IDNAError, UnicodeError, ValueError):
            labels.append(label)
    return ".".join(labels)


def normalize_hostname(raw: object) -> str:
    """Return the canonical form of `raw` or raise HostnameError."""
    if not isinstance(raw, str):
        raise HostnameError("The hostname must be a string, e.g. \"gallery.client.com\".")
    text = raw.strip()
    if not text:
        raise HostnameError("The hostname is empty.", code="required")
    if len(text) > 1024:
        raise HostnameError(f"The hostname is {len(text)} characters long; a hostname may "
                            f"have at most {MAX_HOSTNAME_LENGTH}.")
    if "://" in text:
        raise HostnameError(
            "Give the hostname only, without a scheme: 'gallery.client.com', not "
            "'https://gallery.client.com'."
        )
    for char, what in _FORBIDDEN_CHARS.items():
        if char in text:
            raise HostnameError(f"Give the hostname only, without {what}.")
    if any(c.isspace() for c in text):
        raise HostnameError("A hostname cannot contain spaces.")
    if text.startswith("[") or _is_ip(text):
        raise HostnameError("An IP address cannot be a custom domain; use a hostname.")
    if ":" in text:
        raise HostnameError("Give the hostname without a port.")
    if "*" in text:
        raise HostnameError("Wildcard domains are not supported; add each hostname.")
    if text.endswith("."):
        text = text[:-1]
    if not text or text.startswith(".") or text.endswith(".") or ".." in text:
        raise HostnameError("The hostname has an empty label.")

    host = _to_ascii(text).lower()
    if host.endswith("."):
        host = host[:-1]
    if _is_ip(host):
        raise HostnameError("An IP address cannot be a custom domain; use a hostname.")
    if error := _length_error(host):
        raise error
    labels = host.split(".")
    for label in labels:
        if not _LDH_LABEL.match(label):
            raise HostnameError(f"The label '{label}' is not a valid DNS label.")
    if len(labels) < 2:
        raise HostnameError("A custom domain needs at least two labels, like 'client.com'.")
    return host


def validate_custom_hostname(raw: object) -> str:
    """Normalize and apply the product rules: public suffix, apex and platform domains."""
    host = normalize_hostname(raw)
    _check_platform(host)
    psl = _psl()
    suffix = psl.publicsuffix(host)
    if suffix is None:
        raise HostnameError(
            f"'{host}' is not under a known public suffix (top-level domain).",
            code="unknown_suffix",
        )
    if suffix == host:
        raise HostnameError(
            f"'{host}' is a public suffix; register a name under it instead.",
            code="public_suffix",
        )
    if psl.privatesuffix(host) == host and not apex_supported():
        raise HostnameError(
            f"'{host}' is an apex domain, and DNS does not allow a CNAME at the apex. "
            f"Use a subdomain such as 'www.{host}' or 'gallery.{host}'; to serve visitors who "
            f"type '{host}', have your DNS provider redirect it to that subdomain.",
            code="apex_not_supported",
        )
    return host


def apex_supported() -> bool:
    """Apex domains are served through the connection group's anycast static IPs:
    the customer creates A/AAAA records to them instead of a CNAME."""
    return (bool(settings.VEDOMAINS_CDN_APEX_IPS)
            and settings.VEDOMAINS_CDN_STRATEGY == "saas-tenant")


def is_apex(host: str) -> bool:
    return _psl().privatesuffix(host) == host


def is_platform_hostname(host: str) -> bool:
    zones = {settings.VEDOMAINS_PLATFORM_DOMAIN, settings.VEDOMAINS_CNAME_TARGET}
    zones.update(d.lower().rstrip(".") for d in settings.VEDOMAINS_RESERVED_DOMAINS if d)
    return any(host == zone or host.endswith("." + zone) for zone in zones if zone)


def _check_platform(host: str) -> None:
    if is_platform_hostname(host):
        raise HostnameError(
            f"'{host}' belongs to the platform and cannot be used as a custom domain.",
            code="platform_domain",
        )


def _is_ip(text: str) -> bool:
    candidate = text.strip("[]").rstrip(".")
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def normalize_search_hostname(raw: str) -> str:
    """What a staff search for `raw` means, in the stored form: the hostname from a pasted URL
    (scheme, user info, port, path dropped), any trailing dot, Unicode as punycode.

    Unlike `normalize_hostname` it accepts a single label ("bücher" -> "xn--bcher-kva"), so a
    fragment of a name can be searched too. Raises HostnameError when nothing usable is left.
    """
    text = raw.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    # Path, query and fragment end the host part; user info and port are cut around it.
    text = re.split(r"[/?#\\]", text, maxsplit=1)[0].rsplit("@", 1)[-1]
    if not text.startswith("[") and text.count(":") == 1:
        text = text.split(":", 1)[0]
    text = text.rstrip(".")
    if "." not in text and text and not _is_ip(text):
        label = _to_ascii(text).lower()
        if not _LDH_LABEL.match(label):
            raise HostnameError(f"'{label}' is not a valid DNS label.")
        return label
    return normalize_hostname(text)


def zone_of(host: str) -> str:
    """The registered domain a hostname sits in (`client.com` for `gallery.client.com`):
    where its DNS is hosted, in all but delegated sub-zones."""
    return _psl().privatesuffix(host) or host
