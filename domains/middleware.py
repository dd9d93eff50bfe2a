"""Request guards that sit in front of every view (admin and API alike)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

log = logging.getLogger(__name__)


class RejectNulBytesMiddleware:
    """Answer 400 to a NUL byte in the path or the query string.

    PostgreSQL cannot store or compare a string holding NUL (psycopg raises ValueError),
    so an admin changelist filter, search or autocomplete term carrying `%00` would be a
    500 deep inside the ORM. No hostname, slug or filter value can contain one. The API
    validates its own input field by field (answering in its JSON error shape), so it is
    left to do that.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            return self.get_response(request)
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            return HttpResponseBadRequest("The URL contains a NUL byte.",
                                          content_type="text/plain")
        return self.get_response(request)


class RequestLimitsMiddleware:
    """Answer a request over Django's field limits with a JSON 400, before any view.

    Django raises TooManyFieldsSent (a SuspiciousOperation) wherever request.GET or
    request.POST is first read (here: in a later middleware or deep in a view), and then
    logs it at ERROR (`django.security.*`), which reaches Sentry: a cheap way for anyone to
    page the team. Parsing the query string and a urlencoded POST body here, first, turns
    it into one WARNING line and a 400 in the API's error shape. Multipart bodies are
    parsed here too outside the API (the admin's forms; the CSRF check reads them before
    any view); the API takes JSON only, and reading its stream here would take the raw
    body a signed request needs, so there `process_exception` and the API's exception
    handler answer.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.GET  # noqa: B018 - parsed now, so the limit is checked here
            if request.method == "POST" and (
                request.content_type == "application/x-www-form-urlencoded"
                or (request.content_type == "multipart/form-data"
                    and not request.path.startswith("/api/"))
            ):
                request.POST  # noqa: B018
        except (TooManyFieldsSent, TooManyFilesSent, RequestDataTooBig) as exc:
            return self.refuse(request, exc)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, TooManyFieldsSent | TooManyFilesSent | RequestDataTooBig):
            return self.refuse(request, exc)
        return None

    @staticmethod
    def refuse(request: HttpRequest, exc: Exception) -> JsonResponse:
        log.warning("refused %s %s: %s", request.method, request.path, type(exc).__name__)
        if isinstance(exc, RequestDataTooBig):
            return JsonResponse({"error": {
                "code": "body_too_large", "field": "body",
                "message": f"The request body is larger than "
                           f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."}}, status=413)
        return JsonResponse({"error": {
            "code": "too_many_fields", "field": "query" if request.method == "GET" else "body",
            "message": f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} "
                       "parameters or form fields."}}, status=400)
