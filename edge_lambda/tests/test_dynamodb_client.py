"""The edge's standard-library DynamoDB client, with botocore as the oracle.

* Signing: for thousands of generated GetItem requests (Unicode and long keys, session
  tokens, regions, endpoints, dates from 1970 to 2099) the body is botocore's JSON
  serializer's, byte for byte, and the Authorization, X-Amz-Date and X-Amz-Security-Token
  headers are what botocore's SigV4 signer puts on that same request.
* AWS's published SigV4 test vectors (sigv4_vectors/, see SOURCE.md there) pass.
* Error answers, resets and timeouts lead to the same number of attempts and the same give-up
  as a boto3 client with the edge's retry config, both talking to one scripted HTTP server.
* Against moto (server mode) it reads items and reports errors; TLS is verified.
"""

from __future__ import annotations

import ast
import datetime
import hashlib
import json
import select
import socket
import ssl
import subprocess
import sys
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import botocore.endpoint
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.serialize import create_serializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_lambda import config as edge_config
from edge_lambda import dynamodb, sigv4
from edge_lambda.build import PACKAGE_FILES, build_package, default_config
from edge_lambda.dynamodb import DynamoDBClient, DynamoDBError
from edge_lambda.tests.conftest import MappingTable

VECTORS = Path(__file__).with_name("sigv4_vectors")
GET_ITEM = botocore.session.get_session().get_service_model("dynamodb").operation_model("GetItem")
SERIALIZER = create_serializer("json", include_validation=False)


def client(
    *,
    region: str = "us-east-1",
    endpoint_url: str | None = None,
    access_key: str = "AKIDEXAMPLE",
    secret_key: str = "secret",
    token: str | None = None,
    max_attempts: int = 2,
    read_timeout: float = 0.5,
    wall_clock: Callable[[], float] | None = None,
    ca_bundle: str | None = None,
) -> DynamoDBClient:
    return DynamoDBClient(
        region=region,
        endpoint_url=endpoint_url or dynamodb.endpoint_for(region, {}),
        access_key=access_key,
        secret_key=secret_key,
        session_token=token,
        connect_timeout=0.5,
        read_timeout=read_timeout,
        max_attempts=max_attempts,
        ca_bundle=ca_bundle,
        sleep=lambda seconds: None,
        **({"wall_clock": wall_clock} if wall_clock else {}),
    )


def get_item_params(table: str, host: str) -> dict[str, Any]:
    """The exact call the handler makes."""
    return {
        "TableName": table,
        "Key": {"domain": {"S": host}},
        "ProjectionExpression": "workspaceId, #st",
        "ExpressionAttributeNames": {"#st": "status"},
    }


# --------------------------------------------------------------------------- signing


def botocore_signed(
    params: dict[str, Any],
    *,
    url: str,
    region: str,
    access_key: str,
    secret_key: str,
    token: str | None,
    when: datetime.datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> AWSRequest:
    """What a boto3 client's request is after serializing and SigV4 signing."""
    serialized = SERIALIZER.serialize_to_request(params, GET_ITEM)
    request = AWSRequest(
        method=serialized["method"],
        url=url,
        headers=serialized["headers"],
        data=serialized["body"],
    )
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: when)
    botocore.auth.SigV4Auth(
        Credentials(access_key, secret_key, token), "dynamodb", region
    ).add_auth(request)
    return request


