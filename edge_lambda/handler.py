"""Lambda@Edge function: map the viewer's Host to a ve.ai workspace.

CloudFront calls `handler(event, context)` on origin-request (default) or viewer-request.
For every request it:

* removes any `workspace-id` the viewer sent, with every spelling a server may read as it,
  and the headers a server may take the request's host from (`x-forwarded-host`,
  `x-original-host`, `x-host`, `forwarded`...), on every path;
* normalizes the Host (lowercase, no port, no trailing dot, punycode);
* maps `<slug>.<platform_domain>` to `<slug>` without any lookup;
* otherwise looks the host up in a per-container LRU cache, then with one DynamoDB GetItem
  on the replica region nearest to the executing region;
* on a match sets `workspace-id`; in origin-request mode it sends a custom origin its own
  name as Host (the name its certificate holds) with the viewer's host in
  `X-Forwarded-Host`, and with `rewrite_origin` points it at `<workspaceId>.<origin_domain>`;
* answers unknown or inactive hosts with a small 404 generated at the edge, and a DynamoDB
  failure with the stale cache entry if there is one (for at most `max_stale_seconds` past
  its TTL), else a 503 with Retry-After;
* answers a redirect domain (an item with `redirectTo`) itself with its 301/308 to the same
  path and query on the target, once it has checked the target is an active plain mapping
  of the same workspace (docs/redirects.md).

This module is the whole function: the zip is this file plus `edge_config.json`. It imports
only the standard library (its DynamoDB client is its own: SigV4 and the JSON protocol over
http.client, no boto3 on the request path), because Lambda@Edge caps viewer-trigger packages
at 1 MB, has no layers and no environment variables, and a cold start pays for every import:
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/edge-functions-restrictions.html
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import os
import random
import re
import select
import ssl
import stringprep
import sys
import time
import urllib.parse
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, NamedTuple

CONFIG_FILENAME: Final = "edge_config.json"
WORKSPACE_HEADER: Final = "workspace-id"

ORIGIN_REQUEST: Final = "origin-request"
VIEWER_REQUEST: Final = "viewer-request"
_REQUEST_EVENTS: Final = frozenset({ORIGIN_REQUEST, VIEWER_REQUEST, None})


def _spellings(*words: str) -> set[str]:
    """Every way of joining `words` with "-", "_" or nothing.

    CGI and WSGI servers turn both "-" and "_" into "_" (HTTP_WORKSPACE_ID), and some
    frameworks ignore separators, so each of these reads as the same header at the origin.
    """
    joined: set[str] = set()
    for separators in itertools.product(("-", "_", ""), repeat=len(words) - 1):
        name = words[0]
        for separator, word in zip(separators, words[1:], strict=True):
            name += separator + word
        joined.add(name)
    return joined


# Headers a viewer could use to impersonate a workspace, or the routed host at the origin
# (frameworks take the request's host from X-Forwarded-Host, X-Original-Host, X-Host,
# Forwarded: host=...). Removed on every path, before anything else reads the request.
# CloudFront lowercases the keys of `request.headers`, so case needs no variants.
_SPOOFABLE_HEADERS: Final = frozenset().union(
    _spellings("workspace", "id"),
    _spellings("x", "workspace", "id"),
    _spellings("x", "forwarded", "host"),
    _spellings("x", "forwarded", "server"),
    _spellings("x", "original", "host"),
    _spellings("x", "host"),
    _spellings("x", "http", "host", "override"),
    {"forwarded"},
)
STRIPPED_HEADERS: Final = tuple(sorted(_SPOOFABLE_HEADERS))
# ...and every other spelling: some origin stacks fold any non-alphanumeric character of a
# name ("workspace.id", "workspace~id", "x.forwarded.host"), so names are compared with
# every separator removed. Names found harmless are remembered (they repeat from request to
# request), so the usual request costs one set difference, as cheap as the old lookup.
_NOT_ALNUM: Final = re.compile(r"[^a-z0-9]+")
_SPOOFABLE_FOLDED: Final = frozenset(_NOT_ALNUM.sub("", n) for n in _SPOOFABLE_HEADERS)
_HARMLESS_NAMES_MAX: Final = 4096
_harmless_names: set[str] = set()


def is_spoofable_header(name: str) -> bool:
    if _NOT_ALNUM.sub("", name.lower()) in _SPOOFABLE_FOLDED:
        return True
    if len(_harmless_names) < _HARMLESS_NAMES_MAX:  # bounded: names are viewer input
        _harmless_names.add(name)
    return False


def spoofed_headers(headers: Mapping[str, Any]) -> list[str]:
    """The names in `headers` that read, at some origin, as one the edge sets."""
    unknown = headers.keys() - _harmless_names
    return [name for name in unknown if is_spoofable_header(name)] if unknown else []


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
_RETRY_BACKOFF_MAX_SECONDS: Final = 1.0
# Viewer triggers get 5 s in total; keep a second for CloudFront and the cold start.
_LOOKUP_BUDGET_SECONDS: Final = 4.0

_LABEL_RE: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_HOST_RE: Final = re.compile(
    r"(?=[a-z0-9.-]{1,253}\Z)"  # total length, allowed characters
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"  # one or more labels and a dot
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z"  # last label (a TLD needs at least one dot)
)
_REGION_RE: Final = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}\Z")
_TABLE_RE: Final = re.compile(r"[A-Za-z0-9_.-]{3,255}\Z")
# IDNA 2003 (stdlib) and IDNA 2008 (what the Django side registers with) map these four
# differently, e.g. "ß" -> "ss" versus "xn--zca". Refusing them keeps one host from ever
# resolving to two spellings.
_IDNA_DEVIATIONS: Final = frozenset("\u00df\u03c2\u200c\u200d")
# The full stops IDNA treats as label separators, mapped to "." before the port and
# trailing-dot handling so "bücher.de。" and "bücher.de." normalize alike (RFC 3490 3.1).
_IDNA_DOTS: Final = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
# Longer Host values are garbage; refuse them before spending any CPU on them.
_MAX_RAW_HOST: Final = 1024


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


# --------------------------------------------------------------------------- hosts


def normalize_host(raw: object) -> str | None:
    """Return the canonical form of a Host header value, or None for anything unusable.

    Lowercase ASCII (punycode for IDNs), no port, no trailing dot, at least two labels,
    no IP literal. Never raises; `normalize_host(normalize_host(x)) == normalize_host(x)`.
    """
    if not isinstance(raw, str) or not raw or len(raw) > _MAX_RAW_HOST:
        return None
    host = raw.strip().lower()
    if not host.isascii():
        host = host.translate(_IDNA_DOTS)
    if host.startswith("["):  # IPv6 literal, "[::1]:443"
        return None
    if ":" in host:
        host, _, port = host.rpartition(":")
        if (port and not port.isdigit()) or ":" in host:
            return None
    if host.endswith("."):
        host = host[:-1]
    if not host.isascii():
        host = _to_ascii(host)
        if host is None:
            return None
    if _HOST_RE.match(host) is None:
        return None
    if host[host.rfind(".") + 1 :].isdigit():  # IPv4 literal: no TLD is numeric
        return None
    return host


def _to_ascii(host: str) -> str | None:
    """Punycode a unicode host with the stdlib IDNA codec; None if it cannot be encoded."""
    if not _IDNA_DEVIATIONS.isdisjoint(host):
        return None
    # The stdlib codec knows Unicode 3.2 and passes newer code points through unmapped,
    # where Django's IDNA 2008 maps or refuses them (U+1DFD0 -> U+0263): refuse them here
    # too, so the edge never looks up a spelling that no record can be stored under.
    if any(stringprep.in_table_a1(c) for c in host):
        return None
    try:
        encoded = host.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return None
    # One trailing dot was already stripped; a second one makes the host invalid.
    return None if encoded.endswith(".") else encoded


def is_dns_label(value: object) -> bool:
    """True for a lowercase LDH label of 1-63 characters (workspace slugs are these)."""
    return isinstance(value, str) and _LABEL_RE.match(value) is not None


def platform_workspace(host: str, settings: Settings) -> str | None:
    """For a normalized host on the platform domain: its workspace slug, or None.

    Only `<slug>.<platform_domain>` with a single, non-reserved label is a workspace; the
    bare platform domain, reserved labels and deeper names are not.
    """
    if not host.endswith(settings.platform_suffix):
        return None
    slug = host[: -len(settings.platform_suffix)]
    if "." in slug or slug in settings.reserved_labels:
        return None
    return slug


# --------------------------------------------------------------------------- config


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
        return type(value) in (int, float) and low <= value <= high

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
        worst += (attempts - 1) * _RETRY_BACKOFF_MAX_SECONDS
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


def _load_settings() -> Settings:
    """Read edge_config.json from next to this file, once per container."""
    global _settings
    path = Path(__file__).with_name(CONFIG_FILENAME)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgeConfigError(
            f"{path} is missing: build the package with `python manage.py build_edge_lambda`"
        ) from None
    _settings = settings_from_config(raw)
    return _settings


# --------------------------------------------------------------------------- metrics


class Metrics:
    """One window's counters, written as one CloudWatch EMF log line per flush.

    CloudWatch extracts the metrics from the log line itself, so the request path makes no
    API call: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

    COUNTERS is the only list of metrics: attribute -> EMF name; adding one is one line.
    What a recycled container had not flushed is lost: at most `metrics_flush_invocations`
    - 1 invocations' counts per container (see edge_lambda/README.md, "Metrics").
    """

    COUNTERS: Final[Mapping[str, str]] = {
        "requests": "Requests",
        "hit": "CacheHit",
        "miss": "CacheMiss",
        "error": "LookupError",
        "stale": "StaleServed",
        "stale_expired": "StaleExpired",
        "platform": "PlatformHost",
        "invalid_host": "InvalidHost",
        "invalid_item": "InvalidItem",
        "not_found": "NotFound",
        "unavailable": "Unavailable",
        "spoofed": "SpoofedHeader",
        "redirect": "Redirect",
    }
    # The seed's dashboards read these in their own namespace (CustomDomain/Cache).
    SEED_COUNTERS: Final = ("CacheHit", "CacheMiss")
    # EMF accepts at most 100 values per metric in one document; flush when full.
    MAX_SAMPLES: Final = 100

    __slots__ = (*COUNTERS, "deadline", "latency_ms", "window_start")

    requests: int
    hit: int
    miss: int
    error: int
    stale: int
    stale_expired: int
    platform: int
    invalid_host: int
    invalid_item: int
    not_found: int
    unavailable: int
    spoofed: int
    redirect: int

    def __init__(self, now: float) -> None:
        self.reset(now, 60.0)

    def reset(self, now: float, window_seconds: float) -> None:
        for name in self.COUNTERS:
            setattr(self, name, 0)
        self.latency_ms: list[float] = []
        self.window_start = now
        # The hot path compares one number; a full latency list pulls it to "now".
        self.deadline = now + window_seconds

    def add_latency(self, milliseconds: float) -> None:
        self.latency_ms.append(round(milliseconds, 3))
        if len(self.latency_ms) >= self.MAX_SAMPLES:
            self.deadline = -1.0

    def document(
        self, namespace: str, seed_namespace: str, region: str, timestamp_ms: int, cache_size: int
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {
            metric: getattr(self, name) for name, metric in self.COUNTERS.items()
        }
        definitions = [{"Name": metric, "Unit": "Count"} for metric in self.COUNTERS.values()]
        doc["CacheSize"] = cache_size
        definitions.append({"Name": "CacheSize", "Unit": "Count"})
        if self.latency_ms:
            doc["LookupLatency"] = list(self.latency_ms)
            definitions.append({"Name": "LookupLatency", "Unit": "Milliseconds"})
        doc["Region"] = region
        directives: list[dict[str, Any]] = [
            {"Namespace": namespace, "Dimensions": [["Region"]], "Metrics": definitions}
        ]
        if seed_namespace:
            # The same root values, once more without dimensions: what the seed's
            # PutMetricData wrote. Its Sum is the seed's Sum; its Average (the seed's hit
            # ratio, one 0/1 sample per request) is CacheHit / (CacheHit + CacheMiss).
            directives.append(
                {
                    "Namespace": seed_namespace,
                    "Dimensions": [[]],
                    "Metrics": [{"Name": m, "Unit": "Count"} for m in self.SEED_COUNTERS],
                }
            )
        doc["_aws"] = {"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}
        return doc


def flush_metrics(now: float | None = None) -> None:
    """Write the pending counters as one EMF JSON line on stdout and start a new window."""
    settings = _settings
    current = _clock() if now is None else now
    window = settings.metrics_flush_seconds if settings is not None else 60.0
    if settings is None or _metrics.requests == 0:
        _metrics.reset(current, window)
        return
    doc = _metrics.document(
        settings.metrics_namespace,
        settings.seed_metrics_namespace,
        os.environ.get("AWS_REGION", "unknown"),
        int(time.time() * 1000),
        len(_cache),
    )
    sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    _metrics.reset(current, window)


# --------------------------------------------------------------------------- DynamoDB client
#
# A GetItem client on the standard library: SigV4 (hmac, hashlib), the JSON 1.0 protocol over
# one kept-alive http.client connection, and botocore's "standard" retry decisions. boto3
# costs ~240 ms of import at every cold start, which is most of what the first visitor of a
# quiet custom domain waits for; this costs the ~20 ms of importing http.client.
# edge_lambda/tests/test_dynamodb_client.py holds it to botocore byte for byte.

_SERVICE: Final = "dynamodb"
_TARGET_PREFIX: Final = "DynamoDB_20120810."
_CONTENT_TYPE: Final = "application/x-amz-json-1.0"
_EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()
# botocore's standard retry mode (botocore/retries/standard.py), which the SDKs share:
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
_TRANSIENT_CODES: Final = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}
)
_TRANSIENT_STATUS: Final = frozenset({500, 502, 503, 504})
_THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
# GetItem's modeled errors: a 429 carrying one of these is judged by its code, not its status.
_GET_ITEM_ERRORS: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ResourceNotFoundException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ThrottlingException",
    }
)
_QUOTA_CAPACITY: Final = 500
_QUOTA_RETRY_COST: Final = 14
_QUOTA_THROTTLING_COST: Final = 5
_BACKOFF_SCALE_THROTTLING: Final = 1.0
_BACKOFF_SCALE_DYNAMODB: Final = 0.025


class DynamoDBError(Exception):
    """A GetItem that did not produce a usable answer (after any retries)."""

    def __init__(self, message: str, *, code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class ClientConfig(NamedTuple):
    """The client's limits, named as botocore's Config names them."""

    connect_timeout: float
    read_timeout: float
    retries: Mapping[str, Any]


class ClientMeta(NamedTuple):
    """What `client.meta` tells about a botocore client, for the same questions."""

    region_name: str
    endpoint_url: str
    config: ClientConfig


def _canonical_path(path: str) -> str:
    """botocore's canonical URI: dot segments and repeated slashes removed, then quoted."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    normalized = "/".join(segments)
    if path.startswith("/"):
        normalized = "/" + normalized
    if path.endswith("/") and segments:
        normalized += "/"
    return urllib.parse.quote(normalized or "/", safe="/~")


