"""boto3 clients built once per process, with explicit timeouts, and error classification."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from django.conf import settings

from domains.integrations import ratelimit
from domains.integrations.errors import IntegrationError
from vedomains_site.observability import aws_metrics

# Every certificate and distribution the app creates carries this tag, and the app's IAM
# policy (deploy/app-iam-policy.yaml) lets it update or delete only resources that carry
# it: a compromised worker cannot touch the platform's own distributions or certificates.
MANAGED_TAG_KEY = "vedomains-managed"
MANAGED_TAG_VALUE = "true"

_lock = threading.Lock()
_clients: dict[tuple[str, str, str | None], Any] = {}

# Codes AWS uses for "slow down" or "try again": retried with backoff, never a verdict.
# Every code the metrics count as a throttle is one (a quota is ours, never the customer's).
TRANSIENT_CODES = aws_metrics.THROTTLE_CODES | frozenset(
    {
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServerErrorException",
        "PreconditionFailed",
        "InvalidIfMatchVersion",
        "TransactionConflictException",
    }
)


def client(service: str, region: str | None = None) -> Any:
    """A cached client; the cache key includes the endpoint so tests can point elsewhere."""
    region = region or settings.VEDOMAINS_AWS_REGION
    endpoint = settings.VEDOMAINS_AWS_ENDPOINT_URL
    key = (service, region, endpoint)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _clients:
            session = boto3.session.Session()
            # boto3-stubs overloads one literal name per service; ours is a parameter.
            _clients[key] = session.client(  # type: ignore[call-overload]
                service,
                region_name=region,
                endpoint_url=endpoint,
                config=Config(
                    connect_timeout=settings.VEDOMAINS_AWS_CONNECT_TIMEOUT_SECONDS,
                    read_timeout=settings.VEDOMAINS_AWS_READ_TIMEOUT_SECONDS,
                    # Our own task retries carry the long backoff; botocore's retries only
                    # smooth over a blip so one call does not hang a worker for minutes.
                    retries={"max_attempts": 3, "mode": "standard"},
                    max_pool_connections=50,
                ),
            )
            # AWS rate limits are per account: every worker draws from one shared bucket.
            _clients[key].meta.events.register("before-send", ratelimit.before_send)
            # Calls, errors and throttles by operation, counted from botocore's events.
            aws_metrics.instrument(_clients[key])
        return _clients[key]


def reset_clients() -> None:
    with _lock:
        _clients.clear()


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def classify(exc: BaseException, action: str) -> IntegrationError:
    """Turn a botocore exception into the project error, deciding permanent vs transient."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        transient = code in TRANSIENT_CODES or status >= 500 or status == 429
        return IntegrationError(f"{action}: {code}: {message}", permanent=not transient, code=code)
    if isinstance(
        exc,
        EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError | ConnectionClosedError,
    ):
        return IntegrationError(f"{action}: {exc}", permanent=False, code="network")
    if isinstance(exc, BotoCoreError):
        return IntegrationError(f"{action}: {exc}", permanent=False, code=type(exc).__name__)
    return IntegrationError(f"{action}: {exc}", permanent=False, code=type(exc).__name__)
