"""API errors in plain words: the limits, the character, the type; unknown fields named;
the seed path's messages carrying what its frontend must show (it shows only `message`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from domains.models import CustomDomain, DomainStatus
from tests.factories import CustomDomainFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

OK = {"hostname": "gallery.client.com", "workspace": "acme"}
SEED_OK = {"subdomain": "gallery", "domain": "client.com", "workspaceId": "acme"}


def _error(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    return response.json()["error"]


def _register(api: APIClient, body: object, path: str = "/api/domains/") -> Any:
    return api.post(path, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("hostname,words", [
    ("my_gallery.example.com", "underscores are not allowed in hostnames"),
    ("gallery\U0001F600.example.com", "(U+1F600), which is not allowed in a hostname"),
    ("a." * 150 + "example.com", "at most 253"),
    ("x" * 70 + ".example.com", "is 70 characters long; a label (the part between two dots) "
                                "may have at most 63"),
    (42, "'hostname' must be a string"),
    (4.5, "'hostname' must be a string"),
])
def test_hostname_errors_in_plain_words(api: APIClient, workspace: Any, hostname: object,
                                        words: str) -> None:
    error = _error(_register(api, {**OK, "hostname": hostname}))
    assert error["field"] == "hostname"
    assert words in error["message"]
    assert "Codepoint" not in error["message"] and "too long" not in error["message"].lower()[:9]


def test_a_long_hostname_is_not_echoed_cut_in_the_middle(api: APIClient, workspace: Any) -> None:
    message = _error(_register(api, {**OK, "hostname": "a" * 60 + "." + "b" * 250 + ".com"})
                     )["message"]
    assert message == "The hostname is 315 characters long; a hostname may have at most 253."


@pytest.mark.parametrize("path,body", [("/api/domains/", OK), ("/api/domains/register", SEED_OK)])
def test_unknown_fields_are_refused_by_name(api: APIClient, workspace: Any, path: str,
                                            body: dict[str, str]) -> None:
    error = _error(_register(api, {**body, "pad": "x" * 100_000}, path))
    assert (error["field"], error["code"]) == ("pad", "unknown_field")
    assert "Unknown field 'pad'" in error["message"]
    for accepted in body:
        assert accepted in error["message"]
    assert not CustomDomain.objects.exists()


def test_a_missing_field_is_named_before_unknown_ones(api: APIClient, workspace: Any) -> None:
    error = _error(_register(api, {"host": "gallery.client.com", "workspace": "acme"}))
    assert error["field"] == "hostname"
    assert "host" in error["details"]["errors"]


def test_the_seed_frontend_body_is_accepted(api: APIClient, workspace: Any) -> None:
    r = _register(api, SEED_OK, "/api/domains/register")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "pending_validation"


def test_seed_409_message_carries_the_txt_record(api: APIClient, workspace: Any) -> None:
    other = WorkspaceFactory(slug="other", plan="pro")
    CustomDomainFactory(workspace=other, hostname="gallery.client.com",
                        status=DomainStatus.ACTIVE)
    r = _register(api, SEED_OK, "/api/domains/register")
    assert r.status_code == 409
    body = r.json()
    record = body["error"]["details"]["dns_records"][0]
    assert body["status"] == "error"
    assert record["name"] in body["message"] and record["value"] in body["message"]
    assert "below" not in body["message"]


@pytest.mark.parametrize("path", ["/api/domains/verify/", "/api/domains/verify"])
def test_seed_verify_without_a_hostname_names_it(api: APIClient, workspace: Any,
                                                 path: str) -> None:
    r = api.get(path)
    error = _error(r)
    assert (error["field"], error["code"]) == ("domain", "required")
    assert "hostname to check is missing" in error["message"]
    assert r.json()["status"] == "error"
