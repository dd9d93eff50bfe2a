"""Each integration's missing or inconsistent setting is a system check naming the setting."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import Error
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from domains import system_checks

# A configuration the checks accept, as production would give it.
VALID = {
    "DEBUG": False,
    "VEDOMAINS_CDN_STRATEGY": "distribution-per-domain",
    "VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID": "ETEMPLATE",
    "VEDOMAINS_DNS_NAMESERVERS": ["127.0.0.1:5353", "[::1]:53", "9.9.9.9"],
    "VEDOMAINS_AWS_ENDPOINT_URL": None,
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "EMAIL_HOST": "smtp.example.com",
}


def problems(**overrides: Any) -> list[tuple[str, str]]:
    """(id, message) of every problem the checks find with `overrides` over VALID."""
    with override_settings(**{**VALID, **overrides}):
        return [(p.id or "", p.msg) for p in system_checks.settings_check()]


def test_a_valid_configuration_has_no_problem() -> None:
    assert problems() == []


@pytest.mark.parametrize(
    ("overrides", "check_id", "setting"),
    [
        ({"VEDOMAINS_CNAME_TARGET": "not a name"}, "vedomains.E001", "VEDOMAINS_CNAME_TARGET"),
        ({"VEDOMAINS_CNAME_TARGET": ""}, "vedomains.E001", "VEDOMAINS_CNAME_TARGET"),
        # The platform domain and the region feed the edge config too, which says so (E031).
        ({"VEDOMAINS_PLATFORM_DOMAIN": "-ve.ai"}, "vedomains.E002+E031",
         "VEDOMAINS_PLATFORM_DOMAIN"),
        ({"VEDOMAINS_PLAN_LIMITS": {"pro": -1, "free": 0}}, "vedomains.E003",
         "VEDOMAINS_PLAN_LIMITS"),
        ({"VEDOMAINS_PLAN_LIMITS": {"pro": "3"}}, "vedomains.E003", "VEDOMAINS_PLAN_LIMITS"),
        # A key the sync and the admin can never match (plan names are lower-case).
        ({"VEDOMAINS_PLAN_LIMITS": {"Pro": 3}}, "vedomains.E003", "VEDOMAINS_PLAN_LIMITS"),
        ({"VEDOMAINS_PLAN_LIMITS": {"pro ": 3}}, "vedomains.E003", "VEDOMAINS_PLAN_LIMITS"),
        ({"VEDOMAINS_PLAN_LIMITS": [3]}, "vedomains.E003", "VEDOMAINS_PLAN_LIMITS"),
        ({"VEDOMAINS_OWNERSHIP_TXT": "sometimes"}, "vedomains.E007", "VEDOMAINS_OWNERSHIP_TXT"),
        ({"VEDOMAINS_MISCONFIGURED_GRACE_SECONDS": 0}, "vedomains.E004",
         "VEDOMAINS_MISCONFIGURED_GRACE_SECONDS"),
        ({"VEDOMAINS_FAST_CHECK_WINDOW_SECONDS": -1}, "vedomains.E004",
         "VEDOMAINS_FAST_CHECK_WINDOW_SECONDS"),
        ({"VEDOMAINS_PENDING_TIMEOUT_SECONDS": 0}, "vedomains.E004",
         "VEDOMAINS_PENDING_TIMEOUT_SECONDS"),
        ({"VEDOMAINS_CHECK_INTERVAL_SECONDS": -5}, "vedomains.E004",
         "VEDOMAINS_CHECK_INTERVAL_SECONDS"),
        ({"VEDOMAINS_ACM_MAX_PENDING": 0}, "vedomains.E005", "VEDOMAINS_ACM_MAX_PENDING"),
        ({"VEDOMAINS_DNS_SWEEP_INTERVAL_SECONDS": -1}, "vedomains.E006",
         "VEDOMAINS_DNS_SWEEP_INTERVAL_SECONDS"),
        ({"VEDOMAINS_DNS_SWEEP_LIMIT": "many"}, "vedomains.E006", "VEDOMAINS_DNS_SWEEP_LIMIT"),
        ({"VEDOMAINS_DNS_NAMESERVERS": ["dns.google"]}, "vedomains.E010",
         "VEDOMAINS_DNS_NAMESERVERS"),
        ({"VEDOMAINS_DNS_NAMESERVERS": ["1.2.3.4:port"]}, "vedomains.E010",
         "VEDOMAINS_DNS_NAMESERVERS"),
        ({"VEDOMAINS_DNS_TIMEOUT_SECONDS": 0}, "vedomains.E011", "VEDOMAINS_DNS_TIMEOUT_SECONDS"),
        ({"VEDOMAINS_DNS_CONCURRENCY": 0}, "vedomains.E011", "VEDOMAINS_DNS_CONCURRENCY"),
        ({"VEDOMAINS_AWS_REGION": ""}, "vedomains.E020+E031", "VEDOMAINS_AWS_REGION"),
        ({"VEDOMAINS_AWS_ENDPOINT_URL": "localhost:5000"}, "vedomains.E021",
         "VEDOMAINS_AWS_ENDPOINT_URL"),
        ({"VEDOMAINS_AWS_READ_TIMEOUT_SECONDS": 0.0}, "vedomains.E022",
         "VEDOMAINS_AWS_READ_TIMEOUT_SECONDS"),
        ({"VEDOMAINS_AWS_RATE_LIMITS": {"acm.DescribeCertificate": -1}}, "vedomains.E023",
         "VEDOMAINS_AWS_RATE_LIMITS"),
        ({"VEDOMAINS_AWS_RATE_LIMITS": [8]}, "vedomains.E023", "VEDOMAINS_AWS_RATE_LIMITS"),
        ({"VEDOMAINS_AWS_RATE_LIMITS": {"acm": 4}}, "vedomains.E023",
         "VEDOMAINS_AWS_RATE_LIMITS"),
        ({"VEDOMAINS_EDGE_TABLE": ""}, "vedomains.E030", "VEDOMAINS_EDGE_TABLE"),
        ({"VEDOMAINS_EDGE_MODE": "sideways"}, "vedomains.E031", "VEDOMAINS_EDGE_MODE"),
        ({"VEDOMAINS_EDGE_NEGATIVE_TTL_SECONDS": -1}, "vedomains.E031",
         "VEDOMAINS_EDGE_NEGATIVE_TTL_SECONDS"),
        ({"VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID": ""}, "vedomains.E104",
         "VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID"),
        ({"VEDOMAINS_CDN_STRATEGY": "saas-tenant", "VEDOMAINS_CDN_CONNECTION_GROUP_ID": "cg_1",
          "VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID": ""}, "vedomains.E101",
         "VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID"),
        ({"VEDOMAINS_WEBHOOK_TIMEOUT_SECONDS": 0}, "vedomains.E040",
         "VEDOMAINS_WEBHOOK_TIMEOUT_SECONDS"),
        ({"VEDOMAINS_WEBHOOK_RETRY_BASE_SECONDS": 9000,
          "VEDOMAINS_WEBHOOK_RETRY_MAX_SECONDS": 60}, "vedomains.E041",
         "VEDOMAINS_WEBHOOK_RETRY_BASE_SECONDS"),
        ({"DEFAULT_FROM_EMAIL": ""}, "vedomains.E042", "DJANGO_DEFAULT_FROM_EMAIL"),
        ({"EMAIL_HOST": ""}, "vedomains.E043", "EMAIL_HOST"),
        ({"CELERY_BROKER_URL": ""}, "vedomains.E050", "CELERY_BROKER_URL"),
        ({"VEDOMAINS_LOG_FORMAT": "xml"}, "vedomains.E075", "VEDOMAINS_LOG_FORMAT"),
        ({"VEDOMAINS_CDN_STRATEGY": "one-big-distribution"}, "vedomains.E107",
         "VEDOMAINS_CDN_STRATEGY"),
        # ve.ai.
        ({"VEDOMAINS_JWT_JWKS_URL": "ve.ai/.well-known/jwks.json"}, "vedomains.E200",
         "VEDOMAINS_JWT_JWKS_URL"),
        ({"VEDOMAINS_JWT_JWKS_URL": "file:///etc/passwd"}, "vedomains.E200",
         "VEDOMAINS_JWT_JWKS_URL"),
        ({"VEDOMAINS_JWT_JWKS_URL": "http://ve.ai/jwks.json"}, "vedomains.E200",
         "VEDOMAINS_JWT_JWKS_URL"),
        ({"VEDOMAINS_JWT_JWKS_URL": "https://ve.ai/jwks.json",
          "VEDOMAINS_JWT_PUBLIC_KEY": "x"}, "vedomains.E201", "VEDOMAINS_JWT_PUBLIC_KEY"),
        ({"VEDOMAINS_JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nnope"}, "vedomains.E202",
         "VEDOMAINS_JWT_PUBLIC_KEY"),
        ({"VEDOMAINS_JWT_ISSUER": ""}, "vedomains.E203", "VEDOMAINS_JWT_ISSUER"),
        ({"VEDOMAINS_JWT_AUDIENCE": " "}, "vedomains.E204", "VEDOMAINS_JWT_AUDIENCE"),
        ({"VEDOMAINS_JWT_ISSUER_ID": ""}, "vedomains.E211", "VEDOMAINS_JWT_ISSUER_ID"),
        ({"VEDOMAINS_JWT_ALGORITHMS": []}, "vedomains.E205", "VEDOMAINS_JWT_ALGORITHMS"),
        ({"VEDOMAINS_JWT_ALGORITHMS": ["RS256", "HS256"]}, "vedomains.E205",
         "VEDOMAINS_JWT_ALGORITHMS"),
        ({"VEDOMAINS_JWT_LEEWAY_SECONDS": -1}, "vedomains.E206",
         "VEDOMAINS_JWT_LEEWAY_SECONDS"),
        ({"VEDOMAINS_JWKS_TIMEOUT_SECONDS": 0}, "vedomains.E207", "VEDOMAINS_JWKS_TIMEOUT_SECONDS"),
        ({"VEDOMAINS_PLAN_ENFORCE_INTERVAL_SECONDS": 0}, "vedomains.E207",
         "VEDOMAINS_PLAN_ENFORCE_INTERVAL_SECONDS"),
        ({"VEDOMAINS_SERVICE_SECRETS": ["short"]}, "vedomains.E208",
         "VEDOMAINS_SERVICE_SECRETS"),
        ({"VEDOMAINS_PLAN_WARNING_SECONDS": 30 * 86400}, "vedomains.E209",
         "VEDOMAINS_PLAN_WARNING_SECONDS"),
        ({"VEDOMAINS_CORS_ALLOWED_ORIGINS": ["https://app.ve.ai/"]}, "vedomains.E210",
         "VEDOMAINS_CORS_ALLOWED_ORIGINS"),
    ],
)
def test_each_check_fires_and_names_its_setting(overrides: dict[str, Any], check_id: str,
                                                 setting: str) -> None:
    first, *more = check_id.split("+")
    expected = [first, *(f"vedomains.{m}" for m in more)]
    found = problems(**overrides)
    assert [i for i, _ in found] == expected
    assert all(setting in message for _, message in found)


def test_an_unknown_cdn_strategy_is_reported_in_development_too() -> None:
    assert [i for i, _ in problems(DEBUG=True, VEDOMAINS_CDN_STRATEGY="x")] == ["vedomains.E107"]


def test_missing_cdn_resources_are_not_reported_in_development() -> None:
    """`./dev run` creates them in the emulator at each start and hands their ids to its
    processes; a development shell has none, and its commands must stay quiet."""
    assert problems(DEBUG=True, VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID="",
                    VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID="") == []


def test_every_finder_is_registered_and_each_message_is_an_error() -> None:
    assert len(system_checks.settings_finders()) == 10
    with override_settings(**{**VALID, "VEDOMAINS_DNS_TIMEOUT_SECONDS": 0,
                              "CELERY_BROKER_URL": ""}):
        found = system_checks.settings_check()
    assert all(isinstance(p, Error) for p in found) and len(found) == 2


def test_the_check_command_stops_with_the_setting_name() -> None:
    with override_settings(**{**VALID, "VEDOMAINS_DNS_NAMESERVERS": ["resolver.local"]}), \
            pytest.raises(SystemCheckError, match="VEDOMAINS_DNS_NAMESERVERS"):
        call_command("check")
    with override_settings(**VALID):
        call_command("check")  # and passes once the setting is right
