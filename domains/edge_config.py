"""The edge function's configuration, built from Django settings.

Lambda@Edge has no environment variables, so this is baked into the zip as JSON by
`manage.py build_edge_lambda`; the local edge proxy uses the same function.
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/edge-functions-restrictions.html
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from edge_lambda.build import default_config, replica_map


def edge_config_from_settings(**overrides: Any) -> dict[str, Any]:
    home = settings.VEDOMAINS_AWS_REGION
    replicas = list(dict.fromkeys([home, *settings.VEDOMAINS_EDGE_REPLICA_REGIONS]))
    config: dict[str, Any] = {
        "platform_domain": settings.VEDOMAINS_PLATFORM_DOMAIN,
        "table_name": settings.VEDOMAINS_EDGE_TABLE,
        "table_region": home,
        "replica_regions": replica_map(replicas, default=home),
        "positive_ttl_seconds": settings.VEDOMAINS_EDGE_POSITIVE_TTL,
        "negative_ttl_seconds": settings.VEDOMAINS_EDGE_NEGATIVE_TTL,
        "mode": settings.VEDOMAINS_EDGE_MODE,
        "rewrite_origin": settings.VEDOMAINS_EDGE_REWRITE_ORIGIN,
        "origin_domain": settings.VEDOMAINS_EDGE_ORIGIN_DOMAIN,
    }
    config.update(overrides)
    return default_config(**config)
