"""System checks for webhooks and email (ids E04x); `domains.system_checks` runs them."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage

from domains.system_checks import Finder, _error, _not_positive


def notification_settings_problems() -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    for name in _not_positive([
        "VEDOMAINS_WEBHOOK_TIMEOUT_SECONDS", "VEDOMAINS_WEBHOOK_RETRY_BASE_SECONDS",
        "VEDOMAINS_WEBHOOK_RETRY_MAX_SECONDS", "VEDOMAINS_WEBHOOK_RETRY_WINDOW_SECONDS",
    ]):
        problems.append(_error(name, "must be greater than zero.",
                               "Webhook deliveries and emails are sent and retried by it.", 40))
    if (settings.VEDOMAINS_WEBHOOK_RETRY_BASE_SECONDS
            > settings.VEDOMAINS_WEBHOOK_RETRY_MAX_SECONDS):
        problems.append(_error(
            "VEDOMAINS_WEBHOOK_RETRY_BASE_SECONDS",
            "is larger than VEDOMAINS_WEBHOOK_RETRY_MAX_SECONDS.",
            "The first retry's delay cannot exceed the cap on every delay.", 41))
    if not settings.DEFAULT_FROM_EMAIL:
        problems.append(_error(
            "DJANGO_DEFAULT_FROM_EMAIL", "is empty.",
            "Owner emails need a sender address.", 42))
    if settings.EMAIL_BACKEND.endswith("smtp.EmailBackend") and not settings.EMAIL_HOST:
        problems.append(_error(
            "EMAIL_HOST", "is empty while DJANGO_EMAIL_BACKEND is SMTP.",
            "The SMTP server owner emails are sent through.", 43))
    return problems


# Run by `domains.system_checks.settings_check` with every app's finders.
SETTINGS_FINDERS: list[Finder] = [
    notification_settings_problems,
]
