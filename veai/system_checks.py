"""System checks for the ve.ai integration's settings (sign-in, sync API, plans, CORS).

Each problem names its setting: a JWKS URL without a scheme used to turn
every token into 401 `unknown_key`, and an empty issuer or audience passed `manage.py check`.
Ids E20x. `domains.system_checks` runs this finder with the other integrations'.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings
from django.core.checks import CheckMessage, Error

from domains.system_checks import Finder
from vedomains_site.config.allowed import ASYMMETRIC_JWT_ALGORITHMS

# The shortest shared secret we accept: 256 bits of hex, as `secrets.token_hex(16)` gives.
MIN_SERVICE_SECRET_LENGTH = 32


def _error(setting: str, problem: str, hint: str, number: int) -> Error:
    return Error(f"{setting} {problem}", hint=hint, id=f"vedomains.E{number:03d}")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def veai_settings_problems() -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    url = settings.VEDOMAINS_JWT_JWKS_URL
    if url:
        parts = urlsplit(url)
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            problems.append(_error(
                "VEDOMAINS_JWT_JWKS_URL", f"is {url[:80]!r}, not an https:// URL.",
                "The main app's JWK Set, such as https://ve.ai/.well-known/jwks.json.", 200))
        elif parts.scheme == "http" and not _loopback(parts.hostname):
            problems.append(_error(
                "VEDOMAINS_JWT_JWKS_URL", "uses http:// to a host that is not loopback.",
                "Keys fetched without TLS could be replaced on the way: use https://.", 200))
    key = settings.VEDOMAINS_JWT_PUBLIC_KEY
    if url and key:
        problems.append(_error(
            "VEDOMAINS_JWT_PUBLIC_KEY", "is set together with VEDOMAINS_JWT_JWKS_URL.",
            "Set one: the JWKS (keys rotate without a restart) or one static PEM key.", 201))
    elif key:
        try:
            loaded = load_pem_public_key(key.encode())
        except (ValueError, TypeError):
            loaded = None
        if not isinstance(loaded, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            problems.append(_error(
                "VEDOMAINS_JWT_PUBLIC_KEY", "is not a PEM RSA or EC public key.",
                "-----BEGIN PUBLIC KEY----- ...; write newlines as \\n in the environment.",
                202))
    for name, number, hint in (
        ("VEDOMAINS_JWT_ISSUER", 203,
         "The main app's `iss`; it also names the identities the sync creates."),
        ("VEDOMAINS_JWT_AUDIENCE", 204,
         "The `aud` the main app mints vedomains' tokens for, such as vedomains."),
        ("VEDOMAINS_JWT_ISSUER_ID", 211,
         "The stable name identities are stored under (default ve.ai); never change it."),
    ):
        value = getattr(settings, name)
        if not isinstance(value, str) or not value.strip():
            problems.append(_error(name, "is empty.", hint, number))
    algorithms = settings.VEDOMAINS_JWT_ALGORITHMS
    if not algorithms:
        problems.append(_error("VEDOMAINS_JWT_ALGORITHMS", "is empty.",
                               "RS256, ES256 or both: no token could be verified.", 205))
    elif unsafe := sorted(set(algorithms) - ASYMMETRIC_JWT_ALGORITHMS):
        # Symmetric (HS*) and "none" would let anyone holding the public key mint tokens.
        problems.append(_error(
            "VEDOMAINS_JWT_ALGORITHMS", f"names {', '.join(unsafe)}.",
            f"Only {', '.join(sorted(ASYMMETRIC_JWT_ALGORITHMS))}: a symmetric algorithm "
            "would let anyone holding the public key mint tokens.", 205))
    for name, low, high in (
        ("VEDOMAINS_JWT_LEEWAY_SECONDS", 0, 600),
        ("VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS", 0, 3600),
    ):
        seconds = _seconds(getattr(settings, name))
        if seconds is None or not low <= seconds <= high:
            problems.append(_error(name, f"must be between {low} and {high} seconds.",
                                   "Seconds, as a whole number.", 206))
    for name in ("VEDOMAINS_JWKS_CACHE_SECONDS", "VEDOMAINS_JWKS_TIMEOUT_SECONDS",
                 "VEDOMAINS_SERVICE_SIGNATURE_TOLERANCE_SECONDS", "VEDOMAINS_PLAN_GRACE_SECONDS",
                 "VEDOMAINS_PLAN_WARNING_SECONDS", "VEDOMAINS_PLAN_ENFORCE_INTERVAL_SECONDS"):
        seconds = _seconds(getattr(settings, name))
        if seconds is None or seconds <= 0:
            problems.append(_error(name, "must be greater than zero.",
                                   "A duration; zero would disable what it times.", 207))
    short = [i for i, s in enumerate(settings.VEDOMAINS_SERVICE_SECRETS, start=1)
             if len(s) < MIN_SERVICE_SECRET_LENGTH]
    if short:
        problems.append(_error(
            "VEDOMAINS_SERVICE_SECRETS",
            f"has secrets shorter than {MIN_SERVICE_SECRET_LENGTH} characters "
            f"(number {', '.join(map(str, short))}).",
            "Generate each with `python -c 'import secrets; print(secrets.token_hex(32))'`.",
            208))
    grace = _seconds(settings.VEDOMAINS_PLAN_GRACE_SECONDS)
    warning = _seconds(settings.VEDOMAINS_PLAN_WARNING_SECONDS)
    if grace and warning and warning > grace:
        problems.append(_error(
            "VEDOMAINS_PLAN_WARNING_SECONDS", "is longer than VEDOMAINS_PLAN_GRACE_SECONDS.",
            "The second email goes this long before the detachment, inside the grace.", 209))
    for origin in settings.VEDOMAINS_CORS_ALLOWED_ORIGINS:
        parts = urlsplit(origin)
        if (parts.scheme not in {"https", "http"} or not parts.hostname
                or parts.path or parts.query or origin == "*"):
            problems.append(_error(
                "VEDOMAINS_CORS_ALLOWED_ORIGINS", f"has {origin[:80]!r}, not an origin.",
                "scheme://host[:port] without a path, such as https://app.ve.ai.", 210))
    return problems


# Run by `domains.system_checks.settings_check` with every app's finders.
SETTINGS_FINDERS: list[Finder] = [
    veai_settings_problems,
]
