"""Environment variables no longer read, refused at start-up by name.

A deployment still setting one would otherwise run on the default without a word (a grace
of 24 hours set as VEDOMAINS_PLAN_GRACE_HOURS would silently become the 168-hour default).
Every duration now has one convention (seconds, `*_SECONDS`), and the knobs no operator
should turn are constants.
"""

from __future__ import annotations

from collections.abc import Mapping


def _seconds(new: str, factor: int, unit: str) -> str:
    return (f"was renamed {new}, in seconds: multiply the value by {factor} "
            f"(it was in {unit}).")


def _renamed(new: str) -> str:
    return f"was renamed {new} (the same value, in seconds)."


def _constant(where: str) -> str:
    return f"is no longer a setting: a constant in {where}, which no deployment should change."


RETIRED: dict[str, str] = {
    # Durations that were hours, minutes or days.
    "VEDOMAINS_FAST_CHECK_MINUTES": _seconds("VEDOMAINS_FAST_CHECK_WINDOW_SECONDS", 60, "minutes"),
    "VEDOMAINS_MAX_CHECK_HOURS": _seconds("VEDOMAINS_MAX_CHECK_INTERVAL_SECONDS", 3600, "hours"),
    "VEDOMAINS_PENDING_TIMEOUT_HOURS": _seconds("VEDOMAINS_PENDING_TIMEOUT_SECONDS", 3600,
                                                "hours"),
    "VEDOMAINS_ACTIVE_RECHECK_HOURS": _seconds("VEDOMAINS_ACTIVE_RECHECK_SECONDS", 3600, "hours"),
    "VEDOMAINS_MISCONFIGURED_GRACE_HOURS": _seconds("VEDOMAINS_MISCONFIGURED_GRACE_SECONDS",
                                                    3600, "hours"),
    "VEDOMAINS_MISCONFIGURED_RECHECK_MINUTES": _seconds(
        "VEDOMAINS_MISCONFIGURED_RECHECK_SECONDS", 60, "minutes"),
    "VEDOMAINS_WEBHOOK_RETRY_WINDOW_HOURS": _seconds("VEDOMAINS_WEBHOOK_RETRY_WINDOW_SECONDS",
                                                     3600, "hours"),
    "VEDOMAINS_PLAN_GRACE_HOURS": _seconds("VEDOMAINS_PLAN_GRACE_SECONDS", 3600, "hours"),
    "VEDOMAINS_PLAN_WARNING_HOURS": _seconds("VEDOMAINS_PLAN_WARNING_SECONDS", 3600, "hours"),
    # Durations in seconds whose name did not say so.
    "VEDOMAINS_DNS_TIMEOUT": _renamed("VEDOMAINS_DNS_TIMEOUT_SECONDS"),
    "VEDOMAINS_AWS_CONNECT_TIMEOUT": _renamed("VEDOMAINS_AWS_CONNECT_TIMEOUT_SECONDS"),
    "VEDOMAINS_AWS_READ_TIMEOUT": _renamed("VEDOMAINS_AWS_READ_TIMEOUT_SECONDS"),
    "VEDOMAINS_AWS_RATE_LIMIT_MAX_WAIT": _renamed("VEDOMAINS_AWS_RATE_LIMIT_MAX_WAIT_SECONDS"),
    "VEDOMAINS_EDGE_POSITIVE_TTL": _renamed("VEDOMAINS_EDGE_POSITIVE_TTL_SECONDS"),
    "VEDOMAINS_EDGE_NEGATIVE_TTL": _renamed("VEDOMAINS_EDGE_NEGATIVE_TTL_SECONDS"),
    "VEDOMAINS_WEBHOOK_TIMEOUT": _renamed("VEDOMAINS_WEBHOOK_TIMEOUT_SECONDS"),
    "VEDOMAINS_JWKS_TIMEOUT": _renamed("VEDOMAINS_JWKS_TIMEOUT_SECONDS"),
    "VEDOMAINS_WEB_TIMEOUT": _renamed("VEDOMAINS_WEB_TIMEOUT_SECONDS"),
    "VEDOMAINS_READINESS_TIMEOUT": _renamed("VEDOMAINS_READINESS_TIMEOUT_SECONDS"),
    # Knobs no operator should turn.
    "VEDOMAINS_DISPATCH_LIMIT": _constant("workflow/schedule.py (DISPATCH_LIMIT)"),
    "VEDOMAINS_RECONCILE_INTERVAL_SECONDS": _constant(
        "vedomains_site/celery.py (RECONCILE_INTERVAL_SECONDS)"),
    "VEDOMAINS_CERTIFICATE_SWEEP_INTERVAL_SECONDS": _constant(
        "vedomains_site/celery.py (CERTIFICATE_SWEEP_INTERVAL_SECONDS)"),
    "VEDOMAINS_NOTIFY_DISPATCH_INTERVAL_SECONDS": _constant(
        "vedomains_site/celery.py (NOTIFY_DISPATCH_INTERVAL_SECONDS)"),
    "VEDOMAINS_CERTIFICATE_TROUBLE_DAYS": _constant("workflow/certificates.py (TROUBLE_WINDOW)"),
    "VEDOMAINS_CERTIFICATE_WATCH_HOURS": _constant("workflow/certificates.py (WATCH_INTERVAL)"),
    "VEDOMAINS_CDN_WORKSPACE_PARAMETER": _constant(
        "domains/integrations/cdn.py (WORKSPACE_PARAMETER), as deploy/saas-manager.yaml "
        "declares it"),
    # Older.
    "VEDOMAINS_ALLOW_APEX": "is no longer supported: apex domains cannot be verified through "
                            "a CNAME. Remove it; customers use a subdomain such as "
                            "www.<domain>.",
}


def retired_problem(environ: Mapping[str, str]) -> str | None:
    """The first retired variable `environ` sets, as a one-line reason, or None."""
    for name, reason in RETIRED.items():
        if name in environ:
            return f"{name} {reason}"
    return None
