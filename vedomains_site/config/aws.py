"""AWS clients (domains/integrations/aws.py): endpoint, region, timeouts, the shared rate
limiter. Checked by `aws_settings_problems` (E02x).

ACM certificates for CloudFront must live in us-east-1.
https://docs.aws.amazon.com/acm/latest/userguide/acm-regions.html
"""

from __future__ import annotations

from typing import Any

from vedomains_site.config.environment import env, redis_auth

# Empty: real AWS; the emulator's URL locally and in tests.
VEDOMAINS_AWS_ENDPOINT_URL: str | None = env.str("VEDOMAINS_AWS_ENDPOINT_URL", default="") or None
VEDOMAINS_AWS_REGION: str = env.str("VEDOMAINS_AWS_REGION", default="us-east-1")
VEDOMAINS_AWS_CONNECT_TIMEOUT_SECONDS: float = env.float("VEDOMAINS_AWS_CONNECT_TIMEOUT_SECONDS",
                                                         default=3.0)
VEDOMAINS_AWS_READ_TIMEOUT_SECONDS: float = env.float("VEDOMAINS_AWS_READ_TIMEOUT_SECONDS",
                                                      default=10.0)
# Calls a second per "service.Operation" (or "service.*" for one bucket shared by the
# service's other operations), for the whole fleet: AWS throttles per account. The defaults
# are 80 % of ACM's documented rates (the rest is left to other tools in the account);
# CloudFront publishes no per-operation rates. DynamoDB (on-demand) is not limited.
VEDOMAINS_AWS_RATE_LIMITS: dict[str, Any] = env.json(
    "VEDOMAINS_AWS_RATE_LIMITS",
    default={
        "acm.RequestCertificate": 4,
        "acm.DescribeCertificate": 8,
        "acm.DeleteCertificate": 8,
        "acm.ListCertificates": 6,
        "cloudfront.*": 8,
    },
)
# How long a call waits for a token before it is retried later as a transient error.
VEDOMAINS_AWS_RATE_LIMIT_MAX_WAIT_SECONDS: float = env.float(
    "VEDOMAINS_AWS_RATE_LIMIT_MAX_WAIT_SECONDS", default=5.0)
# Where the shared buckets live; "" = the Celery broker (settings.py fills it in).
VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL: str = redis_auth(env.str(
    "VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL", default=""))
