"""Log output: one JSON object per line in production, plain text in development.

Both formatters run the finished line (message, exception and traceback included) through
`redact`, so a secret that reaches a log call by any path (an exception message quoting a
header, a URL with a password) is replaced before it is written. This module imports
nothing from Django at import time: gunicorn's master loads it through `logconfig_dict`
before Django is set up.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from datetime import UTC, datetime
from typing import Any, Final

from vedomains_site.observability import context

REDACTED: Final = "[redacted]"

# Each pattern keeps its first group (the label) and replaces the rest.
_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    # Webhook signing secrets carry a recognisable prefix (models.generate_webhook_secret).
    (re.compile(r"whsec_[A-Za-z0-9_\-]{6,}"), "whsec_" + REDACTED),
    # "Authorization: Token abc", "Bearer abc", "Basic abc".
    # The value must hold a digit, so "token expired" stays readable.
    (
        re.compile(r"(?i)\b(token|bearer|basic)(\s+)(?=[A-Za-z._~+/=\-]*[0-9])[A-Za-z0-9._~+/=\-]{8,}"),
        r"\1\2" + REDACTED,
    ),
    # key=value, key: value, "key": "value" for keys that name a secret.
    (
        re.compile(
            r"(?i)((?:password|passwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|token"
            r"|authorization|dsn|signature)[\"']?\s*[=:]\s*[\"']?)([^\s\"',;&]{4,})"
        ),
        r"\1" + REDACTED,
    ),
    # Credentials inside URLs: scheme://user:password@host.
    (re.compile(r"([a-z][a-z0-9+.\-]*://[^:/\s@]*:)([^@/\s]+)@"), r"\1" + REDACTED + "@"),
    # DRF tokens are 40 hex characters; nothing else this service logs has that shape.
    (re.compile(r"\b[0-9a-f]{40}\b"), REDACTED),
    # A JWT with no "Bearer" before it (a query string, an exception message): its header
    # and payload are base64url JSON objects, so both start with "eyJ".
    (re.compile(r"\beyJ[A-Za-z0-9_\-]*\.eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*"), REDACTED),
    # The HMAC of a signature header ("t=<unix>,v2=<hex>"; webhooks also carry v1=): a
    # captured one replays within the tolerance. The timestamp is kept.
    (re.compile(r"(?i)(\bv[12]=)[^\s,;\"']{8,}"), r"\1" + REDACTED),
)


def _known_secrets() -> list[str]:
    """Secret values from the settings, if Django is configured (never at import time)."""
    try:
        from django.conf import settings

        if not settings.configured:
            return []
        values = [
            settings.SECRET_KEY,
            getattr(settings, "EMAIL_HOST_PASSWORD", ""),
            getattr(settings, "VEDOMAINS_METRICS_TOKEN", ""),
            settings.DATABASES.get("default", {}).get("PASSWORD", ""),
            # The sync API's HMAC secrets (several while rotating): shared with the main app.
            *getattr(settings, "VEDOMAINS_SERVICE_SECRETS", []),
        ]
    except Exception:  # noqa: BLE001 - a log line must never fail on redaction
        return []
    return [v for v in values if isinstance(v, str) and len(v) >= 8]


def redact(text: str) -> str:
    for secret in _known_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class ContextFilter(logging.Filter):
    """Copies the current request/task/domain context onto every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in context.current().items():
            # An explicit `extra={"domain_id": ...}` on the call wins over the context.
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class PlainFormatter(logging.Formatter):
    """Development: readable lines, with the request or task id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tags = [f"{name}={getattr(record, name)}" for name in context.FIELDS
                if getattr(record, name, None) is not None]
        if tags:
            first, sep, rest = line.partition("\n")
            line = f"{first} [{' '.join(tags)}]{sep}{rest}"
        return redact(line)


class JsonFormatter(logging.Formatter):
    """Production: one JSON object per line, the same keys on every line.

    The context keys are always present (null when unknown) so a log query can filter on
    them without checking for their existence.
    """

    def __init__(self) -> None:
        super().__init__()
        self._host = socket.gethostname()

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in context.FIELDS:
            event[name] = getattr(record, name, None)
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            event["exc"] = record.exc_text
        if record.stack_info:
            event["stack"] = self.formatStack(record.stack_info)
        event["process"] = record.process
        event["instance"] = self._host
        # Redacted field by field, before encoding: once encoded, a quoted secret in a message
        # (`{"password": "..."}`) has backslashes the patterns do not expect, and a
        # replacement can cut an escape in half and leave a line that is not JSON.
        for name, value in event.items():
            if isinstance(value, str):
                event[name] = redact(value)
        # ensure_ascii keeps the line one line whatever the message holds (newlines are
        # escaped by json.dumps either way); default=str for objects passed as arguments.
        return json.dumps(event, default=str)


def logging_config(*, level: str, fmt: str) -> dict[str, Any]:
    """The LOGGING dict for settings.py; also used by gunicorn.conf.py and Celery."""
    formatter = "json" if fmt == "json" else "plain"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "vedomains_site.observability.logs.ContextFilter"}},
        "formatters": {
            "json": {"()": "vedomains_site.observability.logs.JsonFormatter"},
            "plain": {"()": "vedomains_site.observability.logs.PlainFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": formatter,
                "filters": ["context"],
                # stdout: the container runtime ships it (awslogs); stderr would be the same
                # stream there, but stdout keeps EMF lines and log lines in order.
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "botocore": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
            # gunicorn's own loggers go through the same handler (gunicorn.conf.py).
            "gunicorn.error": {"level": level, "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": "WARNING", "handlers": ["console"], "propagate": False},
        },
    }


def default_format(debug: bool) -> str:
    return "plain" if debug else "json"


def env_format() -> str:
    """For processes that configure logging before Django's settings (gunicorn's master)."""
    value = os.environ.get("VEDOMAINS_LOG_FORMAT", "")
    if value:
        return value
    return default_format(os.environ.get("DJANGO_DEBUG", "").lower() in {"1", "true", "yes", "on"})
