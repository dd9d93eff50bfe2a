"""Verifying the main ve.ai app's signed tokens (JWTs) with PyJWT.

Keys come from the main app's JWKS URL (`JwksCache`: the key set is cached for
VEDOMAINS_JWKS_CACHE_SECONDS, and a token with an unknown `kid` refetches it at most once per
VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS, shared by all threads, so a rotated key works
without a restart and a flood of made-up `kid`s cannot turn into a flood of fetches), or from
one static PEM public key. Only asymmetric algorithms are accepted, chosen by configuration,
never by the token. Keys are parsed with PyJWT's PyJWK (RFC 7517).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import jwt
from django.conf import settings
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from domains.integrations.errors import IntegrationError
from vedomains_site.config.allowed import ASYMMETRIC_JWT_ALGORITHMS

log = logging.getLogger(__name__)


class TokenRejected(Exception):
    """The token is not one we accept (bad signature, expired, wrong issuer...)."""

    def __init__(self, message: str, *, code: str = "invalid_token") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class TokenClaims:
    issuer: str
    subject: str
    email: str = ""
    name: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


class KeysUnavailable(IntegrationError):
    """The key set cannot be consulted right now: the token may be fine (answer 503).

    `retry_after`: seconds until a refetch is allowed again (the cooldown), when known.
    """

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message, permanent=False, code="jwks_unavailable")
        self.retry_after = retry_after


@dataclass
class _KeySet:
    keys: dict[str, PyJWK]
    fetched_at: float  # time.monotonic() when the fetch started


class JwksCache:
    """The main app's key set, fetched by us (urllib), cached, refetched on an unknown kid.

    Rules: a `kid` missing from the cached set is a 401 only once a set
    fetched AFTER the token arrived lacks it too; otherwise the set may simply be stale (the
    main app just started signing with a new key). Then one thread refetches under the lock
    while the others wait for its result (a single shared fetch); if a refetch happened less
    than the cooldown ago, the answer is 503 `auth_unavailable` with Retry-After, never a
    401 that a frontend would take as "sign out". A non-JSON or malformed answer is the main
    app's outage (503), not the token's fault.
    """

    def __init__(self, *, url: str, lifespan: float, cooldown: float, timeout: float) -> None:
        self.url, self.lifespan, self.cooldown, self.timeout = url, lifespan, cooldown, timeout
        self._lock = threading.Lock()
        self._set: _KeySet | None = None
        self._last_attempt = float("-inf")
        self.fetches = 0

    def _fresh(self, key_set: _KeySet | None, now: float) -> bool:
        return key_set is not None and now - key_set.fetched_at < self.lifespan

    def key_for(self, kid: str, *, arrived: float) -> PyJWK:
        key_set = self._set
        if self._fresh(key_set, time.monotonic()) and key_set and kid in key_set.keys:
            return key_set.keys[kid]  # the common case: no lock
        with self._lock:
            key_set, now = self._set, time.monotonic()
            if key_set is not None and key_set.fetched_at >= arrived:
                # Fetched after this token arrived (by another thread, while we waited for
                # the lock): as fresh as a fetch of our own would be.
                return self._known(key_set, kid)
            if self._fresh(key_set, now) and key_set and kid in key_set.keys:
                return key_set.keys[kid]
            # An expired set is refetched once per lifespan whatever the kid; only a refetch
            # for an unknown kid in a live set waits for the (longer) cooldown.
            pause = self.cooldown if self._fresh(key_set, now) else min(self.cooldown,
                                                                        self.lifespan)
            wait = self._last_attempt + pause - now
            if wait > 0:
                raise KeysUnavailable(
                    "The token's key is not in the cached key set and a refetch ran "
                    f"{now - self._last_attempt:.0f} s ago; try again shortly.",
                    retry_after=max(1, math.ceil(wait)))
            self._last_attempt = now
            self._set = self._fetch(started=now)
            return self._known(self._set, kid)

    @staticmethod
    def _known(key_set: _KeySet, kid: str) -> PyJWK:
        if kid not in key_set.keys:
            raise TokenRejected("The token was signed with a key we do not know.",
                                code="unknown_key")
        return key_set.keys[kid]

    def _fetch(self, *, started: float) -> _KeySet:
        self.fetches += 1
        if not self.url.startswith(("https://", "http://")):
            # urllib would also open file:// and ftp:// URLs; the system check says so first.
            raise KeysUnavailable("VEDOMAINS_JWT_JWKS_URL is not an http(s) URL.",
                                  retry_after=max(1, math.ceil(self.cooldown)))
        request = urllib.request.Request(self.url, headers={"Accept": "application/json",
                                                            "User-Agent": "vedomains-jwks"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read(_MAX_JWKS_BYTES + 1)
        except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts, a bad URL
            raise KeysUnavailable(f"The main app's JWKS could not be fetched: {exc}",
                                  retry_after=max(1, math.ceil(self.cooldown))) from exc
        try:
            if len(raw) > _MAX_JWKS_BYTES:
                raise ValueError(f"larger than {_MAX_JWKS_BYTES} bytes")
            document = json.loads(raw)
            entries = document["keys"]
            if not isinstance(entries, list):
                raise ValueError("'keys' is not a list")
        except (ValueError, TypeError, KeyError) as exc:
            raise KeysUnavailable(f"The main app's JWKS is not a JWK Set: {exc}",
                                  retry_after=max(1, math.ceil(self.cooldown))) from exc
        keys: dict[str, PyJWK] = {}
        for entry in entries:
            # One key we cannot use (another algorithm, an encryption key) must not make
            # the others unusable.
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("use", "sig") != "sig":
                continue
            try:
                keys[entry["kid"]] = PyJWK(entry)
            except (PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError) as exc:
                log.warning("JWKS key %.40s skipped: %s", entry["kid"], exc)
        return _KeySet(keys=keys, fetched_at=started)


_MAX_JWKS_BYTES = 512 * 1024
_lock = threading.Lock()
_caches: dict[tuple[Any, ...], JwksCache] = {}


def enabled() -> bool:
    return bool(settings.VEDOMAINS_JWT_JWKS_URL or settings.VEDOMAINS_JWT_PUBLIC_KEY)


def jwks_cache() -> JwksCache:
    # Keyed by the settings, so a changed configuration (tests, a reload) gets its own cache.
    key = (settings.VEDOMAINS_JWT_JWKS_URL, settings.VEDOMAINS_JWKS_CACHE_SECONDS,
           settings.VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS,
           settings.VEDOMAINS_JWKS_TIMEOUT_SECONDS)
    with _lock:
        cache = _caches.get(key)
        if cache is None:
            cache = JwksCache(url=settings.VEDOMAINS_JWT_JWKS_URL,
                              lifespan=max(1, settings.VEDOMAINS_JWKS_CACHE_SECONDS),
                              cooldown=max(0, settings.VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS),
                              timeout=settings.VEDOMAINS_JWKS_TIMEOUT_SECONDS)
            _caches[key] = cache
        return cache


def reset_clients() -> None:
    with _lock:
        _caches.clear()


# The key type each accepted algorithm needs: a token whose `alg` does not match its key's
# type is refused before the crypto library sees the pair (it may raise a TypeError).
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC"}


def _signing_key(header: dict[str, Any], *, arrived: float) -> Any:
    if settings.VEDOMAINS_JWT_JWKS_URL:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 200:
            raise TokenRejected("The token has no usable key id (kid).")
        jwk = jwks_cache().key_for(kid, arrived=arrived)
        if jwk.key_type != _KEY_TYPES.get(str(header.get("alg"))[:2]):
            raise TokenRejected("The token's algorithm does not match its key.")
        return jwk.key
    return settings.VEDOMAINS_JWT_PUBLIC_KEY


def verify_token(token: str) -> TokenClaims:
    """The token's claims if its signature, issuer, audience and times check out.

    Raises TokenRejected for anything the caller should answer 401 to, and IntegrationError
    (transient) when the key set cannot be fetched.
    """
    arrived = time.monotonic()
    # The system check (E205) refuses any other; a process that never ran the checks (a
    # worker) must not accept a symmetric algorithm either.
    algorithms = [a for a in settings.VEDOMAINS_JWT_ALGORITHMS if a in ASYMMETRIC_JWT_ALGORITHMS]
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise TokenRejected("The bearer token is not a JWT.") from exc
    if header.get("alg") not in algorithms:
        raise TokenRejected(f"Tokens signed with {str(header.get('alg'))[:20]} are not accepted.",
                            code="unsupported_algorithm")
    key = _signing_key(header, arrived=arrived)
    try:
        # The token names the algorithm, the key has a type: an ES256 token for an RSA key
        # makes PyJWT raise TypeError or InvalidKeyError (no InvalidTokenError) mid-decode.
        jwt.get_algorithm_by_name(header["alg"]).prepare_key(key)
    except (jwt.PyJWTError, TypeError, ValueError) as exc:
        raise TokenRejected("The token's algorithm does not match its signing key.") from exc
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=settings.VEDOMAINS_JWT_AUDIENCE,
            issuer=settings.VEDOMAINS_JWT_ISSUER,
            leeway=settings.VEDOMAINS_JWT_LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenRejected("The token has expired.", code="token_expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise TokenRejected("The token is not valid yet.", code="token_not_yet_valid") from exc
    except jwt.InvalidAudienceError as exc:
        raise TokenRejected("The token is meant for another service.",
                            code="invalid_audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise TokenRejected("The token comes from an issuer we do not trust.",
                            code="invalid_issuer") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise TokenRejected(f"The token lacks the {exc.claim!r} claim.",
                            code="missing_claim") from exc
    except (jwt.PyJWTError, TypeError, ValueError) as exc:
        # Bad signature, malformed payload, a key of the wrong type for `alg`, ...
        # (PyJWTError covers InvalidKeyError, which is no InvalidTokenError).
        raise TokenRejected("The token could not be verified.") from exc
    subject = claims.get("sub")
    # isprintable: no NUL (PostgreSQL refuses it in a string: a 500 at the user lookup),
    # newline or other control character in an id that reaches logs and the admin.
    if (not isinstance(subject, str) or not subject or len(subject) > 255
            or not subject.isprintable()):
        raise TokenRejected("The token's subject is not a usable id.", code="invalid_subject")
    email = claims.get("email")
    name = claims.get("name")
    return TokenClaims(
        issuer=str(claims["iss"]),
        subject=subject,
        email=email if isinstance(email, str) and len(email) <= 254 and "\x00" not in email
        else "",
        name=name if isinstance(name, str) else "",
        raw=claims,
    )