def sigv4_signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    key = hmac.digest(("AWS4" + secret_key).encode(), date.encode(), "sha256")
    key = hmac.digest(key, region.encode(), "sha256")
    key = hmac.digest(key, service.encode(), "sha256")
    return hmac.digest(key, b"aws4_request", "sha256")


def sigv4_canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], payload_sha256: str
) -> tuple[str, str]:
    """(canonical request, signed header list) for a request signing every header given.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
    `query` is the canonical query string (empty for the JSON protocol).
    """
    canonical: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower().strip()
        trimmed = " ".join(value.split())
        canonical[key] = f"{canonical[key]},{trimmed}" if key in canonical else trimmed
    names = sorted(canonical)
    signed = ";".join(names)
    lines = "".join(f"{name}:{canonical[name]}\n" for name in names)
    request = "\n".join(
        (method.upper(), _canonical_path(path), query, lines, signed, payload_sha256)
    )
    return request, signed


def sigv4_string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{digest}"


def sigv4_authorization(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    payload_sha256: str,
    access_key: str,
    signing_key: bytes,
    amz_date: str,
    region: str,
    service: str,
) -> str:
    """The Authorization header value (AWS4-HMAC-SHA256) for a request made at `amz_date`."""
    request, signed = sigv4_canonical_request(method, path, query, headers, payload_sha256)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = sigv4_string_to_sign(amz_date, scope, request)
    signature = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )


