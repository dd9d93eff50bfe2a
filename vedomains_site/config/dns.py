"""DNS lookups (domains/integrations/dns.py). Checked by `dns_settings_problems` (E01x)."""

from __future__ import annotations

from vedomains_site.config.environment import env

# "host:port" entries; empty means the system resolver.
VEDOMAINS_DNS_NAMESERVERS: list[str] = env.list("VEDOMAINS_DNS_NAMESERVERS", default=[])
VEDOMAINS_DNS_TIMEOUT_SECONDS: float = env.float("VEDOMAINS_DNS_TIMEOUT_SECONDS", default=3.0)
VEDOMAINS_DNS_CONCURRENCY: int = env.int("VEDOMAINS_DNS_CONCURRENCY", default=100)
