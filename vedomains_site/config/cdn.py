"""The CDN (domains/integrations/cdn.py). Checked by `domains.cdn_checks` (E1xx)."""

from __future__ import annotations

from vedomains_site.config.environment import env

# saas-tenant (default): one CloudFront SaaS Manager tenant per domain with a CloudFront-managed
# certificate, so the customer creates ONE record. distribution-per-domain: a distribution
# cloned from the template per domain, with an ACM certificate (two records), for accounts
# without SaaS Manager.
VEDOMAINS_CDN_STRATEGY: str = env.str("VEDOMAINS_CDN_STRATEGY", default="saas-tenant")
# distribution-per-domain clones this distribution's config.
VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID: str = env.str("VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID",
                                                      default="")
# saas-tenant: the multi-tenant distribution and the connection group (deploy/saas-manager.yaml).
VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID: str = env.str(
    "VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID", default="")
VEDOMAINS_CDN_CONNECTION_GROUP_ID: str = env.str("VEDOMAINS_CDN_CONNECTION_GROUP_ID", default="")
# The connection group's anycast static IPs: when set, apex domains are accepted and answered
# with A/AAAA records to these addresses. Empty: apex domains are refused with a clear 400.
VEDOMAINS_CDN_APEX_IPS: list[str] = env.list("VEDOMAINS_CDN_APEX_IPS", default=[])
# How often a domain waiting for CloudFront to deploy (status "deploying") is looked at.
VEDOMAINS_CDN_DEPLOY_CHECK_SECONDS: int = env.int("VEDOMAINS_CDN_DEPLOY_CHECK_SECONDS", default=30)
# After a quota/capacity error (TooMany*, EntityLimitExceeded) the domain stays pending and is
# tried again this much later; staff get an alert.
VEDOMAINS_CDN_CAPACITY_RETRY_SECONDS: int = env.int("VEDOMAINS_CDN_CAPACITY_RETRY_SECONDS",
                                                    default=300)