def endpoint_for(region: str, environ: Mapping[str, str]) -> str:
    """The DynamoDB endpoint: AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL (local runs, as
    boto3 honours them), else the region's public endpoint."""
    configured = environ.get("AWS_ENDPOINT_URL_DYNAMODB") or environ.get("AWS_ENDPOINT_URL")
    if configured:
        return configured
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://dynamodb.{region}.{suffix}"


class DynamoDBClient:
    """GetItem over one kept-alive connection, retried the way botocore's standard mode does.

    Credentials are read once, like boto3's environment provider: at the edge they are the
    function role's temporary keys, including AWS_SESSION_TOKEN.
    """

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str,
        access_key: str,
        secret_key: str,
        session_token: str | None,
        connect_timeout: float,
        read_timeout: float,
        max_attempts: int,
        ca_bundle: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urllib.parse.urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unusable DynamoDB endpoint {endpoint_url!r}")
        self.meta = ClientMeta(
            region,
            endpoint_url,
            ClientConfig(
                connect_timeout,
                read_timeout,
                {"total_max_attempts": max_attempts, "mode": "standard"},
            ),
        )
        self._https = parts.scheme == "https"
        self._address = (parts.hostname, parts.port or (443 if self._https else 80))
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        if parts.port is not None and parts.port != (443 if self._https else 80):
            host = f"{host}:{parts.port}"
        self._host = host  # what botocore's signer derives from the URL
        self._path = parts.path or "/"
        self._access_key = access_key
        self._secret_key = secret_key
        self._token = session_token or None
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_attempts = max_attempts
        self._ca_bundle = ca_bundle
        self._sleep = sleep
        self._rand = rand
        self._wall_clock = wall_clock
        self._conn: http.client.HTTPConnection | None = None
        self._ssl_context: Any = None
        self._key_date = ""
        self._key = b""
        self._quota = _QUOTA_CAPACITY

    # -- the operation

    def get_item(self, **params: Any) -> dict[str, Any]:
        """GetItem with boto3's parameter names; the parsed JSON answer (raw attribute values)."""
        return self._call("GetItem", self.serialize(params))

    @staticmethod
    def serialize(params: Mapping[str, Any]) -> bytes:
        # botocore's JSON serializer: json.dumps' defaults (", " and ": ", ASCII escapes),
        # members in the order given.
        return json.dumps(params).encode("utf-8")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- signing

    def signed_headers(self, target: str, body: bytes, when: float) -> dict[str, str]:
        """The request's headers, Authorization included, for a request signed at `when`
        (seconds since the epoch)."""
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))
        headers = {
            "X-Amz-Target": _TARGET_PREFIX + target,
            "Content-Type": _CONTENT_TYPE,
            "Host": self._host,
            "X-Amz-Date": amz_date,
        }
        if self._token:
            headers["X-Amz-Security-Token"] = self._token
        date = amz_date[:8]
        if date != self._key_date:  # the key depends only on the day: derive it once a day
            self._key = sigv4_signing_key(self._secret_key, date, self.meta.region_name, _SERVICE)
            self._key_date = date
        headers["Authorization"] = sigv4_authorization(
            method="POST",
            path=self._path,
            query="",
            headers=headers,
            payload_sha256=hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256,
            access_key=self._access_key,
            signing_key=self._key,
            amz_date=amz_date,
            region=self.meta.region_name,
            service=_SERVICE,
        )
        return headers

    # -- transport

    def _connection(self) -> http.client.HTTPConnection:
        conn = self._conn
        # A kept-alive socket the server has closed (or sent stray bytes on) reads as ready;
        # reconnect rather than fail the request, as urllib3's pool does.
        if conn is not None and conn.sock is not None and select.select([conn.sock], [], [], 0)[0]:
            conn.close()
        if conn is None:
            host, port = self._address
            if self._https:
                if self._ssl_context is None:
                    # Verified TLS: the system trust store (or AWS_CA_BUNDLE, as for boto3).
                    self._ssl_context = ssl.create_default_context(cafile=self._ca_bundle)
                conn = http.client.HTTPSConnection(
                    host, port, timeout=self._connect_timeout, context=self._ssl_context
                )
            else:
                conn = http.client.HTTPConnection(host, port, timeout=self._connect_timeout)
            self._conn = conn
        if conn.sock is None:
            conn.connect()  # TCP (and TLS) under the connect timeout...
            assert conn.sock is not None
            conn.sock.settimeout(self._read_timeout)  # ...then every read under the read one
        return conn

    def _send(self, target: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        # Signed per attempt, as botocore does: a retry carries a fresh X-Amz-Date.
        headers = self.signed_headers(target, body, self._wall_clock())
        try:
            conn = self._connection()
            conn.request("POST", self._path, body, headers)
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            self.close()  # half a request or response: the connection cannot be reused
            raise
        if response.will_close:
            self.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    # -- retries

    def _call(self, target: str, body: bytes) -> dict[str, Any]:
        acquired = 0
        attempt = 0
        while True:
            attempt += 1
            status, code, error, retry_after = 0, "", "", None
            try:
                status, headers, data = self._send(target, body)
            except (OSError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
                retryable, throttling = True, False
            else:
                checksum = headers.get("x-amz-crc32")
                corrupt = checksum is not None and (
                    not checksum.isdigit() or zlib.crc32(data) != int(checksum)
                )
                if 200 <= status < 300 and not corrupt:
                    # botocore returns 1 to the quota after a first-try success, or what
                    # the last retry took.
                    self._quota = min(_QUOTA_CAPACITY, self._quota + (acquired or 1))
                    return self._parse_success(data)
                code, message = _error_code(status, data)
                error = f"{code or status}: {message}" if not corrupt else "CRC32 mismatch"
                throttling = code in _THROTTLING_CODES or (
                    status == 429 and code not in _GET_ITEM_ERRORS
                )
                retryable = (
                    corrupt or throttling or code in _TRANSIENT_CODES or status in _TRANSIENT_STATUS
                )
                retry_after = headers.get("x-amz-retry-after")
            if not retryable or attempt >= self._max_attempts:
                raise DynamoDBError(
                    f"GetItem failed after {attempt} attempt(s): {error}", code=code, status=status
                )
            cost = _QUOTA_THROTTLING_COST if throttling else _QUOTA_RETRY_COST
            if cost > self._quota:  # the quota is spent: botocore gives up too
                raise DynamoDBError(
                    f"GetItem failed, retry quota spent: {error}", code=code, status=status
                )
            self._quota -= cost
            acquired = cost
            self._sleep(self._delay(attempt, throttling, retry_after))

    def _delay(self, attempt: int, throttling: bool, retry_after: str | None) -> float:
        scale = _BACKOFF_SCALE_THROTTLING if throttling else _BACKOFF_SCALE_DYNAMODB
        delay = self._rand() * min(scale * 2 ** (attempt - 1), 20.0)
        if retry_after is not None and retry_after.isdigit():
            delay = max(delay, min(int(retry_after) / 1000, delay + 5))
        # Unlike botocore (up to 20 s), never sleep past what the 5 s viewer budget allows
        # (validate_config counts _RETRY_BACKOFF_MAX_SECONDS per retry).
        return min(delay, _RETRY_BACKOFF_MAX_SECONDS)

    @staticmethod
    def _parse_success(data: bytes) -> dict[str, Any]:
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            # botocore would hand back {} (an empty item); a garbled answer is a failure to
            # us, never a "not found" that would be cached. Not retried, as by botocore.
            raise DynamoDBError("GetItem answer is not JSON") from None
        if not isinstance(parsed, dict):
            raise DynamoDBError("GetItem answer is not a JSON object")
        return parsed


def _error_code(status: int, data: bytes) -> tuple[str, str]:
    """(code, message) of an error answer, parsed as botocore's JSON protocol parser does."""
    body: Any = {}
    if data:
        text = data.decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = {"message": text}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message", body.get("Message", "")))[:200]
    code = body.get("__type", str(status) if status else "")
    if not isinstance(code, str):
        code = str(code)
    code = code.split(":", 1)[0]
    if "#" in code:
        code = code.rsplit("#", 1)[1]
    return code, message


def client_from_environment(
    region: str,
    settings: Settings,
    environ: Mapping[str, str] | None = None,
) -> DynamoDBClient:
    """The client for `region`, with the Lambda runtime's credentials and any local endpoint."""
    env = os.environ if environ is None else environ
    access_key = env.get("AWS_ACCESS_KEY_ID", "")
    secret_key = env.get("AWS_SECRET_ACCESS_KEY", "")
    if not access_key or not secret_key:
        raise DynamoDBError("no AWS credentials in the environment")
    return DynamoDBClient(
        region=region,
        endpoint_url=endpoint_for(region, env),
        access_key=access_key,
        secret_key=secret_key,
        session_token=env.get("AWS_SESSION_TOKEN") or env.get("AWS_SECURITY_TOKEN"),
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_attempts=settings.max_attempts,
        ca_bundle=env.get("AWS_CA_BUNDLE") or None,
    )


# --------------------------------------------------------------------------- state

# Per-container state. Lambda reuses a container for many invocations, one at a time, so
# plain module globals are the cache; nothing here needs a lock.
_settings: Settings | None = None
# host -> (workspaceId or None for "unknown/inactive", fresh until, servable stale until),
# both on _clock. Expired entries stay (until evicted) so they can be served stale when
# DynamoDB fails, but never past the third field, which only a successful read moves.
_cache: OrderedDict[str, tuple[str | Redirect | None, float, float]] = OrderedDict()
_client: DynamoDBClient | None = None
_clock: Callable[[], float] = time.monotonic
_metrics = Metrics(time.monotonic())


class _Unavailable:
    """Marker for "DynamoDB failed and nothing (servable) is cached"."""


_UNAVAILABLE: Final = _Unavailable()


def _reset_for_tests(
    config: Mapping[str, Any] | None = None, clock: Callable[[], float] | None = None
) -> None:
    """Forget every per-container cache (settings, hosts, client, metrics).

    With `config`, install those settings instead of reading edge_config.json; with
    `clock`, use it (a zero-argument callable returning seconds) instead of time.monotonic.
    """
    global _settings, _client, _clock
    _settings = settings_from_config(config) if config is not None else None
    _cache.clear()
    if _client is not None:
        _client.close()
    _client = None
    _clock = clock if clock is not None else time.monotonic
    _metrics.reset(_clock(), _settings.metrics_flush_seconds if _settings else 60.0)


def configure(config: Mapping[str, Any]) -> None:
    """Run with `config` instead of the baked-in edge_config.json (the local edge proxy).

    Not used in Lambda, where the packaged file is the only configuration.
    """
    _reset_for_tests(config)


def _dynamodb() -> DynamoDBClient:
    """The DynamoDB client for the replica nearest to this edge region, built once."""
    global _client
    if _client is None:
        settings = _settings or _load_settings()
        # AWS_REGION is set by the Lambda runtime to the region the replica runs in; it is
        # not a user environment variable (those do not exist at the edge).
        region = os.environ.get("AWS_REGION", "")
        replica = settings.replica_regions.get(region) or settings.replica_regions["default"]
        _client = client_from_environment(replica, settings)
    return _client


def _lookup(host: str, settings: Settings) -> str | Redirect | None:
    """One GetItem: the active workspace for `host`, or None. Raises on any AWS failure."""
    response = _dynamodb().get_item(
        TableName=settings.table_name,
        Key={"domain": {"S": host}},
        # `status` is a DynamoDB reserved word, hence the placeholder:
        # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ReservedWords.html
        ProjectionExpression="workspaceId, #st, redirectTo, redirectCode",
        ExpressionAttributeNames={"#st": "status"},
    )
    item = response.get("Item")
    if not isinstance(item, dict):
        return None
    status = item.get("status")
    if not isinstance(status, dict) or status.get("S") != "active":
        return None
    workspace = item.get("workspaceId")
    workspace = workspace.get("S") if isinstance(workspace, dict) else None
    if not is_dns_label(workspace):
        # It goes into a header and maybe a host name: refuse anything that is not a slug.
        _metrics.invalid_item += 1
        return None
    if "redirectTo" in item:
        return _redirect_for(host, sys.intern(workspace), item, settings)
    return sys.intern(workspace)


def _store(
    host: str,
    workspace: str | None,
    expires: float,
    limit: int,
    stale_until: float | None = None,
) -> None:
    """Cache an answer fresh until `expires`; servable on errors until `stale_until`
    (by default `max_stale_seconds` past `expires`)."""
    if stale_until is None:
        stale_until = expires + (_settings.max_stale if _settings is not None else 0.0)
    _cache[host] = (workspace, expires, stale_until)
    _cache.move_to_end(host)
    while len(_cache) > limit:
        _cache.popitem(last=False)


def _resolve_slow(
    raw: str, now: float, settings: Settings
) -> tuple[str, str | Redirect | _Unavailable | None]:
    """Everything but the cache-hit fast path: normalize, platform hosts, lookup, errors."""
    metrics = _metrics
    host = normalize_host(raw)
    if host is None:
        metrics.invalid_host += 1
        return "", None
    if host == settings.platform_domain or host.endswith(settings.platform_suffix):
        metrics.platform += 1
        return host, platform_workspace(host, settings)
    entry = _cache.get(host)
    if entry is not None and entry[1] > now:  # the raw value differed (port, case, IDN...)
        _cache.move_to_end(host)
        metrics.hit += 1
        return host, entry[0]
    metrics.miss += 1
    started = 0.0
    try:
        _dynamodb()  # built once per container, and kept out of the latency figure
        started = time.perf_counter()
        workspace = _lookup(host, settings)
    except Exception:  # noqa: BLE001 - timeout, throttling, 5xx, bad response: all "unavailable"
        metrics.error += 1
        if entry is None:
            return host, _UNAVAILABLE
        stale_until = entry[2]
        if now >= stale_until:
            # Served stale long enough: a domain removed during an outage must stop
            # routing. Failures never move stale_until, so this bound holds however long
            # the outage lasts.
            del _cache[host]
            metrics.stale_expired += 1
            return host, _UNAVAILABLE
        # Serve the last answer we had (positive or negative) and hold off retrying.
        metrics.stale += 1
        retry_at = min(now + settings.error_retry_seconds, stale_until)
        _store(host, entry[0], retry_at, settings.max_cache_entries, stale_until)
        return host, entry[0]
    finally:
        if started:
            metrics.add_latency((time.perf_counter() - started) * 1000)
    ttl = settings.positive_ttl if workspace is not None else settings.negative_ttl
    _store(host, workspace, now + ttl, settings.max_cache_entries, now + ttl + settings.max_stale)
    return host, workspace


# --------------------------------------------------------------------------- redirects
#
# A redirect domain's item carries `redirectTo` (a bare hostname, never a URL) and
# `redirectCode` (301 or 308). The edge answers such a host itself, on either trigger and
# without contacting the origin, but only when the item vouches for a safe target: a
# normalized hostname other than the host itself, off the platform domain, whose own item
# is active for the SAME workspace and is not itself a redirect (no chains, no loops). Any
# other redirect item serves its workspace as a plain mapping, so a bad or tampered item is
# never an open redirect. The target is looked up (and cached) when the redirect host's
# item is read; the visitor's next request is usually for that target anyway.


class Redirect(NamedTuple):
    """A validated redirect, cached in place of a workspace slug."""

    target: str
    code: int
    workspace: str


_REDIRECT_WORDS: Final = {301: "Moved Permanently", 308: "Permanent Redirect"}
# Everything outside RFC 3986's unreserved, sub-delims, ":" "@" "/" and "%" is escaped in
# the Location, so a path cannot end the header or add a fragment; "%" is kept so
# characters the viewer sent encoded stay exactly as they were.
_LOCATION_UNSAFE: Final = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]")
_QUERY_UNSAFE: Final = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/%?]")
# Set while a target's own item is read, so a target that is itself a redirect is seen as
# one (refused) instead of being followed: two items redirecting to each other cannot loop.
_following = False


