"""Webhooks and notification emails (notifications/sending.py, notifications/outbox.py).
Checked by `notification_settings_problems` (E04x)."""

from __future__ import annotations

from vedomains_site.config.environment import env

# Webhook POSTs: one timeout for connect and each read; retries back off exponentially
# (with jitter) from the base delay up to the cap, for the retry window after the event.
VEDOMAINS_WEBHOOK_TIMEOUT_SECONDS: float = env.float("VEDOMAINS_WEBHOOK_TIMEOUT_SECONDS",
                                                     default=10.0)
# Webhooks go to public addresses only (SSRF); these networks (CIDRs) are allowed
# although not public: a receiver inside the VPC, or loopback for the local stack and tests.
VEDOMAINS_WEBHOOK_ALLOWED_NETWORKS: list[str] = env.list("VEDOMAINS_WEBHOOK_ALLOWED_NETWORKS",
                                                         default=[])
VEDOMAINS_WEBHOOK_RETRY_BASE_SECONDS: int = env.int("VEDOMAINS_WEBHOOK_RETRY_BASE_SECONDS",
                                                    default=30)
VEDOMAINS_WEBHOOK_RETRY_MAX_SECONDS: int = env.int("VEDOMAINS_WEBHOOK_RETRY_MAX_SECONDS",
                                                   default=7200)
VEDOMAINS_WEBHOOK_RETRY_WINDOW_SECONDS: int = env.int("VEDOMAINS_WEBHOOK_RETRY_WINDOW_SECONDS",
                                                      default=86400)
