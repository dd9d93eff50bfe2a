"""The edge configuration (`edge_config.json`): its keys, defaults and validation.

`build.py` validates a config before it bakes it into the zip, so a bad one fails the
build rather than the edge; the function validates it again when a container starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

# edge_lambda.config in the repository, `config` at the zip's root (see handler.py).
if TYPE_CHECKING or __package__:
    from .hosts import is_dns_label, normalize_host
else:
    from hosts import is_dns_label, normalize_host

CONFIG_FILENAME: Final = "edge_config.json"

ORIGIN_REQUEST: Final = "origin-request"
VIEWER_REQUEST: Final = "viewer-request"

# Regions with a CloudFront regional edge cache, which is where Lambda@Edge functions run
# (and so the values `AWS_REGION` takes at the edge). The list is the one AWS gives for
# Origin Shield / the Lambda@Edge service-linked roles:
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/origin-shield.html#choose-origin-shield-region
REGIONAL_EDGE_CACHE_REGIONS: Final = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "sa-east-1",
)

# Values every config key falls back to. Required keys without a sensible default
# (platform_domain, table_region, replica_regions) are absent on purpose.
DEFAULTS: Final[Mapping[str, Any]] = {
    "table_name": "domain-workspace-mappings",
    "positive_ttl_seconds": 300,
    "negative_ttl_seconds": 30,
    "max_cache_entries": 100_000,
    "mode": ORIGIN_REQUEST,
    "rewrite_origin": False,
    "origin_domain": "",
    # False: origin-request sends a custom origin its own name as Host (the name its TLS
    # certificate holds) and the viewer's host in X-Forwarded-Host. True only for an origin
    # that can present a certificate for every custom domain (or takes plain HTTP).
    "forward_viewer_host": False,
    "connect_timeout": 0.3,
    "read_timeout": 0.5,
    "max_attempts": 2,
    # Seconds a stale entry keeps being served after a failed lookup before DynamoDB is
    # tried again, so an outage does not cost every request a full timeout.
    "error_retry_seconds": 5,
    # How long past its TTL an entry may be served while DynamoDB fails. Only a successful
    # read moves this limit, so a domain removed during an outage stops routing at most
    # positive_ttl + max_stale seconds after its last successful read.
    "max_stale_seconds": 600,
    # Platform labels that are not workspaces: `www.<platform>` is the marketing site and
    # `domain.<platform>` the customers' CNAME target. The bare platform domain is never a
    # workspace either. The first label of origin_domain is added automatically.
    "reserved_labels": ["www", "domain"],
    "metrics_namespace": "vedomains/Edge",
    # The seed's dashboards read CacheHit in CustomDomain/Cache; "" stops that copy.
    "seed_metrics_namespace": "CustomDomain/Cache",
    # A recycled container loses what it has not flushed: at most this many - 1
    # invocations' counts. 1 flushes per invocation (one ~1 KB log line, ~15 us each:
    # the hit path's p99 would be the flush); 1000 keeps it to 0.1% of requests.
    "metrics_flush_invocations": 1000,
    "metrics_flush_seconds": 60,
}
REQUIRED_KEYS: Final = ("platform_domain", "table_region", "replica_regions")
ALL_KEYS: Final = frozenset(DEFAULTS) | frozenset(REQUIRED_KEYS)

# Botocore's retry back-off sleeps up to 1 s before a retry (standard mode, first retry):
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
RETRY_BACKOFF_MAX_SECONDS: Final = 1.0
# Viewer triggers get 5 s in total; keep a second for CloudFront and the cold start.
_LOOKUP_BUDGET_SECONDS: Final = 4.0

_REGION_RE: Final = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}\Z")
_TABLE_RE: Final = re.compile(r"[A-Za-z0-9_.-]{3,255}\Z")


class EdgeConfigError(ValueError):
    """The edge configuration is invalid; the message lists every problem found."""


class Settings(NamedTuple):
    """The validated configuration, with the values the hot path needs precomputed."""

    platform_domain: str
    platform_suffix: str  # "." + platform_domain
    reserved_labels: frozenset[str]
    table_name: str
    table_region: str
    replica_regions: Mapping[str, str]
    positive_ttl: float
    negative_ttl: float
    max_cache_entries: int
    mode: str
    rewrite_origin: bool
    origin_suffix: str  # "." + origin_domain, or "" when not rewriting
    rewrite_host: bool  # origin-request: Host := the custom origin's name (not forward_viewer_host)
    connect_timeout: float
    read_timeout: float
    max_attempts: int
    error_retry_seconds: float
    max_stale: float
    metrics_namespace: str
    seed_metrics_namespace: str
    metrics_flush_invocations: int
    metrics_flush_seconds: float
    not_found_cache_control: str


def validate_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check a config mapping and return it complete (defaults filled in).

    Raises EdgeConfigError naming every problem, so a bad build fails before deploy
    rather than at the edge.
    """
    if not isinstance(raw, Mapping):
        raise EdgeConfigError("edge config must be a mapping")
    errors: list[str] = []
    unknown = sorted(set(raw) - ALL_KEYS)
    if unknown:
        errors.append(f"unknown keys: {', '.join(unknown)}")
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        errors.append(f"missing keys: {', '.join(missing)}")
    cfg: dict[str, Any] = {**DEFAULTS, **raw}

    def check(ok: bool, message: str) -> None:
        if not ok:
            errors.append(message)

    def is_int(value: object, low: int, high: int) -> bool:
        return type(value) is int and low <= value <= high

    def is_number(value: object, low: float, high: float) -> bool:
        # type(), not isinstance(): a bool is not a number here.
        return (type(value) is int or type(value) is float) and low <= value <= high

    platform = cfg.get("platform_domain")
    check(
        isinstance(platform, str) and normalize_host(platform) == platform,
        f"platform_domain must be a normalized host name such as 've.ai', got {platform!r}",
    )
    check(
        isinstance(cfg["table_name"], str) and _TABLE_RE.match(cfg["table_name"]) is not None,
        f"table_name is not a valid DynamoDB table name: {cfg['table_name']!r}",
    )
    check(
        isinstance(cfg.get("table_region"), str)
        and _REGION_RE.match(cfg["table_region"]) is not None,
        f"table_region must be an AWS region code, got {cfg.get('table_region')!r}",
    )
    replicas = cfg.get("replica_regions")
    if not isinstance(replicas, Mapping):
        errors.append("replica_regions must map region -> replica region, with a 'default'")
    else:
        bad = sorted(
            f"{key}->{value}"
            for key, value in replicas.items()
            if not (isinstance(key, str) and (key == "default" or _REGION_RE.match(key)))
            or not (isinstance(value, str) and _REGION_RE.match(value))
        )
        check(not bad, f"replica_regions has invalid entries: {', '.join(bad)}")
        absent = [r for r in ("default", *REGIONAL_EDGE_CACHE_REGIONS) if r not in replicas]
        check(
            not absent,
            "replica_regions must cover 'default' and every region with a CloudFront "
            f"regional edge cache; missing: {', '.join(absent)}",
        )
    check(
        is_int(cfg["positive_ttl_seconds"], 1, 86_400),
        "positive_ttl_seconds must be an integer in 1..86400",
    )
    positive = cfg["positive_ttl_seconds"]
    check(
        is_int(cfg["negative_ttl_seconds"], 1, positive if is_int(positive, 1, 86_400) else 86_400),
        "negative_ttl_seconds must be an integer in 1..positive_ttl_seconds",
    )
    # ~280 bytes per cached host (test_cache_of_100k_hosts_stays_small), more when every
    # host has its own workspace (bench/: 59 MiB peak with 100k): 500k is the most that
    # can fit the 128 MB of a viewer trigger.
    check(
        is_int(cfg["max_cache_entries"], 1, 500_000),
        "max_cache_entries must be an integer in 1..500000",
    )
    check(
        cfg["mode"] in (ORIGIN_REQUEST, VIEWER_REQUEST),
        f"mode must be {ORIGIN_REQUEST!r} or {VIEWER_REQUEST!r}, got {cfg['mode']!r}",
    )
    check(isinstance(cfg["rewrite_origin"], bool), "rewrite_origin must be true or false")
    check(isinstance(cfg["forward_viewer_host"], bool), "forward_viewer_host must be true or false")
    check(
        not (cfg["forward_viewer_host"] is True and cfg["rewrite_origin"] is True),
        "rewrite_origin sends <workspace>.<origin_domain> as Host: it cannot forward_viewer_host",
    )
    origin = cfg["origin_domain"]
    check(
        origin == "" or (isinstance(origin, str) and normalize_host(origin) == origin),
        f"origin_domain must be a normalized host name or empty, got {origin!r}",
    )
    if cfg["rewrite_origin"] is True:
        check(bool(origin), "rewrite_origin needs origin_domain")
        # The Host header is read-only in viewer-request events and there is no origin
        # object to rewrite: https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/edge-function-restrictions-all.html
        check(cfg["mode"] == ORIGIN_REQUEST, "rewrite_origin only works in origin-request mode")
    for key in ("connect_timeout", "read_timeout"):
        check(is_number(cfg[key], 0.01, 1.0), f"{key} must be a number of seconds in 0.01..1.0")
    check(is_int(cfg["max_attempts"], 1, 3), "max_attempts must be an integer in 1..3")
    timeouts_ok = all(is_number(cfg[k], 0.01, 1.0) for k in ("connect_timeout", "read_timeout"))
    if timeouts_ok and is_int(cfg["max_attempts"], 1, 3):
        attempts = cfg["max_attempts"]
        worst = attempts * (cfg["connect_timeout"] + cfg["read_timeout"])
        worst += (attempts - 1) * RETRY_BACKOFF_MAX_SECONDS
        check(
            worst <= _LOOKUP_BUDGET_SECONDS,
            f"worst-case lookup time {worst:.2f}s exceeds the {_LOOKUP_BUDGET_SECONDS}s budget "
            "(viewer triggers time out after 5 s)",
        )
    check(
        is_number(cfg["error_retry_seconds"], 0, 60),
        "error_retry_seconds must be a number in 0..60",
    )
    check(
        is_int(cfg["max_stale_seconds"], 0, 3600),
        "max_stale_seconds must be an integer in 0..3600",
    )
    labels = cfg["reserved_labels"]
    check(
        isinstance(labels, list | tuple) and all(is_dns_label(label) for label in labels),
        "reserved_labels must be a list of DNS labels",
    )
    check(
        isinstance(cfg["metrics_namespace"], str) and 0 < len(cfg["metrics_namespace"]) <= 255,
        "metrics_namespace must be a non-empty string",
    )
    check(
        isinstance(cfg["seed_metrics_namespace"], str)
        and len(cfg["seed_metrics_namespace"]) <= 255,
        "seed_metrics_namespace must be a string (empty: not emitted)",
    )
    check(
        is_int(cfg["metrics_flush_invocations"], 1, 1_000_000),
        "metrics_flush_invocations must be >= 1",
    )
    check(
        is_number(cfg["metrics_flush_seconds"], 1, 3600), "metrics_flush_seconds must be in 1..3600"
    )
    if errors:
        raise EdgeConfigError("invalid edge config: " + "; ".join(errors))
    cfg["replica_regions"] = dict(cfg["replica_regions"])
    cfg["reserved_labels"] = sorted(set(cfg["reserved_labels"]))
    return cfg


