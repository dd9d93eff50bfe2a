"""The edge: the DynamoDB mapping table and the Lambda@Edge function's config
(edge/config.py). Checked by `edge_settings_problems` (E03x), which builds the
function's config from them."""

from __future__ import annotations

from vedomains_site.config.environment import env

VEDOMAINS_EDGE_TABLE: str = env.str("VEDOMAINS_EDGE_TABLE", default="domain-workspace-mappings")
# Empty: a replica in every region with a CloudFront regional edge cache, the list
# edge_lambda.config.REGIONAL_EDGE_CACHE_REGIONS holds and deploy/dynamodb-global-table.yaml
# defaults to (a test keeps the two equal). Set it only with the template's replicas.
VEDOMAINS_EDGE_REPLICA_REGIONS: list[str] = env.list("VEDOMAINS_EDGE_REPLICA_REGIONS", default=[])
VEDOMAINS_EDGE_ORIGIN_DOMAIN: str = env.str("VEDOMAINS_EDGE_ORIGIN_DOMAIN",
                                            default="origin.ve.ai")
VEDOMAINS_EDGE_REWRITE_ORIGIN: bool = env.bool("VEDOMAINS_EDGE_REWRITE_ORIGIN", default=False)
# Send the viewer's Host to the origin (only for an origin holding every custom domain's
# certificate); by default it gets its own name as Host and the viewer's in X-Forwarded-Host.
VEDOMAINS_EDGE_FORWARD_VIEWER_HOST: bool = env.bool("VEDOMAINS_EDGE_FORWARD_VIEWER_HOST",
                                                    default=False)
VEDOMAINS_EDGE_MODE: str = env.str("VEDOMAINS_EDGE_MODE", default="origin-request")
# How long the function caches a found (positive) or missing (negative) mapping.
VEDOMAINS_EDGE_POSITIVE_TTL_SECONDS: int = env.int("VEDOMAINS_EDGE_POSITIVE_TTL_SECONDS",
                                                   default=300)
VEDOMAINS_EDGE_NEGATIVE_TTL_SECONDS: int = env.int("VEDOMAINS_EDGE_NEGATIVE_TTL_SECONDS",
                                                   default=30)
