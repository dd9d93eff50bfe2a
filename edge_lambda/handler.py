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

The function is the modules at the zip's root plus `edge_config.json` (`build.py`
PACKAGE_FILES): this one holds the entry point, routing and the per-container state (the
settings, the host cache, the DynamoDB client, the metrics window); `headers.py` the
spoofable headers, `hosts.py` host normalization, `config.py` the config and its
validation, `metrics.py` the EMF counters, `sigv4.py` request signing, `dynamodb.py` the
GetItem client and `redirects.py` the redirect items and answers. They import only the
standard library and each other (the DynamoDB client is their own: SigV4 and the JSON
protocol over http.client, no boto3 on the request path), because Lambda@Edge caps
viewer-trigger packages at 1 MB, has no layers and no environment variables, and a cold
start pays for every import:
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/edge-functions-restrictions.html
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

# The same files are the package `edge_lambda` in the repository (tests, localdev, the
# build) and top-level modules at the root of the zip, which Lambda puts on sys.path and
# where a relative import has no package to be relative to. So every sibling import is
# written both ways; `__package__` is "edge_lambda" in the repository and "" in Lambda, and
# the type checker reads the first form. edge_lambda/tests/test_build.py holds each pair
# equal.
if TYPE_CHECKING or __package__:
    from .config import (
        CONFIG_FILENAME,
        ORIGIN_REQUEST,
        VIEWER_REQUEST,
        EdgeConfigError,
        Settings,
        settings_from_config,
    )
    from .dynamodb import DynamoDBClient, client_from_environment
    from .headers import spoofed_headers
    from .hosts import is_dns_label, normalize_host, platform_workspace
    from .metrics import Metrics
    from .redirects import Chain, Redirect, Unvouched, redirect_response, redirect_target
else:
    from config import (
        CONFIG_FILENAME,
        ORIGIN_REQUEST,
        VIEWER_REQUEST,
        EdgeConfigError,
        Settings,
        settings_from_config,
    )
    from dynamodb import DynamoDBClient, client_from_environment
    from headers import spoofed_headers
    from hosts import is_dns_label, normalize_host, platform_workspace
    from metrics import Metrics
    from redirects import Chain, Redirect, Unvouched, redirect_response, redirect_target

WORKSPACE_HEADER: Final = "workspace-id"
_REQUEST_EVENTS: Final = frozenset({ORIGIN_REQUEST, VIEWER_REQUEST, None})


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
# Set while a target's own item is read, so a target that is itself a redirect is seen as
# one (refused) instead of being followed: two items redirecting to each other cannot loop.
_following = False


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


# --------------------------------------------------------------------------- settings, metrics


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


# --------------------------------------------------------------------------- lookups


def _lookup(host: str, settings: Settings) -> str | Redirect | Chain | None:
    """One GetItem: the active workspace for `host`, or None. Raises on any AWS failure.
    A Chain only while `_following` (the target of a redirect is itself one)."""
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
    workspace: str | Redirect | None,
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
        # Not _following here, so never a Chain (that is a nested lookup's answer).
        workspace = cast("str | Redirect | None", _lookup(host, settings))
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


def _redirect_for(
    host: str, workspace: str, item: Mapping[str, Any], settings: Settings
) -> Unvouched | Redirect | Chain:
    """The redirect `host`'s item asks for, if its target vouches for it (redirects.py)."""
    global _following
    if _following:
        return Chain()
    wanted = redirect_target(host, item, settings)
    if wanted is None:
        _metrics.invalid_item += 1
        return Unvouched(workspace)
    target, code = wanted
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
        return Unvouched(workspace)
    return Redirect(target, code, workspace)


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