class _Chain:
    """Marker: the target's item is itself a redirect."""


class _Unvouched(str):
    """The workspace of a redirect item that failed validation: served like any mapping,
    but (cached) it is still a redirect item, so never a valid target for another one."""

    __slots__ = ()


def _redirect_for(
    host: str, workspace: str, item: Mapping[str, Any], settings: Settings
) -> _Unvouched | Redirect | _Chain:
    global _following
    if _following:
        return _Chain()
    target = item.get("redirectTo")
    target = target.get("S") if isinstance(target, dict) else None
    code = item.get("redirectCode")
    code = code.get("N") if isinstance(code, dict) else None
    if (
        not isinstance(target, str)
        or code not in ("301", "308")
        or normalize_host(target) != target
        or target == host
        or target == settings.platform_domain
        or target.endswith(settings.platform_suffix)
    ):
        _metrics.invalid_item += 1
        return _Unvouched(workspace)
    now = _clock()
    entry = _cache.get(target)
    if entry is not None and entry[1] > now:
        found: object = entry[0]
    else:
        _following = True
        try:
            found = _lookup(target, settings)
        finally:
            _following = False
        if found is None or found.__class__ is str:  # a fresh read of the target: keep it
            ttl = settings.positive_ttl if found is not None else settings.negative_ttl
            _store(target, found, now + ttl, settings.max_cache_entries)
    if found.__class__ is not str or found != workspace:
        # Another workspace's host, an inactive one, or a chain: serve, never redirect.
        _metrics.invalid_item += 1
        return _Unvouched(workspace)
    return Redirect(target, int(code), workspace)