_REGIONS = st.one_of(
    st.sampled_from(
        list(edge_config.REGIONAL_EDGE_CACHE_REGIONS) + ["cn-north-1", "us-gov-west-1"]
    ),
    st.from_regex(r"[a-z]{2}-[a-z]{4,9}-[1-9]", fullmatch=True),
)
_HOSTS = st.one_of(
    st.text(min_size=1, max_size=64),  # any Unicode: json escapes what is not ASCII
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=200, max_size=2048),
    st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z0-9-]{1,20}){1,3}", fullmatch=True),
)
_KEY_CHARS = st.characters(min_codepoint=33, max_codepoint=126)
_ENDPOINTS = st.one_of(
    st.none(),  # the region's public endpoint
    st.sampled_from(
        [
            "http://127.0.0.1:5000",
            "http://localhost:4566/",
            "https://LOCALHOST:8443",
            "https://dynamodb.example.test:443",
            "http://[::1]:8000",
        ]
    ),
)
_WHEN = st.datetimes(
    min_value=datetime.datetime(1970, 1, 2), max_value=datetime.datetime(2099, 12, 31)
).map(lambda dt: dt.replace(microsecond=0))


@settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    region=_REGIONS,
    host=_HOSTS,
    table=st.from_regex(r"[A-Za-z0-9_.-]{3,255}", fullmatch=True),
    access_key=st.text(alphabet=_KEY_CHARS, min_size=16, max_size=128),
    secret_key=st.text(alphabet=_KEY_CHARS, min_size=1, max_size=128),
    token=st.one_of(st.none(), st.text(alphabet=_KEY_CHARS, min_size=1, max_size=1200)),
    endpoint=_ENDPOINTS,
    when=_WHEN,
)
def test_requests_are_signed_byte_for_byte_like_botocore(
    monkeypatch: pytest.MonkeyPatch,
    region: str,
    host: str,
    table: str,
    access_key: str,
    secret_key: str,
    token: str | None,
    endpoint: str | None,
    when: datetime.datetime,
) -> None:
    params = get_item_params(table, host)
    ours = client(
        region=region,
        endpoint_url=endpoint,
        access_key=access_key,
        secret_key=secret_key,
        token=token,
    )
    body = ours.serialize(params)
    headers = ours.signed_headers("GetItem", body, when.replace(tzinfo=datetime.UTC).timestamp())

    url = endpoint or dynamodb.endpoint_for(region, {})
    theirs = botocore_signed(
        params,
        url=url,
        region=region,
        access_key=access_key,
        secret_key=secret_key,
        token=token,
        when=when,
        monkeypatch=monkeypatch,
    )

    assert body == theirs.body
    for name in ("Authorization", "X-Amz-Date", "X-Amz-Target", "Content-Type"):
        assert headers[name] == theirs.headers[name], name
    assert headers.get("X-Amz-Security-Token") == theirs.headers.get("X-Amz-Security-Token")
    # The Host we send is the one botocore signs (derived from the URL).
    # A private helper the stubs leave out: the point is to compare with what botocore signs.
    assert headers["Host"] == botocore.auth._host_from_url(url)  # type: ignore[attr-defined]


def test_a_real_boto3_client_sends_the_same_signed_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The serializer + signer pairing above is what a boto3 client really sends."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    when = datetime.datetime(2026, 11, 28, 23, 59, 59)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: when)
    captured: list[Any] = []

    def before_send(request: Any, **_: Any) -> AWSResponse:
        captured.append(request)

        class Raw:
            def stream(self, **_: Any) -> Iterator[bytes]:
                yield b"{}"

        # The stubs want HTTPHeaders; AWSResponse wraps any mapping in a HeadersDict.
        headers = {"x-amz-crc32": str(zlib.crc32(b"{}"))}
        return AWSResponse(request.url, 200, headers, Raw())  # type: ignore[arg-type]

    for region, token, host in [
        ("eu-west-2", "FwoGZXIvYXdzEJr//session", "bücher.de"),
        ("ap-south-1", None, "gallery.client.com"),
        ("sa-east-1", "t" * 900, "x" * 2048),
    ]:
        boto = boto3.client(
            "dynamodb",
            region_name=region,
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="s3cr3t/+=",
            aws_session_token=token,
        )
        boto.meta.events.register("before-send", before_send)
        params = get_item_params("domain-workspace-mappings", host)
        boto.get_item(**params)
        sent = captured.pop()
        ours = client(region=region, secret_key="s3cr3t/+=", token=token)
        body = ours.serialize(params)
        headers = ours.signed_headers(
            "GetItem", body, when.replace(tzinfo=datetime.UTC).timestamp()
        )
        assert sent.url == ours.meta.endpoint_url + "/"
        assert sent.body == body
        sent_headers = {
            k: v.decode() if isinstance(v, bytes) else v for k, v in sent.headers.items()
        }
        for name, value in headers.items():
            if name != "Host":  # urllib3 adds Host on the wire; botocore signs the same value
                assert sent_headers[name] == value, name


