"""API authentication for the ve.ai integration.

- `MainAppJWTAuthentication`: `Authorization: Bearer <JWT>` from the main app (users of the
  ve.ai frontend). A bad, expired or foreign token answers 401 in the API's JSON error shape;
  a JWKS we cannot reach answers 503 (the token may be fine: try again, do not sign out).
- `ServiceSignatureAuthentication`: the main app's server, for the sync API only. Requests
  are signed with a shared secret (HMAC-SHA256 over a canonical request: the timestamp,
  method, path, query and body hash; scheme `vedomains-hmac-sha256-v2`),
  so the credential never travels and a captured request stops working after the tolerance.
  It authenticates a `ServicePrincipal`, never a user, and user credentials are not
  accepted on the sync API: each credential has one scope.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import tempfile
import time
from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from domains import signing
from domains.integrations import main_app_tokens
from domains.integrations.errors import IntegrationError
from veai.identity import user_for_external_subject


class AuthUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "Sign-in cannot be checked right now; try again shortly."
    default_code = "auth_unavailable"

    def __init__(self, *, wait: int | None = None) -> None:
        super().__init__()
        # Read by the exception handler: `Retry-After` tells the frontend when to retry
        # rather than sign the user out.
        self.wait = wait


class MainAppJWTAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword or not main_app_tokens.enabled():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Authorization must be 'Bearer <token>'.", code="invalid_token")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The bearer token is not a JWT.",
                                                  code="invalid_token") from exc
        try:
            claims = main_app_tokens.verify_token(token)
        except main_app_tokens.TokenRejected as exc:
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from exc
        except main_app_tokens.KeysUnavailable as exc:
            raise AuthUnavailable(wait=exc.retry_after) from exc
        except IntegrationError as exc:
            raise AuthUnavailable(wait=5) from exc
        user = user_for_external_subject(issuer=settings.VEDOMAINS_JWT_ISSUER_ID,
                                         subject=claims.subject,
                                         email=claims.email)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("This account is disabled.",
                                                  code="user_inactive")
        return user, claims

    def authenticate_header(self, request: Request) -> str:
        # The first class's challenge decides 401 over 403; name both schemes we accept.
        if main_app_tokens.enabled():
            return 'Bearer realm="vedomains", Token'
        return "Token"


class ServicePrincipal:
    """The main app's server: authenticated, but no user and no workspace membership."""

    is_authenticated = True
    is_staff = False
    is_active = True
    pk = None
    username = "service:main-app"

    def __str__(self) -> str:
        return self.username


# The scheme is `domains.signing` (shared with webhooks). v1 (`t.METHOD.path?query.body` in
# X-Vedomains-Service-Signature) is not accepted: it never ran in production, and accepting
# it would keep its path/query ambiguity open.
SIGNATURE_SCHEME = signing.SCHEME
SIGNATURE_HEADER = signing.HEADER
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def service_signature(secret: str, timestamp: int, method: str, path: str, query: str,
                      body: bytes | str, *, path_decoded: bool = False) -> str:
    """`t=<unix>,v2=<hex HMAC-SHA256(secret, canonical request)>`."""
    digest = signing.v2_digest(secret, timestamp, method, path, query, body,
                               path_decoded=path_decoded)
    return f"t={timestamp},v2={digest}"


def _signature_fields(header: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(name, value)
    return fields


class ServiceSignatureAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        meta = request._request.META
        header = meta.get("HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"))
        if not header:
            if meta.get("HTTP_X_VEDOMAINS_SERVICE_SIGNATURE"):
                raise exceptions.AuthenticationFailed(
                    "The v1 signature (X-Vedomains-Service-Signature) is no longer accepted; "
                    f"sign with {SIGNATURE_SCHEME} in {SIGNATURE_HEADER}.",
                    code="unsupported_signature_version")
            return None
        secrets = settings.VEDOMAINS_SERVICE_SECRETS
        if not secrets:
            raise exceptions.AuthenticationFailed("The sync API is not enabled.",
                                                  code="service_disabled")
        fields = _signature_fields(header)
        given, stamp = fields.get("v2", ""), fields.get("t", "")
        if "v2" not in fields and "v1" in fields:
            raise exceptions.AuthenticationFailed(
                f"v1 signatures are no longer accepted; sign with {SIGNATURE_SCHEME}.",
                code="unsupported_signature_version")
        # Checked by shape first: any malformed value (t=1e400, a non-ASCII digest) is a
        # 401, never an exception in the arithmetic or the comparison below.
        if not _TIMESTAMP.match(stamp) or not _HEX_DIGEST.match(given):
            raise exceptions.AuthenticationFailed("Malformed service signature.",
                                                  code="invalid_signature")
        timestamp = int(stamp)
        tolerance = settings.VEDOMAINS_SERVICE_SIGNATURE_TOLERANCE_SECONDS
        if abs(time.time() - timestamp) > tolerance:
            raise exceptions.AuthenticationFailed(
                f"The signature's timestamp is more than {tolerance} s away from our clock.",
                code="signature_expired")
        body = self.body_sha256(request)
        # request.path is already percent-decoded (as Django routes it), once: the canonical
        # form re-encodes it without decoding it again (the client decodes the path it sends
        # once), so a literal `%41` in an id signs the same on both sides, and the client's
        # choice of which characters to escape does not matter.
        path, query = request._request.path, meta.get("QUERY_STRING", "")
        for secret in secrets:
            expected = service_signature(secret, timestamp, request.method or "", path, query,
                                         body, path_decoded=True)
            if hmac.compare_digest(expected.split("v2=", 1)[1].encode(), given.encode()):
                return ServicePrincipal(), None
        raise exceptions.AuthenticationFailed("The service signature does not match.",
                                              code="invalid_signature")

    def body_sha256(self, request: Request) -> str:
        # The raw bytes as received: what the sender signed (read before DRF parses them).
        return hashlib.sha256(request._request.body).hexdigest()

    def authenticate_header(self, request: Request) -> str:
        return f'{SIGNATURE_SCHEME} header="{SIGNATURE_HEADER}"'


