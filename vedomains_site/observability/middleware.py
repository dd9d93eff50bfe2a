"""Request ids, one log line per request, and the operator endpoints.

`OperatorEndpointsMiddleware` sits before SecurityMiddleware and answers three paths itself:

    /health/live    200 with no I/O at all: the process is up and its threads answer
    /health/ready   200 or 503, JSON naming each check (database, broker, cache) and whether
                    it passed; why it failed goes to the log only (it names internal hosts)
    /metrics        Prometheus text, only with `Authorization: Bearer <VEDOMAINS_METRICS_TOKEN>`

before Django validates the Host header or redirects to HTTPS: a load balancer's health
check and a Prometheus scrape address the task by its IP, which is in no ALLOWED_HOSTS.

Only on their canonical spelling: gunicorn decodes %-escapes (%2F too) into PATH_INFO, so
`/%68ealth/ready` or `/health%2Fready` would pass a load balancer rule that keeps the
literal paths off the public listener and still reach these views. The request line as
sent (gunicorn's RAW_URI, or REQUEST_URI) must be the path itself; anything else is a 404.
The same holds for the admin's prefix (`/%61dmin/` past a rule that keeps `/admin*` off the
public listener, deploy/README.md): it must be spelled literally.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable
from contextvars import Token
from typing import Any, Final, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from vedomains_site.observability import context, health, metrics

log = logging.getLogger("vedomains.request")

REQUEST_ID_HEADER: Final = "X-Request-ID"
# An incoming id is kept only if it is short and plain: it ends up in every log line.
_SAFE_ID: Final = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")
LIVE_PATH: Final = "/health/live"
READY_PATH: Final = "/health/ready"
METRICS_PATH: Final = "/metrics"
ADMIN_PREFIX: Final = "/admin"


class _TracedRequest(HttpRequest):
    """For the type checker only: the attributes this middleware adds to every request."""

    request_id: str
    _log_context_tokens: list[Token[Any]]


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, http_request: HttpRequest) -> HttpResponse:
        request = cast(_TracedRequest, http_request)
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        tokens = context.set_values(request_id=request_id)
        # process_view adds its own; all are reset below, so nothing leaks to the next
        # request this thread serves.
        request._log_context_tokens = tokens
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            # The path only: a query string may carry something that must not be logged.
            level = logging.DEBUG if request.path.startswith("/health/") else logging.INFO
            log.log(level, "%s %s %s %.0fms", request.method, request.path,
                    response.status_code, (time.monotonic() - started) * 1000,
                    extra={"status": response.status_code})
            return response
        finally:
            context.reset(tokens)

    def process_view(self, request: HttpRequest, view: Any, args: Any,
                     kwargs: dict[str, Any]) -> None:
        # API and admin URLs name the domain they act on; tag the rest of the request's lines.
        hostname = kwargs.get("hostname") or kwargs.get("domain")
        if isinstance(hostname, str):
            tokens = getattr(request, "_log_context_tokens", None)
            if tokens is not None:
                tokens.extend(context.set_values(hostname=hostname.lower()[:253]))


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _raw_path(request: HttpRequest) -> str | None:
    """The path as the request line spelled it, or None when the server does not say
    (runserver: then nothing was decoded out of sight)."""
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    if not isinstance(raw, str) or not raw:
        return None
    if not raw.startswith("/"):  # absolute form: GET http://host/path HTTP/1.1
        raw = urlsplit(raw).path
    return raw.split("?", 1)[0].split("#", 1)[0]


def _sent_as(request: HttpRequest, path: str) -> bool:
    raw = _raw_path(request)
    return raw is None or raw == path


def _sent_under(request: HttpRequest, prefix: str) -> bool:
    raw = _raw_path(request)
    return raw is None or raw == prefix or raw.startswith(prefix + "/")


class OperatorEndpointsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path in (LIVE_PATH, READY_PATH, METRICS_PATH) and not _sent_as(request, path):
            return _error(404, "not_found", "Not found.")
        if path.startswith(ADMIN_PREFIX) and not _sent_under(request, ADMIN_PREFIX):
            return _error(404, "not_found", "Not found.")
        if path == LIVE_PATH:
            return JsonResponse({"status": "ok"})
        if path == READY_PATH:
            return self.ready()
        if path == METRICS_PATH:
            return self.metrics(request)
        return self.get_response(request)

    @staticmethod
    def ready() -> JsonResponse:
        results = health.readiness()
        ok = all(r.ok for r in results)
        failing = [r for r in results if not r.ok]
        # Anyone who reaches the task may ask: the answer says which check failed, never
        # why (exception text names hosts and ports); the reason is in the log line.
        body = {
            "status": "ok" if ok else "unavailable",
            "checks": {r.name: {"ok": r.ok} for r in results},
        }
        if not ok:
            log.warning("not ready: %s", "; ".join(f"{r.name}: {r.detail} ({r.ms} ms)"
                                                    for r in failing))
        return JsonResponse(body, status=200 if ok else 503)

    @staticmethod
    def metrics(request: HttpRequest) -> HttpResponse:
        token = settings.VEDOMAINS_METRICS_TOKEN
        if not token:
            # Off unless an operator configured a token: never public by accident.
            return _error(404, "not_found", "Not found.")
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 token.encode()):
            response = _error(401, "not_authenticated",
                              "The metrics endpoint needs 'Authorization: Bearer <token>'.")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return HttpResponse(metrics.exposition(),
                            content_type="text/plain; version=0.0.4; charset=utf-8")
