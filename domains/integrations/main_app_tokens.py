"""Verifying the main ve.ai app's signed tokens (JWTs) with PyJWT.

Keys come from the main app's JWKS URL (PyJWKClient: the key set is cached for
VEDOMAINS_JWKS_CACHE_SECONDS, and a token with an unknown `kid` refetches it at most once per
VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS, so a rotated key works without a restart and a flood
of made-up `kid`s cannot turn into a flood of fetches), or from one static PEM public key.
Only asymmetric algorithms are accepted, chosen by configuration, never by the token.
https://pyjwt.readthedocs.io/en/stable/usage.html#retrieve-rsa-signing-keys-from-a-jwks-endpoint
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import jwt
from django.conf import settings
from jwt import PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError

from domains.integrations.errors import IntegrationError


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


_lock = threading.Lock()
_clients: dict[tuple[Any, ...], PyJWKClient] = {}


def enabled() -> bool:
    return bool(settings.VEDOMAINS_JWT_JWKS_URL or settings.VEDOMAINS_JWT_PUBLIC_KEY)


def _jwks_client() -> PyJWKClient:
    # Keyed by the settings, so a changed configuration (tests, a reload) gets its own client.
    key = (settings.VEDOMAINS_JWT_JWKS_URL, settings.VEDOMAINS_JWKS_CACHE_SECONDS,
           settings.VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS, settings.VEDOMAINS_JWKS_TIMEOUT)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = PyJWKClient(
                settings.VEDOMAINS_JWT_JWKS_URL,
                # Per-kid caching (lru_cache) would keep a key the main app withdrew; the
                # whole-set cache expires, so a revoked key stops working within its lifespan.
                cache_keys=False,
                cache_jwk_set=True,
                lifespan=max(1, settings.VEDOMAINS_JWKS_CACHE_SECONDS),
                timeout=settings.VEDOMAINS_JWKS_TIMEOUT,
                cooldown_duration=settings.VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS,
            )
            _clients[key] = client
        return client


def reset_clients() -> None:
    with _lock:
        _clients.clear()


def _signing_key(token: str, header: dict[str, Any]) -> Any:
    if settings.VEDOMAINS_JWT_JWKS_URL:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("The token has no key id (kid).")
        try:
            return _jwks_client().get_signing_key(kid).key
        except PyJWKClientConnectionError as exc:
            raise IntegrationError(f"The main app's JWKS could not be fetched: {exc}",
                                   permanent=False, code="jwks_unreachable") from exc
        except PyJWKClientError as exc:
            raise TokenRejected("The token was signed with a key we do not know.",
                                code="unknown_key") from exc
    return settings.VEDOMAINS_JWT_PUBLIC_KEY


def verify_token(token: str) -> TokenClaims:
    """The token's claims if its signature, issuer, audience and times check out.

    Raises TokenRejected for anything the caller should answer 401 to, and IntegrationError
    (transient) when the key set cannot be fetched.
    """
    algorithms = list(settings.VEDOMAINS_JWT_ALGORITHMS)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise TokenRejected("The bearer token is not a JWT.") from exc
    if header.get("alg") not in algorithms:
        raise TokenRejected(f"Tokens signed with {str(header.get('alg'))[:20]} are not accepted.",
                            code="unsupported_algorithm")
    key = _signing_key(token, header)
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
    except jwt.PyJWTError as exc:
        # Bad signature, malformed payload, ... (PyJWTError: InvalidKeyError is no
        # InvalidTokenError).
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
        email=email if isinstance(email, str) and len(email) <= 254 else "",
        name=name if isinstance(name, str) else "",
        raw=claims,
    )
