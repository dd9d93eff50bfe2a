"""Domains and plans: which names customers may register, how ownership is proved, how many.

Checked by `domains.system_checks.domains_settings_problems` (E00x).
"""

from __future__ import annotations

from typing import Any

from vedomains_site.config.environment import env

# The name customers point their CNAME at, and the platform's own zones, which are never
# accepted as custom domains.
VEDOMAINS_CNAME_TARGET: str = env.str("VEDOMAINS_CNAME_TARGET", default="domain.ve.ai").lower()
VEDOMAINS_PLATFORM_DOMAIN: str = env.str("VEDOMAINS_PLATFORM_DOMAIN", default="ve.ai").lower()
VEDOMAINS_RESERVED_DOMAINS: list[str] = env.list("VEDOMAINS_RESERVED_DOMAINS", default=[])
# "always": every domain proves ownership with a TXT record; "previously-held": only
# hostnames another workspace has held before, in any status, unless it released them
# explicitly (takeover protection).
VEDOMAINS_OWNERSHIP_TXT: str = env.str("VEDOMAINS_OWNERSHIP_TXT", default="previously-held")

# Domains per plan: the JSON object is merged over these (a plan it does not name keeps its
# figure). Anything but an object is kept as given, for the system check to name (E003).
_BUILT_IN_PLAN_LIMITS = {"free": 0, "pro": 3, "business": 25, "enterprise": 1000}


def _over_built_in(limits: Any) -> Any:
    return {**_BUILT_IN_PLAN_LIMITS, **limits} if isinstance(limits, dict) else limits


VEDOMAINS_PLAN_LIMITS: dict[str, int] = _over_built_in(env.json("VEDOMAINS_PLAN_LIMITS",
                                                                 default={}))