def _vector(name: str) -> tuple[str, str, dict[str, str], bytes]:
    raw = (VECTORS / f"{name}.req").read_bytes().decode("utf-8")
    head, _, body = raw.partition("\n\n")
    request_line, *header_lines = head.split("\n")
    method, path, _ = request_line.split(" ")
    headers: dict[str, str] = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        headers[key] = value
    return method, path, headers, body.encode()


@pytest.mark.parametrize(
    "name",
    sorted({p.stem for p in VECTORS.glob("*.req")}),
)
def test_published_sigv4_vectors(name: str) -> None:
    method, path, headers, body = _vector(name)
    expected = {
        ext: (VECTORS / f"{name}.{ext}").read_text(encoding="utf-8")
        for ext in ("creq", "sts", "authz")
    }
    amz_date, region, service = "20110909T233600Z", "us-east-1", "host"
    payload = hashlib.sha256(body).hexdigest()

    creq, _ = sigv4.sigv4_canonical_request(method, path, "", headers, payload)
    sts = sigv4.sigv4_string_to_sign(amz_date, f"20110909/{region}/{service}/aws4_request", creq)
    authz = sigv4.sigv4_authorization(
        method=method,
        path=path,
        query="",
        headers=headers,
        payload_sha256=payload,
        access_key="AKIDEXAMPLE",
        signing_key=sigv4.sigv4_signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", amz_date[:8], region, service
        ),
        amz_date=amz_date,
        region=region,
        service=service,
    )
    assert (creq, sts, authz) == (expected["creq"], expected["sts"], expected["authz"])


# --------------------------------------------------------------------------- retries


@dataclass
class ScriptedServer:
    """An HTTP/1.1 server on loopback that answers request N with script[N] (keep-alive).

    Steps: ("answer", status, body, headers), ("reset",) (TCP RST), ("close",) (no
    response), ("hang", seconds). After the script: a 200 with one item.
    """

    script: list[tuple[Any, ...]]
    requests: int = 0
    sock: socket.socket = field(init=False)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.stop.set()
        self.sock.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read_request(self, reader: Any) -> bool:
        length = 0
        line = reader.readline()
        if not line:
            return False
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        reader.read(length)
        return True

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        with conn:
            while not self.stop.is_set():
                try:
                    if not self._read_request(reader):
                        return
                except OSError:
                    return
                with self.lock:
                    step = (
                        self.script[self.requests]
                        if self.requests < len(self.script)
                        else ("answer", 200, b'{"Item": {"workspaceId": {"S": "acme"}}}', {})
                    )
                    self.requests += 1
                kind = step[0]
                if kind == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    return
                if kind == "close":
                    return
                if kind == "hang":
                    self.stop.wait(step[1])
                    return
                _, status, body, extra = step
                extra = dict(extra)
                close_after = extra.pop("_close", None) is not None
                headers = {
                    "Content-Type": "application/x-amz-json-1.0",
                    "Content-Length": str(len(body)),
                    "x-amz-crc32": str(zlib.crc32(body)),
                    **extra,
                }
                head = (
                    f"HTTP/1.1 {status} X\r\n"
                    + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                    + "\r\n"
                )
                try:
                    conn.sendall(head.encode() + body)
                except OSError:
                    return
                if close_after:  # an idle keep-alive connection closed by the server
                    return


