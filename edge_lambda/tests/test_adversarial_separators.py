"""Attacks on the edge's header stripping with other separators.

Some origin frameworks and proxies fold every non-alphanumeric character of a header name
(Node's and Go's lenient parsers keep dots and tildes; several frameworks compare names
without separators), so `workspace.id`, `workspace~id` or `x.forwarded.host` read as the
header the edge sets. The edge must remove them all, whatever separator is used.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

import pytest

from edge_lambda.tests.conftest import ConfigureEdge, MappingTable, load_event, request_of

pytestmark = pytest.mark.integration

HOST = "gallery.client.com"
EVIL = "evil-workspace"
# The names the edge itself sets, with the values it sets.
EDGE_OWN = {"workspace-id": "acme", "x-forwarded-host": HOST}
SQUASHED = {"workspaceid", "xworkspaceid", "xforwardedhost", "xforwardedserver",
            "xoriginalhost", "xhost", "xhttphostoverride", "forwarded"}


@pytest.fixture
def fn(configure_edge: ConfigureEdge, table: MappingTable) -> ModuleType:
    table.put(HOST, "acme")
    return configure_edge()


def send(fn: ModuleType, headers: dict[str, str]) -> dict[str, Any]:
    event = load_event("origin-request-custom", HOST)
    for name, value in headers.items():
        request_of(event)["headers"][name] = [{"key": name, "value": value}]
    return fn.handler(event)


def assert_only_ours(result: dict[str, Any]) -> None:
    """Read as a separator-folding origin would: only the edge's own names and values."""
    for name, values in result["headers"].items():
        if re.sub(r"[^a-z0-9]", "", name.lower()) in SQUASHED:
            assert name in EDGE_OWN, f"{name} reached the origin"
            assert [v["value"] for v in values] == [EDGE_OWN[name]], name
    assert EVIL not in str(result["headers"])


@pytest.mark.parametrize("name", [
    "workspace.id", "workspace~id", "x.workspace.id", "x~workspace~id", "workspace..id",
    "x.forwarded.host", "x~forwarded~host", "x-forwarded.host", "x.original.host",
    "x.host", "x~host", "x.forwarded.server", "x.http.host.override", "-workspace-id",
    "workspace-id-", "x+forwarded+host", "x!workspace!id", "work.space.id",
])
def test_attack_dotted_and_tilde_spellings_reach_the_origin(fn: ModuleType, name: str) -> None:
    value = f"{EVIL}.ve.ai" if "host" in name or "server" in name else EVIL
    assert_only_ours(send(fn, {name: value}))


def test_attack_separator_spellings_are_counted_as_spoofing(fn: ModuleType) -> None:
    assert_only_ours(send(fn, {"workspace.id": EVIL, "x~forwarded~host": EVIL}))
    assert fn._metrics.spoofed == 1


def test_guard_ordinary_headers_still_reach_the_origin(fn: ModuleType) -> None:
    result = send(fn, {"x-request-id": "abc", "accept.language": "en", "x-hostname": "h"})
    assert {"x-request-id", "accept.language", "x-hostname"} <= set(result["headers"])
    assert result["headers"]["host"][0]["value"]