def settings_from_config(raw: Mapping[str, Any]) -> Settings:
    cfg = validate_config(raw)
    platform = cfg["platform_domain"]
    origin = cfg["origin_domain"]
    reserved = set(cfg["reserved_labels"])
    if origin.endswith("." + platform):
        # If Host were not forwarded, CloudFront would hand us the origin's own name; it
        # must never read as a workspace.
        reserved.add(origin[: -len(platform) - 1].rpartition(".")[2])
    return Settings(
        platform_domain=platform,
        platform_suffix="." + platform,
        reserved_labels=frozenset(reserved),
        table_name=cfg["table_name"],
        table_region=cfg["table_region"],
        replica_regions=cfg["replica_regions"],
        positive_ttl=float(cfg["positive_ttl_seconds"]),
        negative_ttl=float(cfg["negative_ttl_seconds"]),
        max_cache_entries=cfg["max_cache_entries"],
        mode=cfg["mode"],
        rewrite_origin=cfg["rewrite_origin"],
        origin_suffix="." + origin if origin and cfg["rewrite_origin"] else "",
        rewrite_host=not cfg["forward_viewer_host"],
        connect_timeout=float(cfg["connect_timeout"]),
        read_timeout=float(cfg["read_timeout"]),
        max_attempts=cfg["max_attempts"],
        error_retry_seconds=float(cfg["error_retry_seconds"]),
        max_stale=float(cfg["max_stale_seconds"]),
        metrics_namespace=cfg["metrics_namespace"],
        seed_metrics_namespace=cfg["seed_metrics_namespace"],
        metrics_flush_invocations=cfg["metrics_flush_invocations"],
        metrics_flush_seconds=float(cfg["metrics_flush_seconds"]),
        not_found_cache_control=f"public, max-age={cfg['negative_ttl_seconds']}",
    )
