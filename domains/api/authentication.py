"""API authentication for the ve.ai integration.

- `MainAppJWTAuthentication`: `Authorization: Bearer <JWT>` from the main app (users of the
  ve.ai frontend). A bad, expired or foreign token answers 401 in the API's JSON error shape;
  a JWKS we cannot reach answers 503 (the token may be fine: try again, do not sign out).
- `ServiceSignatureAuthentication`: the main app's server, for the sync API only. Requests
  are signed with a shared secret (HMAC-SHA256 over the timestamp, method, path and body),
  so the credential never travels and a captured request stops working after the tolerance.
  It authenticates a `ServicePrincipal`, never a user, and user credentials are not
  accepted on the sync API: each credential has one scope.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from domains.identity import user_for_external_subject
from domains.integrations import main_app_tokens
from domains.integrations.errors import IntegrationError

SERVICE_SIGNATURE_HEADER = "X-Vedomains-Service-Signature"


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
        user = user_for_external_subject(issuer=claims.issuer, subject=claims.subject,
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


def service_signature(secret: str, timestamp: int, method: str, path: str, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<METHOD>.<path>.<body>")>`.

    `path` is the percent-decoded path plus `?<query string>` as sent, if there is one.
    """
    message = f"{timestamp}.{method.upper()}.{path}.".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class ServiceSignatureAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = request.META.get("HTTP_" + SERVICE_SIGNATURE_HEADER.upper().replace("-", "_"))
        if not header:
            return None
        secrets = settings.VEDOMAINS_SERVICE_SECRETS
        if not secrets:
            raise exceptions.AuthenticationFailed("The sync API is not enabled.",
                                                  code="service_disabled")
        fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        try:
            timestamp = int(fields.get("t", ""))
        except ValueError as exc:
            raise exceptions.AuthenticationFailed("Malformed service signature.",
                                                  code="invalid_signature") from exc
        tolerance = settings.VEDOMAINS_SERVICE_SIGNATURE_TOLERANCE_SECONDS
        if abs(time.time() - timestamp) > tolerance:
            raise exceptions.AuthenticationFailed(
                f"The signature's timestamp is more than {tolerance} s away from our clock.",
                code="signature_expired")
        # The raw bytes as received: what the sender signed (read before DRF parses them).
        body = request._request.body
        # The path percent-decoded (as Django routes it) plus the query string as sent: a
        # client's choice of which characters to escape cannot break the signature.
        query = request._request.META.get("QUERY_STRING", "")
        path = request._request.path + (f"?{query}" if query else "")
        given = fields.get("v1", "")
        for secret in secrets:
            expected = service_signature(secret, timestamp, request.method or "", path, body)
            if hmac.compare_digest(expected.split("v1=", 1)[1], given):
                return ServicePrincipal(), None
        raise exceptions.AuthenticationFailed("The service signature does not match.",
                                              code="invalid_signature")

    def authenticate_header(self, request: Request) -> str:
        return 'Vedomains-HMAC-SHA256 header="X-Vedomains-Service-Signature"'


class MainAppJWTScheme(OpenApiAuthenticationExtension):
    """Documents the bearer scheme in the OpenAPI schema (the frontend's client reads it)."""

    target_class = MainAppJWTAuthentication
    name = "mainAppBearer"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "A token from the main ve.ai app (RS256/ES256, verified "
                               "against its JWKS)."}
