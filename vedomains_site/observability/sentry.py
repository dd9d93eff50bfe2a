"""Error reporting to Sentry when SENTRY_DSN is set; nothing at all when it is not.

send_default_pii=False keeps user ids, IP addresses, cookies and request bodies out, and
`scrub` removes what can still slip into an event: e-mail addresses (owners' and members'),
API tokens and webhook secrets inside exception messages, breadcrumbs (log lines) and
local variables.
https://docs.sentry.io/platforms/python/data-management/sensitive-data/
"""

from __future__ import annotations

import re
from typing import Any, Final

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.types import Event, Hint

from vedomains_site.observability.logs import REDACTED, redact

_EMAIL: Final = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# Keys whose values are dropped whole, wherever they appear in the event.
_SECRET_KEYS: Final = re.compile(
    r"(?i)(pass(word)?|secret|token|authorization|api[_-]?key|cookie|session|csrf|dsn"
    r"|signature|email|recipients)")


def scrub(value: Any, depth: int = 0) -> Any:
    if depth > 20:
        return value
    if isinstance(value, str):
        return _EMAIL.sub(REDACTED, redact(value))
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and _SECRET_KEYS.search(k) and v
                    else scrub(v, depth + 1)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, depth + 1) for v in value]
    return value


def before_send(event: Event, hint: Hint) -> Event:
    return scrub(event)


def before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    return scrub(crumb)


def init(*, dsn: str, environment: str, release: str, traces_sample_rate: float,
         transport: Any = None) -> None:
    options: dict[str, Any] = {}
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        send_default_pii=False,
        # Local variables can hold a token or a secret read from the database.
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=traces_sample_rate,
        before_send=before_send,
        before_send_transaction=before_send,
        before_breadcrumb=before_breadcrumb,
        integrations=[
            DjangoIntegration(),
            CeleryIntegration(),
            # ERROR lines become events; INFO and above become breadcrumbs (scrubbed).
            LoggingIntegration(),
        ],
        **options,
    )