# Bulk bodies are spooled to disk past this size, and refused past BULK_MAX_BYTES (a knob
# no operator should need: a larger export is sent in several requests).
BULK_SPOOL_BYTES = 1024 * 1024
BULK_MAX_BYTES = 64 * 1024 * 1024


class BodyTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "body_too_large"
    field = "body"


class SpooledRequest(HttpRequest):
    """For the type checker: the Django request once the bulk authentication has read it."""

    spooled_body: tempfile.SpooledTemporaryFile[bytes]
    spooled_body_sha256: str


class StreamedServiceSignatureAuthentication(ServiceSignatureAuthentication):
    """The same signature, for a body too large to hold in memory (the bulk endpoint).

    The body is hashed while it is read into a spooled file (`request.spooled_body`); the
    signature covers its SHA-256, so nothing of it is parsed before the signature checks.
    """

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        # Refused before a byte is read or spooled (the signature cannot be checked before
        # the body is): a declared size over the limit costs the server nothing.
        declared = request._request.META.get("CONTENT_LENGTH") or ""
        if re.fullmatch(r"[0-9]+", declared) and int(declared) > BULK_MAX_BYTES:
            raise BodyTooLarge(f"The body is larger than {BULK_MAX_BYTES} bytes; send the "
                               "records in several requests.")
        try:
            return super().authenticate(request)
        except BaseException:
            # The view (which closes it after streaming) never runs: close it here.
            spooled = getattr(request._request, "spooled_body", None)
            if spooled is not None:
                spooled.close()
            raise

    def body_sha256(self, request: Request) -> str:
        spooled = getattr(request._request, "spooled_body", None)
        if spooled is not None:
            return str(cast(SpooledRequest, request._request).spooled_body_sha256)
        digest = hashlib.sha256()
        spooled = tempfile.SpooledTemporaryFile(max_size=BULK_SPOOL_BYTES)  # noqa: SIM115
        size = 0
        try:
            while chunk := request._request.read(64 * 1024):
                size += len(chunk)
                if size > BULK_MAX_BYTES:
                    raise BodyTooLarge(f"The body is larger than {BULK_MAX_BYTES} bytes; send "
                                       "the records in several requests.")
                digest.update(chunk)
                spooled.write(chunk)
        except BaseException:
            spooled.close()  # a read error or the size limit: nothing else will close it
            raise
        spooled.seek(0)
        spooled_request = cast(SpooledRequest, request._request)
        spooled_request.spooled_body = spooled
        spooled_request.spooled_body_sha256 = digest.hexdigest()
        return digest.hexdigest()


class ServiceSignatureScheme(OpenApiAuthenticationExtension):
    """Documents the sync API's signature in the OpenAPI schema."""

    target_class = ServiceSignatureAuthentication
    match_subclasses = True  # the streamed variant of the bulk endpoint too
    name = "mainAppServiceSignature"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": SIGNATURE_HEADER,
                "description": f"`t=<unix seconds>,v2=<hex HMAC-SHA256>` ({SIGNATURE_SCHEME}) "
                               "over the canonical request: the scheme, t, METHOD, the "
                               "canonical path, the canonical query and the body's SHA-256, "
                               "one per line. See docs/veai-integration.md and the reference "
                               "client docs/examples/veai_sync_client.py."}


class MainAppJWTScheme(OpenApiAuthenticationExtension):
    """Documents the bearer scheme in the OpenAPI schema (the frontend's client reads it)."""

    target_class = MainAppJWTAuthentication
    name = "mainAppBearer"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "A token from the main ve.ai app (RS256/ES256, verified "
                               "against its JWKS)."}
