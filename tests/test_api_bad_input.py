"""Hostile and malformed input: always a 400 (or 404 for paths) naming the field, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from domains.models import CustomDomain, Plan
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_throttling(settings: Any) -> None:
    # Dozens of requests from one user: the rate limits are tested in test_api.py.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            k: "100000/minute" for k in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        },
    }


def assert_400(response: Any, field: str | tuple[str, ...]) -> dict[str, Any]:
    assert response.status_code == 400, (response.status_code, response.content[:500])
    body = response.json()
    error = body["error"]
    assert error["code"] and error["message"]
    fields = (field,) if isinstance(field, str) else field
    assert error.get("field") in fields, error
    return error


BAD_HOSTNAMES = [
    # empty and whitespace
    "",
    "   ",
    "\t",
    # not enough labels, bare public suffixes, unknown suffixes
    "localhost",
    "com",
    "co.uk",
    "github.io",
    "s3.amazonaws.com",
    "gallery.client.invalidtld",
    "123.456",
    # apex names cannot hold a CNAME
    "client.com",
    "client.co.uk",
    "Client.COM.",
    "xn--bcher-kva.de",
    "bücher.de",
    # the platform's own names
    "ve.ai",
    "x.ve.ai",
    "domain.ve.ai",
    "deep.sub.ve.ai",
    "VE.AI.",
    "Domain.VE.ai.",
    # scheme, path, port, query, fragment, user info
    "http://gallery.client.com",
    "https://gallery.client.com/",
    "ftp://gallery.client.com",
    "//gallery.client.com",
    "gallery.client.com/path",
    "gallery.client.com:443",
    "gallery.client.com:",
    "gallery.client.com?x=1",
    "gallery.client.com#top",
    "user@gallery.client.com",
    "user:pw@gallery.client.com",
    "gallery.client.com\\evil",
    # IP literals
    "127.0.0.1",
    "10.0.0.1",
    "1.2.3.4.",
    "::1",
    "[::1]",
    "2001:db8::1",
    "[2001:db8::1]:443",
    "0x7f.0.0.1",
    # wildcards
    "*.client.com",
    "gallery.*.com",
    "*",
    # label and length rules
    "a" * 64 + ".client.com",
    ".".join(["a" * 63] * 4) + ".com",
    "a" * 5000,
    "gallery..client.com",
    ".client.com",
    "gallery.client.com..",
    "-gallery.client.com",
    "gallery-.client.com",
    "gal_lery.client.com",
    "gallery client.com",
    "gal\nlery.client.com",
    "xn--.client.com",
    "xn--zz-zzzzzzzzzz.client.com",
    # NUL, control characters, unicode garbage
    "gallery.client.com\x00",
    "\x00",
    "gal\x00lery.client.com",
    "gallery\x07.client.com",
    "☃☃☃",
    "💩.client.com",
    "\u202egallery.client.com",
    "\ufeff",
    "\ud800.client.com",
    "ü",
    "\u0301gallery.client.com",
]


@pytest.mark.parametrize("hostname", BAD_HOSTNAMES, ids=range(len(BAD_HOSTNAMES)))
def test_bad_hostnames_are_400_on_hostname(api: APIClient, workspace: Any, hostname: str) -> None:
    workspace.plan = Plan.ENTERPRISE
    workspace.save()
    # json.dumps escapes lone surrogates, which the test client's own encoder cannot send.
    body = json.dumps({"hostname": hostname, "workspace": "acme"})
    r = api.post("/api/domains/", body, content_type="application/json")
    assert_400(r, "hostname")
    assert not CustomDomain.objects.exists()


def test_there_are_at_least_fifty_bad_hostnames() -> None:
    assert len(BAD_HOSTNAMES) >= 50
    assert len(BAD_BODIES) >= 25


_ok = {"hostname": "gallery.client.com", "workspace": "acme"}

BAD_BODIES: list[tuple[object, str]] = [
    # the body is not an object
    ([], "body"),
    ([_ok], "body"),
    (42, "body"),
    (4.2, "body"),
    ("gallery.client.com", "body"),
    (None, "body"),
    (True, "body"),
    # missing fields
    ({}, "hostname"),
    ({"workspace": "acme"}, "hostname"),
    ({"hostname": "gallery.client.com"}, "workspace"),
    ({"host": "gallery.client.com", "ws": "acme"}, "hostname"),
    # wrong types for hostname
    ({**_ok, "hostname": None}, "hostname"),
    ({**_ok, "hostname": 123}, "hostname"),
    ({**_ok, "hostname": 1.5}, "hostname"),
    ({**_ok, "hostname": True}, "hostname"),
    ({**_ok, "hostname": []}, "hostname"),
    ({**_ok, "hostname": ["gallery.client.com"]}, "hostname"),
    ({**_ok, "hostname": {"name": "gallery.client.com"}}, "hostname"),
    ({**_ok, "hostname": "x" * 200_000}, "hostname"),
    # wrong types and shapes for workspace
    ({**_ok, "workspace": None}, "workspace"),
    ({**_ok, "workspace": ""}, "workspace"),
    ({**_ok, "workspace": 12.5}, "workspace"),
    ({**_ok, "workspace": ["acme"]}, "workspace"),
    ({**_ok, "workspace": {"slug": "acme"}}, "workspace"),
    ({**_ok, "workspace": "ACME"}, "workspace"),
    ({**_ok, "workspace": "acme!"}, "workspace"),
    ({**_ok, "workspace": "-acme"}, "workspace"),
    ({**_ok, "workspace": "a" * 64}, "workspace"),
    ({**_ok, "workspace": "acme\x00"}, "workspace"),
    ({**_ok, "workspace": "ácme"}, "workspace"),
    ({**_ok, "workspace": False}, "workspace"),
]


@pytest.mark.parametrize("body,field", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_bad_bodies_are_400_naming_the_field(
    api: APIClient, workspace: Any, body: object, field: str
) -> None:
    r = api.post("/api/domains/", json.dumps(body), content_type="application/json")
    assert_400(r, field)
    assert not CustomDomain.objects.exists()


BAD_LEGACY_BODIES: list[tuple[object, str]] = [
    ([], "body"),
    (None, "body"),
    ({}, "domain"),
    ({"subdomain": "gallery", "workspaceId": "acme"}, "domain"),
    ({"subdomain": "gallery", "domain": "", "workspaceId": "acme"}, "domain"),
    ({"subdomain": "gallery", "domain": None, "workspaceId": "acme"}, "domain"),
    ({"subdomain": "gallery", "domain": ["client.com"], "workspaceId": "acme"}, "domain"),
    ({"subdomain": "gallery", "domain": "client.com"}, "workspaceId"),
    ({"subdomain": "gallery", "domain": "client.com", "workspaceId": None}, "workspaceId"),
    ({"subdomain": "gallery", "domain": "client.com", "workspaceId": "Not A Slug"},
     "workspaceId"),
    ({"subdomain": ["x"], "domain": "client.com", "workspaceId": "acme"}, "subdomain"),
    ({"subdomain": "a/b", "domain": "client.com", "workspaceId": "acme"}, "subdomain"),
    ({"subdomain": "*", "domain": "client.com", "workspaceId": "acme"}, "subdomain"),
    ({"subdomain": "a:80", "domain": "client.com", "workspaceId": "acme"}, "subdomain"),
    ({"subdomain": "a" * 64, "domain": "client.com", "workspaceId": "acme"}, "subdomain"),
    ({"subdomain": "gal lery", "domain": "client.com", "workspaceId": "acme"}, "subdomain"),
    ({"subdomain": "", "domain": "client.com", "workspaceId": "acme"}, "domain"),
    ({"subdomain": "x", "domain": "ve.ai", "workspaceId": "acme"}, "domain"),
    ({"subdomain": "x", "domain": "co.uk", "workspaceId": "acme"}, "domain"),
    ({"subdomain": "x", "domain": "https://client.com", "workspaceId": "acme"}, "domain"),
    ({"subdomain": "x", "domain": "127.0.0.1", "workspaceId": "acme"}, "domain"),
    ({"subdomain": "x", "domain": "client.com\x00", "workspaceId": "acme"}, "domain"),
    ({"subdomain": "x", "domain": "☃", "workspaceId": "acme"}, "domain"),
]


@pytest.mark.parametrize("body,field", BAD_LEGACY_BODIES, ids=range(len(BAD_LEGACY_BODIES)))
def test_bad_legacy_bodies_are_400_naming_the_field(
    api: APIClient, workspace: Any, body: object, field: str
) -> None:
    r = api.post("/api/domains/register", json.dumps(body), content_type="application/json")
    assert_400(r, field)
    assert not CustomDomain.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"hostname": "a.client.com",}', b"{'hostname': 'x'}", b"\xff\xfe\x00",
     b'{"hostname": "\\ud800"', b"NaN", b'{"hostname": NaN, "workspace": "acme"}', b"",
     b"[" * 10_000 + b"]" * 10_000],
)
def test_malformed_json_is_400_never_500(api: APIClient, workspace: Any, raw: bytes) -> None:
    r = api.generic("POST", "/api/domains/", raw, content_type="application/json")
    # An empty body parses as no data: "hostname" is then the missing field.
    assert_400(r, ("body", "hostname"))


@pytest.mark.parametrize(
    "path",
    ["%00", "a%00b.client.com", "%FF%FE", "%E2%80%AE", "x" * 5000, "..", "%2E%2E",
     "[::1]", "127.0.0.1", "*.client.com", "a%20b", "%F0%9F%92%A9"],
)
def test_weird_paths_are_404_never_500(api: APIClient, workspace: Any, path: str) -> None:
    for method, url in [
        ("get", f"/api/domains/{path}/"),
        ("delete", f"/api/domains/{path}/"),
        ("post", f"/api/domains/{path}/verify"),
        ("get", f"/api/domains/verify/{path}"),
    ]:
        r = getattr(api, method)(url)
        assert r.status_code == 404, (method, url, r.status_code)
        assert r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "query,status_code",
    [("?page=abc", 404), ("?page=0", 404), ("?page=-1", 404), ("?page=%00", 404),
     ("?page_size=-5", 200), ("?page_size=abc", 200), ("?page_size=99999999999999999999", 200),
     # An empty parameter means "no filter", as in an HTML form.
     ("?status=", 200), ("?status=%00", 400), ("?workspace=", 200), ("?workspace=%E2%98%83", 400),
     ("?workspace=acme&workspace=other", 403)],
)
def test_weird_list_queries_never_500(
    api: APIClient, workspace: Any, query: str, status_code: int
) -> None:
    WorkspaceFactory(slug="other")
    r = api.get(f"/api/domains/{query}")
    assert r.status_code == status_code, r.content[:300]
    if status_code >= 400:
        assert r.json()["error"]["code"]


@hsettings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    hostname=st.one_of(
        st.text(max_size=80),
        st.from_regex(r"[a-zA-Z0-9\-.*_:/\u00e0-\u00ff]{1,40}", fullmatch=True),
        st.integers(),
        st.none(),
        st.booleans(),
        st.lists(st.text(max_size=5), max_size=3),
    ),
    workspace_value=st.one_of(st.just("acme"), st.text(max_size=10), st.integers(), st.none()),
)
def test_fuzzed_register_bodies_never_500(
    api: APIClient, workspace: Any, hostname: object, workspace_value: object
) -> None:
    body = {"hostname": hostname, "workspace": workspace_value}
    r = api.post("/api/domains/", json.dumps(body), content_type="application/json")
    assert r.status_code in {201, 400, 403, 409}, (body, r.status_code, r.content[:300])
    error = r.json().get("error")
    if r.status_code == 400:
        assert error["field"] in {"hostname", "workspace"}