def _error(code: str, status: int = 400, **headers: str) -> tuple[Any, ...]:
    body = json.dumps(
        {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "x"}
    ).encode()
    return ("answer", status, body, headers)


# Each case: the script, max attempts, and what boto3 ends with (the edge must do the same).
CASES: dict[str, tuple[list[tuple[Any, ...]], int]] = {
    "throttling-then-ok": ([_error("ThrottlingException")], 2),
    "throttling-twice": ([_error("ThrottlingException")] * 2, 2),
    "provisioned-throughput-exceeded": ([_error("ProvisionedThroughputExceededException")] * 3, 3),
    "request-limit-exceeded": ([_error("RequestLimitExceeded")], 2),
    "resource-not-found": ([_error("ResourceNotFoundException")], 2),
    "validation": ([_error("ValidationException")], 2),
    "access-denied": ([_error("AccessDeniedException")], 2),
    "unrecognized-client": ([("answer", 400, b'{"__type":"UnrecognizedClientException"}', {})], 2),
    "internal-server-error": ([_error("InternalServerError", 500)], 2),
    "503-html": ([("answer", 503, b"<html>unavailable</html>", {})], 2),
    "502-empty": ([("answer", 502, b"", {})], 2),
    "504-twice": ([("answer", 504, b"", {})] * 2, 2),
    "429-empty": ([("answer", 429, b"", {})], 2),
    "429-modeled-not-found": ([_error("ResourceNotFoundException", 429)], 2),
    "request-timeout-code": ([_error("RequestTimeoutException")], 2),
    "malformed-json-500": ([("answer", 500, b"{not json", {})], 2),
    "malformed-json-400": ([("answer", 400, b"{not json", {})], 2),
    "crc32-mismatch": ([("answer", 200, b'{"Item": {}}', {"x-amz-crc32": "1"})], 2),
    "connection-reset": ([("reset",)], 2),
    "connection-closed": ([("close",)], 2),
    "read-timeout": ([("hang", 1.0)], 2),
    "reset-three-times": ([("reset",)] * 3, 3),
    "throttle-then-500-then-ok": (
        [_error("ThrottlingException"), _error("InternalServerError", 500)],
        3,
    ),
}


def _run_boto3(url: str, max_attempts: int, calls: int = 1) -> list[str]:
    boto = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="AK",
        aws_secret_access_key="SK",
        config=Config(
            connect_timeout=0.5,
            read_timeout=0.3,
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
        ),
    )
    outcomes = []
    for _ in range(calls):
        try:
            boto.get_item(**get_item_params("t", "a.example.com"))
            outcomes.append("ok")
        except Exception:  # noqa: BLE001 - any give-up is the same decision
            outcomes.append("error")
    return outcomes


def _run_ours(url: str, max_attempts: int, calls: int = 1) -> list[str]:
    ours = client(endpoint_url=url, max_attempts=max_attempts, read_timeout=0.3)
    outcomes = []
    for _ in range(calls):
        try:
            ours.get_item(**get_item_params("t", "a.example.com"))
            outcomes.append("ok")
        except DynamoDBError:
            outcomes.append("error")
    ours.close()
    return outcomes


@pytest.fixture
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore sleeps between attempts in botocore.endpoint; the decision is what is compared.
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda seconds: None)


@pytest.mark.parametrize("case", sorted(CASES))
def test_error_answers_lead_to_the_decisions_boto3_makes(case: str, no_backoff_sleep: None) -> None:
    script, max_attempts = CASES[case]
    results = {}
    for name, run in (("boto3", _run_boto3), ("edge", _run_ours)):
        server = ScriptedServer(list(script))
        try:
            outcome = run(server.url, max_attempts)
        finally:
            server.close()
        results[name] = (server.requests, outcome)
    assert results["edge"] == results["boto3"]


