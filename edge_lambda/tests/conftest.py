"""Fixtures for the edge function: a moto server, the mappings table, events, a clock."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from edge_lambda import handler as edge
from edge_lambda.build import default_config

EVENTS_DIR = Path(__file__).with_name("events")
TABLE = "domain-workspace-mappings"
HOME_REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real moto server (HTTP) on a free loopback port, shared by the session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def closed_port_endpoint() -> str:
    """An endpoint nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> str:
    """Point boto3 at moto (its standard AWS_ENDPOINT_URL), with fake credentials only."""
    urllib.request.urlopen(  # a clean moto for every test
        urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"), timeout=5
    ).close()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", HOME_REGION)
    # What the Lambda runtime sets at the edge: the region the function runs in.
    monkeypatch.setenv("AWS_REGION", HOME_REGION)
    return moto_endpoint


@dataclass
class MappingTable:
    """The DynamoDB projection, written the way the Django side writes it."""

    region: str = HOME_REGION
    name: str = TABLE
    client: Any = field(init=False)

    def __post_init__(self) -> None:
        self.client = boto3.client("dynamodb", region_name=self.region)
        self.client.create_table(
            TableName=self.name,
            AttributeDefinitions=[{"AttributeName": "domain", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "domain", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def put(self, domain: str, workspace: str, status: str = "active", version: int = 1) -> None:
        now = "2026-01-01T00:00:00+00:00"
        self.client.put_item(
            TableName=self.name,
            Item={
                "domain": {"S": domain},
                "workspaceId": {"S": workspace},
                "status": {"S": status},
                "createdAt": {"S": now},
                "verifiedAt": {"S": now},
                "updatedAt": {"S": now},
                "version": {"N": str(version)},
            },
        )


@pytest.fixture
def table(aws_env: str) -> MappingTable:
    return MappingTable()


class FakeClock:
    """A monotonic clock the test moves by hand (the handler's TTLs read it)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class LookupCounter:
    """Counts the handler's DynamoDB GetItem calls (wraps the real call, which still runs)."""

    calls: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.calls)


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> LookupCounter:
    counter = LookupCounter()
    real = edge._lookup

    def counting(host: str, settings: edge.Settings) -> str | edge.Redirect | edge.Chain | None:
        counter.calls.append(host)
        return real(host, settings)

    monkeypatch.setattr(edge, "_lookup", counting)
    return counter


ConfigureEdge = Callable[..., ModuleType]


@pytest.fixture
def configure_edge(aws_env: str, clock: FakeClock) -> Iterator[ConfigureEdge]:
    """Install a config (default_config + overrides) and the fake clock in a fresh container."""

    def configure(**overrides: Any) -> ModuleType:
        edge._reset_for_tests(default_config(**overrides), clock=clock)
        return edge

    configure()
    yield configure
    edge._reset_for_tests()


@pytest.fixture
def edge_fn(configure_edge: ConfigureEdge) -> ModuleType:
    """The handler module with the default ve.ai config."""
    return configure_edge()


def load_event(name: str, host: str | None = None, **headers: str) -> dict[str, Any]:
    """A fresh copy of a recorded event, with the Host and extra headers replaced.

    Header names are given in CloudFront's lowercase form with `_` for `-`.
    """
    event = json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    request = event["Records"][0]["cf"]["request"]
    if host is not None:
        request["headers"]["host"] = [{"key": "Host", "value": host}]
    for key, value in headers.items():
        lower = key.replace("_", "-")
        request["headers"][lower] = [{"key": lower.title(), "value": value}]
    return event


def request_of(event: dict[str, Any]) -> dict[str, Any]:
    return event["Records"][0]["cf"]["request"]


def with_event_type(event: dict[str, Any], event_type: str) -> dict[str, Any]:
    """The event as another trigger would send it (`config.eventType`), changed in place."""
    event["Records"][0]["cf"]["config"]["eventType"] = event_type
    return event


def event_for(name: str, host: str, uri: str | None = None,
              query: str | None = None) -> dict[str, Any]:
    """A recorded event for `host`, with another URI or query string when given."""
    event = load_event(name, host)
    if uri is not None:
        request_of(event)["uri"] = uri
    if query is not None:
        request_of(event)["querystring"] = query
    return event
