"""System checks for the edge's settings (ids E03x); `domains.system_checks` runs them."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage

from domains.system_checks import Finder, _error
from edge.config import edge_config_from_settings
from edge_lambda.config import EdgeConfigError

# The edge config's keys and the settings they come from (edge/config.py).
EDGE_CONFIG_SETTINGS = {
    "platform_domain": "VEDOMAINS_PLATFORM_DOMAIN",
    "table_name": "VEDOMAINS_EDGE_TABLE",
    "table_region": "VEDOMAINS_AWS_REGION",
    "replica_regions": "VEDOMAINS_EDGE_REPLICA_REGIONS",
    "positive_ttl_seconds": "VEDOMAINS_EDGE_POSITIVE_TTL_SECONDS",
    "negative_ttl_seconds": "VEDOMAINS_EDGE_NEGATIVE_TTL_SECONDS",
    "mode": "VEDOMAINS_EDGE_MODE",
    "rewrite_origin": "VEDOMAINS_EDGE_REWRITE_ORIGIN",
    "origin_domain": "VEDOMAINS_EDGE_ORIGIN_DOMAIN",
}


def edge_settings_problems() -> list[CheckMessage]:
    """The edge function's config is built from these settings: it must validate."""
    if not settings.VEDOMAINS_EDGE_TABLE:
        return [_error("VEDOMAINS_EDGE_TABLE", "is empty.",
                       "The DynamoDB table the edge routes by.", 30)]
    try:
        edge_config_from_settings()
    except EdgeConfigError as exc:
        names = [name for key, name in EDGE_CONFIG_SETTINGS.items() if key in str(exc)]
        return [_error(
            " / ".join(names) or "VEDOMAINS_EDGE_*", f"make an invalid edge config: {exc}",
            "The edge function is built from these (manage.py build_edge_lambda).", 31)]
    return []


# Run by `domains.system_checks.settings_check` with every app's finders.
SETTINGS_FINDERS: list[Finder] = [
    edge_settings_problems,
]
