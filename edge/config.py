"""The edge function's configuration, built from Django settings.

Lambda@Edge has no environment variables, so this is baked into the zip as JSON by
`manage.py build_edge_lambda`; the local edge proxy uses the same function.
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/edge-functions-restrictions.html
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from edge_lambda.build import default_config, replica_map
from edge_lambda.config import REGIONAL_EDGE_CACHE_REGIONS


def edge_replica_regions() -> list[str]:
    """The regions holding a replica of the mappings table, the home region first.

    One source: VEDOMAINS_EDGE_REPLICA_REGIONS when set, else every regional-edge-cache
    region (what deploy/dynamodb-global-table.yaml creates by default).
    """
    home = settings.VEDOMAINS_AWS_REGION
    listed = settings.VEDOMAINS_EDGE_REPLICA_REGIONS or REGIONAL_EDGE_CACHE_REGIONS
    return list(dict.fromkeys([home, *listed]))


def edge_config_from_settings(**overrides: Any) -> dict[str, Any]:
    home = settings.VEDOMAINS_AWS_REGION
    replicas = edge_replica_regions()
    config: dict[str, Any] = {
        "platform_domain": settings.VEDOMAINS_PLATFORM_DOMAIN,
        "table_name": settings.VEDOMAINS_EDGE_TABLE,
        "table_region": home,
        "replica_regions": replica_map(replicas, default=home),
        "positive_ttl_seconds": settings.VEDOMAINS_EDGE_POSITIVE_TTL_SECONDS,
        "negative_ttl_seconds": settings.VEDOMAINS_EDGE_NEGATIVE_TTL_SECONDS,
        "mode": settings.VEDOMAINS_EDGE_MODE,
        "rewrite_origin": settings.VEDOMAINS_EDGE_REWRITE_ORIGIN,
        "origin_domain": settings.VEDOMAINS_EDGE_ORIGIN_DOMAIN,
        "forward_viewer_host": settings.VEDOMAINS_EDGE_FORWARD_VIEWER_HOST,
    }
    config.update(overrides)
    return default_config(**config)
