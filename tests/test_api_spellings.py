"""Every /api/ answer is JSON, whatever the spelling or size;
409 beats 403 at the plan limit; only valid input counts towards the register limit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from domains.models import CustomDomain, DomainStatus
from tests.factories import CustomDomainFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def token_client(owner: Any) -> Client:
    """A client as a script would be: token auth, and Django's CSRF checks switched on."""
    token = Token.objects.create(user=owner)
    return Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {token.key}")


def assert_json(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    return response.json()


@pytest.mark.parametrize("path", ["/api/domains/", "/api/domains"])
def test_register_answers_on_both_spellings(token_client: Client, workspace: Any,
                                            path: str) -> None:
    r = token_client.post(path, {"hostname": "gallery.client.com", "workspace": "acme"},
                          content_type="application/json")
    assert assert_json(r, 201)["hostname"] == "gallery.client.com"


@pytest.mark.parametrize("suffix", ["/", ""])
def test_show_and_remove_answer_on_both_spellings(token_client: Client, workspace: Any,
                                                  suffix: str) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    assert assert_json(token_client.get(f"/api/domains/gallery.client.com{suffix}"),
                       200)["hostname"] == "gallery.client.com"
    r = token_client.delete(f"/api/domains/gallery.client.com{suffix}")
    assert assert_json(r, 200)["status"] == DomainStatus.REMOVED


@pytest.mark.parametrize("suffix", ["/", ""])
def test_verify_answers_on_both_spellings(token_client: Client, workspace: Any,
                                          suffix: str) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    r = token_client.post(f"/api/domains/gallery.client.com/verify{suffix}")
    assert assert_json(r, 202)["hostname"] == "gallery.client.com"


@pytest.mark.parametrize("path", ["/api/domains/register", "/api/domains/register/"])
def test_the_seed_register_path_answers_on_both_spellings(token_client: Client,
                                                          workspace: Any, path: str) -> None:
    r = token_client.post(path, {"subdomain": "gallery", "domain": "client.com",
                                 "workspaceId": "acme"}, content_type="application/json")
    assert assert_json(r, 200)["hostname"] == "gallery.client.com"  # the seed answered 200


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unknown_paths_answer_a_json_404_for_every_method(token_client: Client,
                                                          method: str) -> None:
    r = getattr(token_client, method)("/api/nothing/here", "{}", content_type="application/json")
    assert assert_json(r, 404)["error"]["code"] == "not_found"


def test_a_wrong_method_is_a_json_405(token_client: Client, workspace: Any) -> None:
    r = token_client.put("/api/domains", "{}", content_type="application/json")
    assert assert_json(r, 405)["error"]["code"] == "method_not_allowed"


def test_a_session_post_without_csrf_token_is_a_json_403(owner: Any, workspace: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    r = client.post("/api/domains", {"hostname": "gallery.client.com", "workspace": "acme"},
                    content_type="application/json")
    body = assert_json(r, 403)
    assert "CSRF" in body["error"]["message"]


# --- item 4: a large body ------------------------------------------------------------------


def test_a_body_over_the_upload_limit_is_413_json(token_client: Client, workspace: Any) -> None:
    body = json.dumps({"hostname": "gallery.client.com", "workspace": "acme",
                       "padding": "x" * (6 * 1024 * 1024)})
    r = token_client.post("/api/domains/", body, content_type="application/json")
    error = assert_json(r, 413)["error"]
    assert (error["code"], error["field"]) == ("body_too_large", "body")
    assert not CustomDomain.objects.exists()


def test_multipart_bodies_are_refused_415(token_client: Client, workspace: Any) -> None:
    r = token_client.post("/api/domains/", {"hostname": "gallery.client.com",
                                            "workspace": "acme"})  # multipart by default
    assert assert_json(r, 415)["error"]["code"] == "unsupported_media_type"


# --- item 5: already registered beats the plan limit ----------------------------------------


def test_already_registered_wins_over_the_plan_limit(token_client: Client, workspace: Any,
                                                     settings: Any) -> None:
    settings.VEDOMAINS_PLAN_LIMITS = {**settings.VEDOMAINS_PLAN_LIMITS, "pro": 1}
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    r = token_client.post("/api/domains/", {"hostname": "Gallery.Client.com",
                                            "workspace": "acme"},
                          content_type="application/json")
    assert assert_json(r, 409)["error"]["code"] == "already_registered"
    r = token_client.post("/api/domains/", {"hostname": "other.client.com",
                                            "workspace": "acme"},
                          content_type="application/json")
    assert assert_json(r, 403)["error"]["code"] == "domain_limit_reached"


# --- item 7: only valid input counts towards the per-user register limit --------------------


def test_bad_input_does_not_spend_the_register_limit(token_client: Client, workspace: Any,
                                                     settings: Any) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                                   "domain_register_user": "2/hour"},
    }
    bad = [{"hostname": "not a hostname", "workspace": "acme"},
           {"hostname": "client.com", "workspace": "acme"},  # apex
           {"workspace": "acme"},
           {"hostname": "x.ve.ai", "workspace": "acme"}]
    for body in bad * 3:
        r = token_client.post("/api/domains/", body, content_type="application/json")
        assert assert_json(r, 400)["error"]["field"] == "hostname"
    for n in range(2):
        r = token_client.post("/api/domains/", {"hostname": f"d{n}.client.com",
                                                "workspace": "acme"},
                              content_type="application/json")
        assert_json(r, 201)
    r = token_client.post("/api/domains/", {"hostname": "d9.client.com", "workspace": "acme"},
                          content_type="application/json")
    assert assert_json(r, 429)["error"]["code"] == "throttled"
    assert int(r["Retry-After"]) > 0


# --- item 10: the Unicode form beside the punycode ------------------------------------------


def test_a_unicode_hostname_comes_back_in_both_forms(token_client: Client,
                                                     workspace: Any) -> None:
    r = token_client.post("/api/domains/", {"hostname": "Bücher.Client.com",
                                            "workspace": "acme"},
                          content_type="application/json")
    body = assert_json(r, 201)
    assert body["hostname"] == "xn--bcher-kva.client.com"
    assert body["hostname_unicode"] == "bücher.client.com"
    shown = assert_json(token_client.get("/api/domains/bücher.client.com/"), 200)
    assert shown["hostname_unicode"] == "bücher.client.com"
    listed = assert_json(token_client.get("/api/domains/"), 200)["results"]
    assert [d["hostname_unicode"] for d in listed] == ["bücher.client.com"]
    CustomDomainFactory(workspace=workspace, hostname="plain.client.com")
    assert assert_json(token_client.get("/api/domains/plain.client.com/"),
                       200)["hostname_unicode"] == "plain.client.com"


def test_django_s_own_csrf_refusal_is_json_under_api_only(rf: Any) -> None:
    from api.views import csrf_failure

    r = csrf_failure(rf.post("/api/anything"), reason="CSRF cookie not set.")
    assert r.status_code == 403 and r["Content-Type"].startswith("application/json")
    body = json.loads(r.content)
    assert body["error"]["code"] == "csrf_failed" and "cookie not set" in body["error"]["message"]
    page = csrf_failure(rf.post("/admin/login/"), reason="CSRF cookie not set.")
    assert page.status_code == 403 and page["Content-Type"].startswith("text/html")
