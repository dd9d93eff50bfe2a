"""Missing or inconsistent CDN settings are system checks, not failed customer domains."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from domains.cdn_checks import cdn_settings_problems


@pytest.fixture(autouse=True)
def _production(settings: Any) -> None:
    settings.DEBUG = False


def _ids(settings: Any) -> list[str]:
    return [p.id for p in cdn_settings_problems()]


def test_in_development_they_stay_quiet(settings: Any) -> None:
    settings.DEBUG = True
    settings.VEDOMAINS_CDN_STRATEGY = "saas-tenant"
    settings.VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID = ""
    assert cdn_settings_problems() == []


def test_saas_tenant_needs_its_distribution_and_connection_group(settings: Any) -> None:
    settings.VEDOMAINS_CDN_STRATEGY = "saas-tenant"
    settings.VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID = ""
    settings.VEDOMAINS_CDN_CONNECTION_GROUP_ID = ""
    assert _ids(settings) == ["vedomains.E101", "vedomains.E102"]
    settings.VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID = "EMT"
    settings.VEDOMAINS_CDN_CONNECTION_GROUP_ID = "cg_1"
    assert _ids(settings) == []


def test_per_domain_needs_its_template(settings: Any) -> None:
    settings.VEDOMAINS_CDN_STRATEGY = "distribution-per-domain"
    settings.VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID = ""
    settings.VEDOMAINS_CDN_APEX_IPS = []
    assert _ids(settings) == ["vedomains.E104"]


def test_apex_ips_must_be_addresses_and_need_saas(settings: Any) -> None:
    settings.VEDOMAINS_CDN_STRATEGY = "distribution-per-domain"
    settings.VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID = "ETEMPLATE"
    settings.VEDOMAINS_CDN_APEX_IPS = ["203.0.113.10", "not-an-ip"]
    assert _ids(settings) == ["vedomains.E105", "vedomains.E106"]


def test_check_command_stops_with_the_setting_name(settings: Any) -> None:
    settings.VEDOMAINS_CDN_STRATEGY = "saas-tenant"
    settings.VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID = ""
    settings.VEDOMAINS_CDN_CONNECTION_GROUP_ID = "cg_1"
    with pytest.raises(SystemCheckError, match="VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID"):
        call_command("check")
