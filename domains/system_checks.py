"""Django system checks for the settings of each integration.

A missing or inconsistent setting stops `manage.py check`, `migrate` (the deploy's release
step), `runserver` and every management command that runs checks, with the setting's name,
instead of failing customers' domains one by one when a check reaches the integration.

One finder per integration, each returning its problems; each app's `system_checks`
module lists its own in `SETTINGS_FINDERS` (this one: the records' and the
integrations'), and `settings_check` (registered by `DomainsConfig.ready`) runs those of
every installed app. To add checks for an integration, write a finder in its app's
module and append it to that `SETTINGS_FINDERS`. Ids by range:
E00x domains and plans, E01x DNS, E02x AWS, E03x edge, E04x webhooks and email, E05x
Celery, E06x abuse limits (certificate budget share, admin login throttle), E07x web server,
logs, Redis and database credentials, E1xx CDN, E2xx ve.ai (`veai.system_checks`).

Every check of a setting's value lives here (or in the two finders it imports); the only
other refusal is a value that cannot be parsed at all, or a retired variable, which stop
start-up in vedomains_site/config/ with the variable's name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.utils.module_loading import module_has_submodule

from domains import hostnames
from domains.cdn_checks import cdn_settings_problems
from domains.integrations import dns

Finder = Callable[[], list[CheckMessage]]


TAG = "vedomains"


# A DNS name: dot-separated LDH labels of 1-63 characters (a trailing dot is allowed).
HOSTNAME = re.compile(r"^(?=.{1,253}\.?$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*"
                      r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?$")


def _error(setting: str, problem: str, hint: str, number: int) -> Error:
    return Error(f"{setting} {problem}", hint=hint, id=f"{TAG}.E{number:03d}")


def _not_positive(names: Iterable[str]) -> list[str]:
    """The settings among `names` that are not a positive number (durations are seconds)."""
    bad = []
    for name in names:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            bad.append(name)
    return bad


def domains_settings_problems() -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    target = settings.VEDOMAINS_CNAME_TARGET
    if not target or not HOSTNAME.match(target):
        problems.append(_error(
            "VEDOMAINS_CNAME_TARGET", f"is {target!r}, which is not a DNS name.",
            "The name customers point their CNAME at, such as domain.ve.ai.", 1))
    if not settings.VEDOMAINS_PLATFORM_DOMAIN or not HOSTNAME.match(
            settings.VEDOMAINS_PLATFORM_DOMAIN):
        problems.append(_error(
            "VEDOMAINS_PLATFORM_DOMAIN", "is not a DNS name.",
            "The platform's own zone (ve.ai): its hosts are never custom domains.", 2))
    if settings.VEDOMAINS_OWNERSHIP_TXT not in {"always", "previously-held"}:
        problems.append(_error(
            "VEDOMAINS_OWNERSHIP_TXT", f"is {settings.VEDOMAINS_OWNERSHIP_TXT!r}.",
            "'always' (every domain proves ownership with a TXT record) or "
            "'previously-held' (only hostnames another workspace has held).", 7))
    limits: Any = settings.VEDOMAINS_PLAN_LIMITS
    if not isinstance(limits, dict):
        problems.append(_error(
            "VEDOMAINS_PLAN_LIMITS", "is not a JSON object.",
            'JSON such as {"pro": 3}: how many custom domains each plan may hold.', 3))
        return problems
    bad_plans = [plan for plan, limit in limits.items()
                 if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0]
    if bad_plans:
        problems.append(_error(
            "VEDOMAINS_PLAN_LIMITS", f"has no whole number >= 0 for {', '.join(bad_plans)}.",
            'JSON such as {"pro": 3}: how many custom domains each plan may hold.', 3))
    # A key no plan name can equal ("Pro", "pro "): that plan would silently get 0.
    bad_names = [repr(plan) for plan in limits if not hostnames.PLAN_NAME.match(str(plan))]
    if bad_names:
        problems.append(_error(
            "VEDOMAINS_PLAN_LIMITS", f"has keys that are not plan names: {', '.join(bad_names)}.",
            "Plan names are 1-20 lower-case letters, digits, '_', '.', '-', as the main app "
            "sends them.", 3))
    durations = _not_positive([
        "VEDOMAINS_FAST_CHECK_SECONDS", "VEDOMAINS_FAST_CHECK_WINDOW_SECONDS",
        "VEDOMAINS_CHECK_INTERVAL_SECONDS", "VEDOMAINS_MAX_CHECK_INTERVAL_SECONDS",
        "VEDOMAINS_CHECK_LEASE_SECONDS", "VEDOMAINS_DISPATCH_LEASE_SECONDS",
        "VEDOMAINS_PENDING_TIMEOUT_SECONDS", "VEDOMAINS_ACTIVE_RECHECK_SECONDS",
        "VEDOMAINS_MISCONFIGURED_GRACE_SECONDS", "VEDOMAINS_MISCONFIGURED_RECHECK_SECONDS",
        "VEDOMAINS_CLEANUP_RETRY_SECONDS", "VEDOMAINS_DISPATCH_INTERVAL_SECONDS",
    ])
    for name in durations:
        problems.append(_error(
            name, "must be greater than zero.",
            "A zero or negative interval would check (or give up on) domains at once.", 4))
    if _not_positive(["VEDOMAINS_ACM_MAX_PENDING"]):
        problems.append(_error(
            "VEDOMAINS_ACM_MAX_PENDING", "must be at least 1.",
            "Below 1 every registration is refused as over the certificate quota.", 5))
    for name in ("VEDOMAINS_DNS_SWEEP_INTERVAL_SECONDS", "VEDOMAINS_DNS_SWEEP_LIMIT",
                 "VEDOMAINS_DNS_SWEEP_CHECKS"):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            problems.append(_error(
                name, "must be a number >= 0.",
                "The DNS-ready sweep: seconds between ticks (0: off), pending domains looked "
                "up per tick, ready ones checked in the tick's own task.", 6))
    return problems


def dns_settings_problems() -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    for entry in settings.VEDOMAINS_DNS_NAMESERVERS:
        if not entry.strip():
            continue
        try:
            # dnspython takes any string and fails only at query time: insist on an address.
            ipaddress.ip_address(dns.parse_nameserver(entry).address)
        except ValueError:
            problems.append(_error(
                "VEDOMAINS_DNS_NAMESERVERS", f"has {entry!r}, which is not a nameserver.",
                "Comma-separated IPv4 or IPv6 addresses, each with an optional port "
                "(1.2.3.4:53, [::1]:5353); empty for the system resolver.", 10))
    for name in _not_positive(["VEDOMAINS_DNS_TIMEOUT_SECONDS", "VEDOMAINS_DNS_CONCURRENCY"]):
        problems.append(_error(
            name, "must be greater than zero.",
            "Seconds per lookup (VEDOMAINS_DNS_TIMEOUT_SECONDS) and lookups at once "
            "(VEDOMAINS_DNS_CONCURRENCY).", 11))
    return problems


def aws_settings_problems() -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    if not settings.VEDOMAINS_AWS_REGION:
        problems.append(_error(
            "VEDOMAINS_AWS_REGION", "is empty.",
            "The home region of the edge table (ACM for CloudFront is always us-east-1).", 20))
    endpoint = settings.VEDOMAINS_AWS_ENDPOINT_URL
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(_error(
                "VEDOMAINS_AWS_ENDPOINT_URL", f"is {endpoint!r}, which is not an http(s) URL.",
                "Leave it empty for real AWS; set it to the emulator's URL locally.", 21))
    for name in _not_positive(["VEDOMAINS_AWS_CONNECT_TIMEOUT_SECONDS",
                               "VEDOMAINS_AWS_READ_TIMEOUT_SECONDS"]):
        problems.append(_error(
            name, "must be greater than zero.",
            "Seconds; a call with no timeout can hold a worker for ever.", 22))
    limits: Any = getattr(settings, "VEDOMAINS_AWS_RATE_LIMITS", {})
    if not isinstance(limits, dict):
        problems.append(_error(
            "VEDOMAINS_AWS_RATE_LIMITS", "is not a JSON object.",
            'Such as {"acm.DescribeCertificate": 8}: calls a second per operation.', 23))
    else:
        # A bad rate would otherwise surface inside every AWS call (the limiter runs in
        # botocore's before-send hook), and a negative one would make the limiter sleep < 0.
        bad = [name for name, rate in limits.items()
               if isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 0]
        if bad:
            problems.append(_error(
                "VEDOMAINS_AWS_RATE_LIMITS", f"has no rate >= 0 for {', '.join(bad)}.",
                "Calls a second (0 = not limited).", 23))
        unnamed = [repr(name) for name in limits if "." not in str(name)]
        if unnamed:
            problems.append(_error(
                "VEDOMAINS_AWS_RATE_LIMITS", f"has keys that name no operation: "
                f"{', '.join(unnamed)}.",
                'Keys are "service.Operation" or "service.*", such as "acm.RequestCertificate".',
                23))
    return problems


def celery_settings_problems() -> list[CheckMessage]:
    if not settings.CELERY_BROKER_URL:
        return [_error("CELERY_BROKER_URL", "is empty.",
                       "Checks, edge pushes and notifications are queued through it.", 50)]
    return []


def abuse_limit_settings_problems() -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    share = settings.VEDOMAINS_CERT_BUDGET_WORKSPACE_SHARE
    if isinstance(share, bool) or not isinstance(share, int) or not 1 <= share <= 100:
        problems.append(_error(
            "VEDOMAINS_CERT_BUDGET_WORKSPACE_SHARE", f"is {share!r}, not a percentage 1-100.",
            "The most one workspace may take of VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY.", 60))
    else:
        platform = settings.VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY
        base = settings.VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY
        if platform > 0 and base > max(1, platform * share // 100):
            problems.append(_error(
                "VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY",
                f"({base}) is more than VEDOMAINS_CERT_BUDGET_WORKSPACE_SHARE ({share}%) of "
                f"VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY ({platform}).",
                "Lower it, or raise the share or the platform figure: one workspace must "
                "not be able to spend everyone's certificates for the day.", 61))
    for name in _not_positive(["VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ACCOUNT",
                               "VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ADDRESS",
                               "VEDOMAINS_ADMIN_LOGIN_LOCKOUT_SECONDS"]):
        problems.append(_error(
            name, "must be greater than zero.",
            "Failures per account or client address before the admin sign-in locks, and "
            "how long the lock lasts (seconds).", 62))
    return problems


def web_settings_problems() -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    allowed = settings.VEDOMAINS_WEB_FORWARDED_ALLOW_IPS
    bad = []
    for entry in allowed:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            bad.append(entry)
    if bad or not allowed or "*" in allowed:
        # "*" would trust X-Forwarded-* from anything that reaches the port (the metrics
        # scraper's network, say), letting it choose the client address and scheme.
        problems.append(_error(
            "VEDOMAINS_WEB_FORWARDED_ALLOW_IPS",
            f"must list IP addresses or networks (not '*'); got {', '.join(allowed) or 'nothing'}.",
            "Give the load balancer's subnets, e.g. 10.0.0.0/24,10.0.1.0/24.", 70))
    if settings.REDIS_PASSWORD and any(c in settings.REDIS_PASSWORD for c in '@"/ '):
        problems.append(_error(
            "REDIS_PASSWORD", "contains a character ElastiCache AUTH tokens may not hold.",
            "Use 16-128 printable characters other than @, \", / and space.", 71))
    if settings.VEDOMAINS_LOG_FORMAT not in {"json", "plain"}:
        problems.append(_error(
            "VEDOMAINS_LOG_FORMAT", f"is {settings.VEDOMAINS_LOG_FORMAT!r}.",
            "'json' (production), 'plain', or empty for the default by DJANGO_DEBUG.", 75))
    problems.extend(_database_password_problems())
    return problems


def _database_password_problems() -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    for name in ("DATABASE_PASSWORD_SECRET_ARN", "DATABASE_APP_USER_SECRET_ARN"):
        value = getattr(settings, name)
        if value and not re.match(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:",
                                  value):
            problems.append(_error(name, "is not a Secrets Manager secret ARN.",
                                   "arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME", 72))
    if settings.DATABASE_PASSWORD_SECRET_ARN and settings.DATABASE_PASSWORD_FILE:
        problems.append(_error("DATABASE_PASSWORD_FILE", "is set with "
                               "DATABASE_PASSWORD_SECRET_ARN: give one password source.",
                               "Keep the secret (production) or the file.", 73))
    if _not_positive(["DATABASE_PASSWORD_CACHE_SECONDS"]):
        problems.append(_error("DATABASE_PASSWORD_CACHE_SECONDS", "must be a positive number.",
                               "60 reads the password at most once a minute.", 74))
    return problems


# This app's finders; each app above lists its own in the SETTINGS_FINDERS of its
# `system_checks` module, and `settings_finders` gathers them all.
SETTINGS_FINDERS: list[Finder] = [
    domains_settings_problems,
    dns_settings_problems,
    aws_settings_problems,
    cdn_settings_problems,
    celery_settings_problems,
    abuse_limit_settings_problems,
    web_settings_problems,
]


def settings_finders() -> list[Finder]:
    """Every installed app's finders, in INSTALLED_APPS order: found by module name,
    as the admin finds each app's `admin` module, so this app needs no import of the
    apps above it."""
    finders: list[Finder] = []
    for config in apps.get_app_configs():
        if module_has_submodule(config.module, "system_checks"):
            module = import_module(f"{config.name}.system_checks")
            finders += getattr(module, "SETTINGS_FINDERS", [])
    return finders


def settings_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [problem for finder in settings_finders() for problem in finder()]


def system_checks_register() -> None:
    register(settings_check, TAG)