def _escaped(text: str, unsafe: re.Pattern[str]) -> str:
    return unsafe.sub(lambda m: urllib.parse.quote(m.group(), safe="", errors="replace"), text)


def redirect_response(
    request: Mapping[str, Any], redirect: Redirect, settings: Settings
) -> dict[str, Any]:
    """The redirect to `https://<target><uri>[?<querystring>]`, path and query kept."""
    uri = request.get("uri") or "/"
    if not uri.startswith("/"):
        uri = "/" + uri
    location = "https://" + redirect.target + _escaped(uri, _LOCATION_UNSAFE)
    query = request.get("querystring")
    if query:
        location += "?" + _escaped(query, _QUERY_UNSAFE)
    return {
        "status": str(redirect.code),
        "statusDescription": _REDIRECT_WORDS[redirect.code],
        "headers": {
            "location": [{"key": "Location", "value": location}],
            # Browsers keep a permanent redirect with no max-age for a very long time;
            # this bounds how long a removed redirect outlives its item.
            "cache-control": [
                {"key": "Cache-Control", "value": f"public, max-age={int(settings.positive_ttl)}"}
            ],
        },
    }


# --------------------------------------------------------------------------- responses


def _not_found(settings: Settings) -> dict[str, Any]:
    # In origin-request mode CloudFront caches generated responses like origin ones, so
    # the max-age bounds how long a newly activated domain can still see this 404.
    return {
        "status": "404",
        "statusDescription": "Not Found",
        "headers": {
            "content-type": [{"key": "Content-Type", "value": "text/plain; charset=utf-8"}],
            "cache-control": [{"key": "Cache-Control", "value": settings.not_found_cache_control}],
        },
        "bodyEncoding": "text",
        "body": "404 Not Found: this domain is not connected to a workspace.\n",
    }