def test_malformed_json_success_is_not_retried_and_is_a_failure(no_backoff_sleep: None) -> None:
    """boto3 returns {} (no item) for a 200 whose body is not JSON; both try once, but the
    edge reports a failure (stale entry or 503) rather than cache a "not found"."""
    script: list[tuple[Any, ...]] = [("answer", 200, b"<html>proxy error</html>", {})]
    results = {}
    for name, run in (("boto3", _run_boto3), ("edge", _run_ours)):
        server = ScriptedServer(list(script))
        try:
            outcome = run(server.url, 2)
            results[name] = (server.requests, outcome)
        finally:
            server.close()
    assert results == {"boto3": (1, ["ok"]), "edge": (1, ["error"])}


def test_retry_quota_runs_out_after_the_same_number_of_retries(no_backoff_sleep: None) -> None:
    """botocore's retry quota (500, 14 per retry) stops retries during a long outage."""
    script: list[tuple[Any, ...]] = [("answer", 500, b"", {})] * 200
    counts = {}
    for name, run in (("boto3", _run_boto3), ("edge", _run_ours)):
        server = ScriptedServer(list(script))
        try:
            outcomes = run(server.url, 2, calls=50)
        finally:
            server.close()
        assert outcomes == ["error"] * 50
        counts[name] = server.requests
    assert counts["edge"] == counts["boto3"] == 50 + 500 // 14


def test_backoff_never_sleeps_past_the_viewer_budget() -> None:
    sleeps: list[float] = []
    ours = DynamoDBClient(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        access_key="a",
        secret_key="b",
        session_token=None,
        connect_timeout=0.1,
        read_timeout=0.1,
        max_attempts=3,
        sleep=sleeps.append,
        rand=lambda: 1.0,
    )
    assert ours._delay(1, throttling=True, retry_after="9000") == 1.0
    assert ours._delay(2, throttling=True, retry_after=None) == 1.0  # botocore: 2 s
    assert ours._delay(1, throttling=False, retry_after=None) == pytest.approx(0.025)


def test_a_dropped_keep_alive_connection_is_replaced_without_an_error() -> None:
    """The server closes an idle kept-alive connection (as DynamoDB does after a while): the
    next call reconnects instead of spending an attempt on a dead socket."""
    server = ScriptedServer([("answer", 200, b"{}", {"_close": "1"})])
    try:
        ours = client(endpoint_url=server.url, max_attempts=1)
        assert ours.get_item(**get_item_params("t", "a.example.com")) == {}
        sock = ours._conn.sock if ours._conn else None
        assert sock is not None  # the client kept it
        assert select.select([sock], [], [], 5)[0]  # the server's close has arrived
        assert ours.get_item(**get_item_params("t", "a.example.com"))["Item"]
        assert server.requests == 2
        ours.close()
    finally:
        server.close()


# --------------------------------------------------------------------------- moto, TLS


