"""Project errors that interfaces (API, admin, commands) turn into answers.

Each carries a machine-readable `code`, a message a person can act on, the input `field`
it concerns (if any) and the HTTP status the API answers with.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    http_status = 400
    default_code = "invalid"
    # Seconds the caller should wait before retrying, when known: the API's Retry-After.
    retry_after: int | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field
        self.details = details or {}


class InvalidInput(DomainError):
    http_status = 400
    default_code = "invalid"


class NotEntitled(DomainError):
    """The workspace's plan does not allow this (no custom domains, or the limit is reached)."""

    http_status = 403
    default_code = "plan_not_entitled"


class PermissionDeniedError(DomainError):
    http_status = 403
    default_code = "permission_denied"


class NotFound(DomainError):
    http_status = 404
    default_code = "not_found"


class Conflict(DomainError):
    http_status = 409
    default_code = "hostname_taken"


class InvalidTransition(DomainError):
    """The domain is not in a status that allows the operation (or another worker won)."""

    http_status = 409
    default_code = "invalid_transition"


class Throttled(DomainError):
    http_status = 429
    default_code = "throttled"
