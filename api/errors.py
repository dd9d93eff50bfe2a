"""One exception handler for the whole API: every error is `{"error": {...}}`.

The body is always `{"error": {"code", "message", "field"?, "details"?}}`, whatever raised
it: a project `DomainError`, one of DRF's own exceptions (validation, authentication,
throttling, parsing, method, negotiation), Django's `Http404`/`PermissionDenied`, or an
unexpected bug (logged, answered as a JSON 500 rather than Django's HTML page).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback

from domains.errors import DomainError

log = logging.getLogger(__name__)

# DRF's parse and media-type errors concern the request body as a whole; naming it lets a
# client show the message next to the right thing, as it does for a field.
_BODY_ERRORS = (exceptions.ParseError, exceptions.UnsupportedMediaType)


def error_body(
    *, code: str, message: str, field: str | None = None, details: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    if details:
        error["details"] = dict(details)
    return {"error": _encodable(error)}


def _encodable(value: Any) -> Any:
    """Messages may echo the caller's input; a lone surrogate in it must not break rendering."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, Mapping):
        return {str(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(v) for v in value]
    return value


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        set_rollback()
        headers: dict[str, str] = {}
        if exc.http_status == status.HTTP_429_TOO_MANY_REQUESTS:
            # Project throttles (e.g. the ACM quota guard) have no exact wait; a minute is
            # a sensible pause and keeps well-behaved clients from hammering.
            headers["Retry-After"] = "60"
        retry_after = getattr(exc, "retry_after", None)  # set where the wait is known
        if isinstance(retry_after, int):
            headers["Retry-After"] = str(retry_after)
        return Response(
            error_body(code=exc.code, message=exc.message, field=exc.field, details=exc.details),
            status=exc.http_status,
            headers=headers,
        )

    if isinstance(exc, RequestDataTooBig):
        # Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE; that is the client's
        # doing (413), not a bug (500).
        set_rollback()
        return Response(
            error_body(code="body_too_large",
                       message=f"The request body is larger than "
                       f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.", field="body"),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        # Over DATA_UPLOAD_MAX_NUMBER_FIELDS/FILES (a multipart body parsed by DRF): the
        # client's doing, answered like the middleware answers it for query strings.
        set_rollback()
        return Response(
            error_body(code="too_many_fields", message=str(exc), field="body"),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, exceptions.APIException):
        set_rollback()
        headers = {}
        # Set by DRF's APIView on authentication failures only (not a declared attribute).
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        wait = getattr(exc, "wait", None)
        if wait is not None:
            headers["Retry-After"] = str(int(wait))
        return Response(_api_exception_body(exc), status=exc.status_code, headers=headers)

    # A bug, not bad input: log it with the traceback and still answer in the API's shape.
    log.exception("unhandled error in %s", context.get("view").__class__.__name__)
    set_rollback()
    return Response(
        error_body(code="internal_error", message="Something went wrong on our side."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _api_exception_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        field, message, code = _first_error(exc.detail)
        details = {"errors": _plain(exc.detail)} if _error_count(exc.detail) > 1 else None
        return error_body(code=code, message=message, field=field, details=details)
    if isinstance(exc, exceptions.Throttled):
        # Throttled sets `wait` in __init__; the stubs do not declare it.
        throttled_for = getattr(exc, "wait", None)
        wait = int(throttled_for) if throttled_for is not None else None
        return error_body(
            code="throttled",
            message=str(exc.detail),
            details={"retry_after": wait} if wait is not None else None,
        )
    detail = exc.detail
    code = exc.default_code
    message = str(detail)
    if isinstance(detail, exceptions.ErrorDetail):
        code = detail.code or code
    # An exception may name its field (`field` class attribute, e.g. the bulk body's 413).
    field = "body" if isinstance(exc, _BODY_ERRORS) else getattr(exc, "field", None)
    return error_body(code=str(code), message=message, field=field)


def _first_error(detail: Any, path: str = "") -> tuple[str | None, str, str]:
    """(dotted field path, message, code) of the first error in a ValidationError detail."""
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                sub = path or None
                _, message, code = _first_error(value, path)
                return sub, message, code
            return _first_error(value, f"{path}.{key}" if path else str(key))
    if isinstance(detail, list | tuple):
        for index, value in enumerate(detail):
            if isinstance(value, Mapping | list | tuple):
                if not value:
                    continue
                # A list of nested objects: the index is part of the path.
                return _first_error(value, f"{path}.{index}" if path else str(index))
            return _first_error(value, path)
    code = getattr(detail, "code", None) or "invalid"
    return path or None, str(detail), str(code)


def _error_count(detail: Any) -> int:
    if isinstance(detail, Mapping):
        return sum(_error_count(v) for v in detail.values())
    if isinstance(detail, list | tuple):
        return sum(_error_count(v) for v in detail)
    return 1


def _plain(detail: Any) -> Any:
    """ErrorDetail trees as plain JSON (strings, lists, dicts with string keys)."""
    if isinstance(detail, Mapping):
        return {str(k): _plain(v) for k, v in detail.items()}
    if isinstance(detail, list | tuple):
        return [_plain(v) for v in detail]
    return str(detail)
