"""Request guards that sit in front of every view (admin and API alike)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest


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
