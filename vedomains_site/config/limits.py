"""Quotas and abuse limits: pending certificates, the daily certificate budget, the admin
sign-in throttle. Checked by `domains_settings_problems` (E005) and
`abuse_limit_settings_problems` (E06x). The API's request rates (VEDOMAINS_THROTTLE_*) are
read into REST_FRAMEWORK in settings.py.
"""

from __future__ import annotations

from vedomains_site.config.environment import env

# Stop requesting certificates beyond this many pending (the account's ACM quota).
VEDOMAINS_ACM_MAX_PENDING: int = env.int("VEDOMAINS_ACM_MAX_PENDING", default=1000)
# One workspace's pending certificates: without it a single large plan could take the whole
# account quota above and pause registration for everyone (0 = no per-workspace cap).
VEDOMAINS_ACM_MAX_PENDING_PER_WORKSPACE: int = env.int("VEDOMAINS_ACM_MAX_PENDING_PER_WORKSPACE",
                                                       default=100)
# Certificate requests per UTC day, counted in the database: ACM allows 5,000 a
# year per account by default (about 14 a day). A workspace may request max(this, its
# plan's domain limit) a day; the platform as a whole at most the second figure (0 = none).
VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY: int = env.int("VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY",
                                                     default=10)
VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY: int = env.int("VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY",
                                                    default=50)
# The most one workspace's plan may take of the platform's daily figure, in percent (1-100):
# an enterprise plan (1,000 domains) would otherwise spend the whole day for everyone.
VEDOMAINS_CERT_BUDGET_WORKSPACE_SHARE: int = env.int("VEDOMAINS_CERT_BUDGET_WORKSPACE_SHARE",
                                                     default=50)
# Admin sign-in throttle (staff/admin_security.py): this many failures per account, or per
# client address, within the lockout time lock further sign-ins out for that long.
VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ACCOUNT: int = env.int(
    "VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ACCOUNT", default=5)
VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ADDRESS: int = env.int(
    "VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ADDRESS", default=20)
VEDOMAINS_ADMIN_LOGIN_LOCKOUT_SECONDS: int = env.int("VEDOMAINS_ADMIN_LOGIN_LOCKOUT_SECONDS",
                                                     default=900)