@pytest.mark.integration
def test_reads_items_from_moto_with_a_session_token(
    table: MappingTable, aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table.put("gallery.client.com", "acme")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEJr//session-token")
    settings = edge_config.settings_from_config(default_config())
    ours = dynamodb.client_from_environment("us-east-1", settings)
    assert ours.meta.endpoint_url == aws_env
    found = ours.get_item(**get_item_params(table.name, "gallery.client.com"))
    assert found["Item"] == {"workspaceId": {"S": "acme"}, "status": {"S": "active"}}
    assert ours.get_item(**get_item_params(table.name, "nobody.example.com")) == {}
    with pytest.raises(DynamoDBError) as missing:
        ours.get_item(**get_item_params("no-such-table", "x.example.com"))
    assert missing.value.code == "ResourceNotFoundException"
    ours.close()


def test_missing_credentials_are_an_error_not_an_unsigned_request() -> None:
    settings = edge_config.settings_from_config(default_config())
    with pytest.raises(DynamoDBError, match="credentials"):
        dynamodb.client_from_environment("us-east-1", settings, environ={})


def test_endpoint_follows_the_region_and_the_local_override() -> None:
    assert dynamodb.endpoint_for("eu-west-1", {}) == "https://dynamodb.eu-west-1.amazonaws.com"
    assert dynamodb.endpoint_for("cn-north-1", {}) == "https://dynamodb.cn-north-1.amazonaws.com.cn"
    assert dynamodb.endpoint_for("eu-west-1", {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}) == (
        "http://127.0.0.1:1"
    )
    assert dynamodb.endpoint_for(
        "eu-west-1", {"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_DYNAMODB": "http://b:2"}
    ) == ("http://b:2")


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS endpoint on 127.0.0.1 with a self-signed certificate for "localhost"."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def answer(raw: socket.socket) -> None:
        # Not the listener's 0.2 s poll: a handshake on a loaded machine takes longer.
        raw.settimeout(10)
        try:
            with context.wrap_socket(raw, server_side=True) as conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:  # the untrusting client hung up after the handshake
                        return
                    data += chunk
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                    b"x-amz-crc32: "
                    + str(zlib.crc32(b"{}")).encode()
                    + b"\r\nConnection: close\r\n\r\n{}"
                )
        except (OSError, ssl.SSLError):
            pass

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                continue
            # One thread a connection: a client that went quiet cannot hold up the next.
            threading.Thread(target=answer, args=(raw,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"https://localhost:{listener.getsockname()[1]}", cert_file
    stop.set()
    listener.close()


def test_tls_is_verified(tls_server: tuple[str, Path]) -> None:
    url, cert_file = tls_server
    untrusted = client(endpoint_url=url, max_attempts=1)
    with pytest.raises(DynamoDBError, match="CERTIFICATE_VERIFY_FAILED|SSL"):
        untrusted.get_item(**get_item_params("t", "a.example.com"))
    # Two attempts: the first may go out on a connection the untrusting client's failed
    # handshake left behind (a retry is what the client does with a dropped connection).
    trusted = client(endpoint_url=url, max_attempts=2, ca_bundle=str(cert_file))
    assert trusted.get_item(**get_item_params("t", "a.example.com")) == {}
    trusted.close()


# --------------------------------------------------------------------------- no SDK


_STDLIB_ONLY_RUNNER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import handler
result = handler.handler(json.loads(sys.stdin.read()), None)
print(json.dumps({"routed": result["headers"]["workspace-id"][0]["value"],
                  "modules": sorted(sys.modules)}))
"""


@pytest.mark.integration
def test_no_sdk_is_imported_on_the_request_path(tmp_path: Path, table: MappingTable) -> None:
    """The unpacked package answers a miss (a real GetItem on moto) in a fresh interpreter
    that never imports boto3, botocore or urllib3; its modules import the stdlib and each
    other only."""
    own = {name.removesuffix(".py") for name in PACKAGE_FILES}
    imported = set()
    for name in PACKAGE_FILES:
        source = Path(dynamodb.__file__).with_name(name).read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                imported |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.partition(".")[0])
    allowed = sys.stdlib_module_names | {"__future__"} | own
    assert imported <= allowed, imported - allowed

    table.put("gallery.client.com", "acme")
    zip_path = build_package(default_config(), tmp_path / "edge.zip")
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(tmp_path / "task")
    event = json.loads(
        (Path(__file__).with_name("events") / "origin-request-custom.json").read_text()
    )
    completed = subprocess.run(
        [sys.executable, "-I", "-c", _STDLIB_ONLY_RUNNER, str(tmp_path / "task")],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    answer = json.loads(completed.stdout.splitlines()[-1])
    assert answer["routed"] == "acme"
    sdk = [
        m
        for m in answer["modules"]
        if m.partition(".")[0] in {"boto3", "botocore", "urllib3", "s3transfer"}
    ]
    assert sdk == []