def _unavailable() -> dict[str, Any]:
    return {
        "status": "503",
        "statusDescription": "Service Unavailable",
        "headers": {
            "content-type": [{"key": "Content-Type", "value": "text/plain; charset=utf-8"}],
            "cache-control": [{"key": "Cache-Control", "value": "no-store"}],
            "retry-after": [{"key": "Retry-After", "value": "5"}],
        },
        "bodyEncoding": "text",
        "body": "503 Service Unavailable: please retry shortly.\n",
    }


# --------------------------------------------------------------------------- entry points


def route(request: dict[str, Any], event_type: str | None = None) -> dict[str, Any]:
    """Route one CloudFront request object (`event.Records[0].cf.request`), in place.

    Returns the request to forward, or a generated response (404/503). This is the whole
    per-request logic, separate from event unwrapping so it can be benchmarked.
    """
    settings = _settings or _load_settings()
    metrics = _metrics
    metrics.requests += 1
    # CloudFront header format: lowercase name -> list of {key: original case, value}:
    # https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-event-structure.html
    headers: dict[str, Any] = request["headers"]
    spoofed = spoofed_headers(headers)
    if spoofed:
        for name in spoofed:
            del headers[name]
        metrics.spoofed += 1
    now = _clock()

    host_values = headers.get("host")
    raw = host_values[0]["value"] if host_values else ""
    # Fast path: most Host values already are canonical, and only canonical hosts are
    # ever cached, so a hit on the lowercased raw value needs no parsing at all.
    host = raw.lower()
    entry = _cache.get(host)
    workspace: str | Redirect | _Unavailable | None
    if entry is not None and entry[1] > now:
        _cache.move_to_end(host)
        metrics.hit += 1
        workspace = entry[0]
    else:
        host, workspace = _resolve_slow(raw, now, settings)

    if workspace is None:
        metrics.not_found += 1
        result: dict[str, Any] = _not_found(settings)
    elif isinstance(workspace, str):
        headers[WORKSPACE_HEADER] = [{"key": WORKSPACE_HEADER, "value": workspace}]
        if settings.rewrite_host and (event_type or settings.mode) == ORIGIN_REQUEST:
            origin = request.get("origin")
            custom = origin.get("custom") if origin else None
            # Only a custom origin is re-pointed; an S3 origin is CloudFront's business.
            if custom is not None:
                if settings.origin_suffix:
                    custom["domainName"] = workspace + settings.origin_suffix
                # CloudFront sends this Host and checks the origin's TLS certificate
                # against it: the origin's own name, never the viewer's custom domain.
                headers["host"] = [{"key": "Host", "value": custom["domainName"]}]
                headers["x-forwarded-host"] = [{"key": "X-Forwarded-Host", "value": host}]
        result = request
    elif workspace.__class__ is Redirect:
        metrics.redirect += 1
        result = redirect_response(request, workspace, settings)
    else:  # DynamoDB failed and nothing was cached: never route without a workspace
        metrics.unavailable += 1
        result = _unavailable()

    if metrics.requests >= settings.metrics_flush_invocations or now >= metrics.deadline:
        flush_metrics(now)
    return result


def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """Lambda entry point for CloudFront origin-request and viewer-request triggers."""
    cf = event["Records"][0]["cf"]
    config = cf.get("config")
    event_type = config.get("eventType") if config else None
    if event_type not in _REQUEST_EVENTS:
        # Attached to a response trigger by mistake: fail loudly (CloudFront answers 5xx)
        # rather than return a request object where a response is expected.
        raise ValueError(f"unsupported CloudFront event type {event_type!r}")
    return route(cf["request"], event_type)
