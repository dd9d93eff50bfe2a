"""Django system checks for the CDN settings.

A missing or inconsistent CDN setting stops start-up with the setting's name (`manage.py
check`, runserver, migrate, the deploy's release step) instead of failing customers' domains
one by one at attach time. `domains.system_checks` lists them with the other integrations'.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.core.checks import CheckMessage, Error

STRATEGIES = ("saas-tenant", "distribution-per-domain")


def cdn_settings_problems() -> list[CheckMessage]:
    strategy = settings.VEDOMAINS_CDN_STRATEGY
    if strategy not in STRATEGIES:
        # In development too: every attach would fail on it.
        return [Error(f"VEDOMAINS_CDN_STRATEGY is {strategy!r}.",
                      hint="'saas-tenant' (the default) or 'distribution-per-domain'.",
                      id="vedomains.E107")]
    # Production (DEBUG off) only: the local stack creates the distribution and the
    # connection group in the emulator at each start and hands their ids to its processes,
    # so a development shell has none to give, and its `manage.py` commands must stay quiet.
    if settings.DEBUG:
        return []
    problems: list[CheckMessage] = []
    if strategy == "saas-tenant":
        if not settings.VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID:
            problems.append(Error(
                "VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID is not set.",
                hint="The saas-tenant strategy adds a tenant per domain to this multi-tenant "
                     "distribution (output MultiTenantDistributionId of "
                     "deploy/saas-manager.yaml), or set VEDOMAINS_CDN_STRATEGY="
                     "distribution-per-domain.",
                id="vedomains.E101"))
        if not settings.VEDOMAINS_CDN_CONNECTION_GROUP_ID:
            problems.append(Error(
                "VEDOMAINS_CDN_CONNECTION_GROUP_ID is not set.",
                hint="Without it tenants join CloudFront's default connection group, whose "
                     "routing endpoint the CNAME target does not point at (output "
                     "ConnectionGroupId of deploy/saas-manager.yaml).",
                id="vedomains.E102"))
    elif not settings.VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID:
        problems.append(Error(
            "VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID is not set.",
            hint="The distribution-per-domain strategy clones this distribution for each "
                 "domain (deploy/cloudfront.yaml).",
            id="vedomains.E104"))
    apex = list(settings.VEDOMAINS_CDN_APEX_IPS)
    for value in apex:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            problems.append(Error(
                f"VEDOMAINS_CDN_APEX_IPS has {value!r}, which is not an IP address.",
                hint="The connection group's anycast static IP list, comma-separated.",
                id="vedomains.E105"))
    if apex and strategy != "saas-tenant":
        problems.append(Error(
            "VEDOMAINS_CDN_APEX_IPS is set but the strategy is distribution-per-domain.",
            hint="Apex domains are served through the connection group's anycast IP list, "
                 "which only the saas-tenant strategy uses.",
            id="vedomains.E106"))
    return problems
