"""Tenant isolation at the edge, end to end: Django writes the table, the edge function reads it.

edge_lambda/tests cover each path of the handler with hand-written items. Here the items
come from Django's own projection (`edge_sync.edge_sync_hostname`, into moto's DynamoDB), and
Hypothesis throws Host spellings and spoofed headers at the real handler:

- Django's hostname normalization (IDNA 2008, UTS #46) and the edge's (stdlib IDNA 2003,
  deviations refused) never disagree: a Host the edge accepts maps to the record Django
  would have stored for it, or to none;
- every spelling of a registered host (case, trailing dot, port, unicode or punycode,
  full-width dots) routes to that record's workspace or gets the edge's 404, never
  another workspace;
- a viewer-sent `workspace-id` never survives, whatever its case or value, on hit, miss,
  lookup-error, tombstone and unknown-host paths, in both trigger modes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domains.hostnames import HostnameError, normalize_hostname
from domains.models import DomainStatus
from edge import sync as edge_sync
from edge_lambda import handler as edge
from edge_lambda.build import default_config
from tests.factories import CustomDomainFactory, WorkspaceFactory

EVENTS = Path(__file__).resolve().parent.parent / "edge_lambda" / "tests" / "events"
SPOOF_KEYS = ["workspace-id", "Workspace-Id", "WORKSPACE-ID", "workspace-ID"]

# Hostnames in the table: two tenants (one an IDN) and a tombstone.
RECORDS = {
    "gallery.a-client.com": ("ws-a", DomainStatus.ACTIVE),
    "xn--bcher-kva.b-client.com": ("ws-b", DomainStatus.ACTIVE),  # bücher.b-client.com
    "old.c-client.com": ("ws-c", DomainStatus.REMOVED),
}
ROUTED = {host: ws for host, (ws, status) in RECORDS.items() if status == DomainStatus.ACTIVE}
UNICODE_FORMS = {"xn--bcher-kva.b-client.com": "bücher.b-client.com"}


def django_form(raw: str) -> str | None:
    try:
        return normalize_hostname(raw)
    except HostnameError:
        return None


# --- the two normalizations agree --------------------------------------------------------------

_label_chars = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs"))
_any_host = st.builds(
    lambda labels, tld, dot: ".".join([*labels, tld]) + dot,
    st.lists(st.text(_label_chars, min_size=1, max_size=10), min_size=1, max_size=3),
    st.sampled_from(["com", "de", "co.uk", "xn--p1ai", "рф", "ＣＯＭ"]),
    st.sampled_from(["", ".", "。"]),
)


@settings(max_examples=1500, deadline=None)
@given(_any_host)
@example("straße.client.com")  # IDNA 2003 says strasse, IDNA 2008 xn--strae-oqa
@example("\u212a.client.com")  # KELVIN SIGN: both lowercase it to k
@example("ｇａｌｌｅｒｙ.client.com")  # full-width letters
@example("ὈΔΥΣΣΕΎΣ.client.com")  # final sigma, another IDNA 2003/2008 deviation
@example("xn--bcher-kva.b-client.com")
@example("\U0001dfd0.com")  # newer than Unicode 3.2: IDNA 2008 maps it to U+0263
def test_the_edge_and_django_never_map_a_host_to_different_records(raw: str) -> None:
    at_edge = edge.normalize_host(raw)
    in_django = django_form(raw)
    if at_edge is not None and in_django is not None:
        assert at_edge == in_django
    if at_edge is not None and django_form(at_edge) is not None:
        # A record can exist under the edge's form: the raw spelling must mean that record
        # to Django as well, or be refused by it (never a different record).
        assert in_django in (at_edge, None)


def spellings(host: str) -> st.SearchStrategy[str]:
    """Ways a browser, proxy or attacker may spell `host` in a Host header."""
    forms = [host, *([UNICODE_FORMS[host]] if host in UNICODE_FORMS else [])]
    return st.builds(
        lambda form, flips, dot, port: "".join(
            c.upper() if flip else c for c, flip in zip(form, flips + [False] * len(form),
                                                         strict=False)
        ) + dot + port,
        st.sampled_from(forms),
        st.lists(st.booleans(), max_size=40),
        st.sampled_from(["", "."]),
        st.sampled_from(["", ":443", ":80", ":8443", ":"]),
    )


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(RECORDS)).flatmap(lambda h: st.tuples(st.just(h), spellings(h))))
def test_every_spelling_of_a_record_normalizes_to_it_or_nothing(pair: tuple[str, str]) -> None:
    host, spelling = pair
    assert edge.normalize_host(spelling) in (host, None)
    if spelling.isascii():
        # Case, one trailing dot and a port are always understood.
        assert edge.normalize_host(spelling) == host


# --- the handler, against Django's projection ----------------------------------------------------


@pytest.fixture
def projected(aws_stack: Any, db: Any) -> Iterator[None]:
    """RECORDS written to moto's table by Django's own sync, and the edge configured."""
    for host, (slug, status) in RECORDS.items():
        domain = CustomDomainFactory(workspace=WorkspaceFactory(slug=slug), hostname=host,
                                     status=DomainStatus.ACTIVE, edge_version=1)
        assert edge_sync.edge_sync_hostname(hostname=host) == "written"
        if status == DomainStatus.REMOVED:
            type(domain).objects.filter(pk=domain.pk).update(status=status, edge_version=2)
            assert edge_sync.edge_sync_hostname(hostname=host) == "written"
    edge.configure(default_config(max_attempts=1))
    yield
    edge._reset_for_tests()


def event(kind: str, host: str, spoof: list[tuple[str, str]]) -> dict[str, Any]:
    loaded = json.loads((EVENTS / f"{kind}.json").read_text(encoding="utf-8"))
    headers = loaded["Records"][0]["cf"]["request"]["headers"]
    headers["host"] = [{"key": "Host", "value": host}]
    if spoof:
        # CloudFront lowercases the header name; the viewer's spelling is kept in "key".
        headers["workspace-id"] = [{"key": key, "value": value} for key, value in spoof]
    return loaded


def outcome(result: dict[str, Any]) -> str | None:
    """The workspace the request is routed to, or None for an edge-generated answer."""
    if "status" in result:
        assert "workspace-id" not in result.get("headers", {})
        return None
    values = result["headers"].get("workspace-id", [])
    assert len(values) == 1, values
    return str(values[0]["value"])


_spoof_values = st.one_of(st.sampled_from(["ws-a", "ws-b", "ws-c", "evil", ""]),
                          st.text(max_size=20))
_targets = st.one_of(
    st.sampled_from(sorted(RECORDS)).flatmap(lambda h: st.tuples(st.just(h), spellings(h))),
    st.tuples(st.just(None), st.sampled_from(["nobody.d-client.com", "ws-a.example.com",
                                              "[::1]", "", "gallery.a-client.com.evil.com"])),
)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    target=_targets,
    spoof=st.lists(st.tuples(st.sampled_from(SPOOF_KEYS), _spoof_values), max_size=3),
    kind=st.sampled_from(["origin-request-custom", "viewer-request"]),
    dynamodb_fails=st.booleans(),
)
def test_a_request_reaches_its_own_workspace_or_none(
    projected: None, monkeypatch: pytest.MonkeyPatch, target: tuple[str | None, str],
    spoof: list[tuple[str, str]], kind: str, dynamodb_fails: bool,
) -> None:
    host, spelling = target
    cached = edge.normalize_host(spelling) in edge._cache

    def failing(*args: object) -> str | None:
        raise ConnectionError("DynamoDB unreachable")

    with monkeypatch.context() as patch:
        if dynamodb_fails:
            patch.setattr(edge, "_lookup", failing)
        result = edge.handler(copy.deepcopy(event(kind, spelling, spoof)))
    got = outcome(result)
    expected = ROUTED.get(host or "")
    # Never another workspace, and never what the viewer sent unless it is the right one.
    assert got in (expected, None), (spelling, spoof, got)
    if got is None and expected is not None and edge.normalize_host(spelling) == host:
        # A known, active host is refused only when DynamoDB failed with nothing cached.
        assert dynamodb_fails and not cached, (spelling, result)
        assert result["status"] == "503"


def test_the_hit_path_after_a_miss_still_drops_the_viewer_s_header(projected: None) -> None:
    spoof = [("Workspace-Id", "ws-b")]
    first = edge.handler(event("origin-request-custom", "gallery.a-client.com", spoof))
    second = edge.handler(event("origin-request-custom", "GALLERY.a-client.com.:443", spoof))
    assert outcome(first) == outcome(second) == "ws-a"
    tomb = edge.handler(event("viewer-request", "old.c-client.com", [("workspace-id", "ws-c")]))
    assert outcome(tomb) is None and tomb["status"] == "404"
