"""Checks and their schedule: the dispatcher, the adaptive pace, the lease, the give-ups.

Durations in seconds. Checked by `domains.system_checks.domains_settings_problems` (E004,
E006). The dispatcher tick is cheap (one indexed query); each domain carries its own adaptive
next_check_at, so a tick every few seconds does not mean a check every tick.
"""

from __future__ import annotations

from vedomains_site.config.environment import env

VEDOMAINS_DISPATCH_INTERVAL_SECONDS: float = env.float("VEDOMAINS_DISPATCH_INTERVAL_SECONDS",
                                                       default=10.0)
# Base interval after the fast window, then growing up to the maximum.
VEDOMAINS_CHECK_INTERVAL_SECONDS: int = env.int("VEDOMAINS_CHECK_INTERVAL_SECONDS", default=300)
VEDOMAINS_MAX_CHECK_INTERVAL_SECONDS: int = env.int("VEDOMAINS_MAX_CHECK_INTERVAL_SECONDS",
                                                    default=21600)
# After registration or "verify": a check this often, for this long.
VEDOMAINS_FAST_CHECK_SECONDS: int = env.int("VEDOMAINS_FAST_CHECK_SECONDS", default=10)
VEDOMAINS_FAST_CHECK_WINDOW_SECONDS: int = env.int("VEDOMAINS_FAST_CHECK_WINDOW_SECONDS",
                                                   default=900)
# A running check moves next_check_at this far ahead, so a crashed worker's domain comes back.
VEDOMAINS_CHECK_LEASE_SECONDS: int = env.int("VEDOMAINS_CHECK_LEASE_SECONDS", default=300)
# A queued check is not queued again for this long; a check whose message was lost runs
# once the lease ends. Longer than the queue's worst expected wait, or a backlog repeats.
VEDOMAINS_DISPATCH_LEASE_SECONDS: int = env.int("VEDOMAINS_DISPATCH_LEASE_SECONDS", default=600)
# Due domains per queued task.
VEDOMAINS_DISPATCH_CHUNK: int = max(1, env.int("VEDOMAINS_DISPATCH_CHUNK", default=25))
# DNS-ready first (workflow/dns_sweep.py): every tick, a DNS-only look at this many pending
# domains that are not due (no AWS call), so one whose CNAME was just set is checked within
# seconds whatever its backed-off schedule; at most VEDOMAINS_DNS_SWEEP_CHECKS of those found
# ready are checked in the tick's own task, the rest by the dispatcher. Interval 0: off.
VEDOMAINS_DNS_SWEEP_INTERVAL_SECONDS: float = env.float("VEDOMAINS_DNS_SWEEP_INTERVAL_SECONDS",
                                                        default=10.0)
VEDOMAINS_DNS_SWEEP_LIMIT: int = env.int("VEDOMAINS_DNS_SWEEP_LIMIT", default=2000)
VEDOMAINS_DNS_SWEEP_CHECKS: int = env.int("VEDOMAINS_DNS_SWEEP_CHECKS", default=50)
# A pending domain fails after this (ACM gives up on a certificate after 72 hours).
VEDOMAINS_PENDING_TIMEOUT_SECONDS: int = env.int("VEDOMAINS_PENDING_TIMEOUT_SECONDS",
                                                 default=259200)
VEDOMAINS_ACTIVE_RECHECK_SECONDS: int = env.int("VEDOMAINS_ACTIVE_RECHECK_SECONDS",
                                                default=86400)
# A misconfigured domain is detached after the grace, and looked at this often meanwhile.
VEDOMAINS_MISCONFIGURED_GRACE_SECONDS: int = env.int("VEDOMAINS_MISCONFIGURED_GRACE_SECONDS",
                                                     default=259200)
VEDOMAINS_MISCONFIGURED_RECHECK_SECONDS: int = env.int("VEDOMAINS_MISCONFIGURED_RECHECK_SECONDS",
                                                       default=1800)
# How soon a removal's cleanup looks again at a distribution that is still deploying.
VEDOMAINS_CLEANUP_RETRY_SECONDS: int = env.int("VEDOMAINS_CLEANUP_RETRY_SECONDS", default=30)
