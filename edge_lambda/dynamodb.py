"""A DynamoDB GetItem client on the standard library.

SigV4 (sigv4.py), the JSON 1.0 protocol over one kept-alive http.client connection, and
botocore's "standard" retry decisions. boto3 costs ~240 ms of import at every cold start,
which is most of what the first visitor of a quiet custom domain waits for; this costs the
~20 ms of importing http.client. edge_lambda/tests/test_dynamodb_client.py holds it to
botocore byte for byte.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import select
import ssl
import time
import urllib.parse
import zlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

# edge_lambda.dynamodb in the repository, `dynamodb` at the zip's root (see handler.py).
if TYPE_CHECKING or __package__:
    from .config import RETRY_BACKOFF_MAX_SECONDS, Settings
    from .sigv4 import sigv4_authorization, sigv4_signing_key
else:
    from config import RETRY_BACKOFF_MAX_SECONDS, Settings
    from sigv4 import sigv4_authorization, sigv4_signing_key

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
        # (validate_config counts RETRY_BACKOFF_MAX_SECONDS per retry).
        return min(delay, RETRY_BACKOFF_MAX_SECONDS)

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
