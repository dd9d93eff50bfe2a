"""The OpenAPI schema and the docs page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from domains.dns_doctor import DiagnosisCode
from tests.factories import CustomDomainFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # Factories hash a password per user; PBKDF2 makes that ~0.3 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

PATHS = {
    "/api/domains/": {"get", "post"},
    "/api/domains/{hostname}/": {"get", "delete"},
    "/api/domains/{hostname}/verify/": {"post"},
    "/api/domains/{hostname}/release/": {"post"},
    "/api/domains/register": {"post"},
    "/api/domains/verify/{domain}": {"get"},
    "/api/workspaces/{slug}/": {"get"},
    # The main app's sync API, with its signature scheme.
    "/api/service/workspaces/{external_id}": {"get", "put", "delete"},
    "/api/service/workspaces/{external_id}/members/{subject}": {"put", "delete"},
    "/api/service/import": {"post"},
}


@pytest.fixture
def schema(db: Any) -> dict[str, Any]:
    r = Client().get("/api/schema/?format=json")
    assert r.status_code == 200
    return r.json()


def test_schema_is_valid_openapi(schema: dict[str, Any]) -> None:
    validate_schema(schema)  # raises on an invalid document
    assert schema["openapi"].startswith("3.")


def test_schema_documents_every_endpoint(schema: dict[str, Any]) -> None:
    for path, methods in PATHS.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), (path, set(schema["paths"][path]))
    # Each path once: the twin spelling (with or without the final slash) is answered but
    # not documented.
    assert set(schema["paths"]) == set(PATHS)


def test_schema_documents_bodies_and_error_shapes(schema: dict[str, Any]) -> None:
    ops = schema["paths"]
    register = ops["/api/domains/"]["post"]
    body = register["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/DomainRegister")
    # The record plus `pair` and `notes` (a registration with include_www, docs/redirects.md).
    assert register["responses"]["201"]["content"]["application/json"]["schema"]["$ref"] \
        .endswith("/DomainRegisterAnswer")
    for code in ("400", "401", "403", "409", "429"):
        ref = register["responses"][code]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/Error"), code
    assert {"200", "404"} <= set(ops["/api/domains/{hostname}/"]["get"]["responses"])
    assert "202" in ops["/api/domains/{hostname}/verify/"]["post"]["responses"]
    assert "429" in ops["/api/domains/{hostname}/verify/"]["post"]["responses"]

    components = schema["components"]["schemas"]
    assert components["Error"]["required"] == ["error"]
    assert set(components["ErrorDetail"]["required"]) == {"code", "message"}
    # The seed's three fields, plus the optional redirect ones (docs/redirects.md): a seed
    # frontend's body is still complete.
    assert set(components["LegacyRegister"]["properties"]) == {
        "subdomain", "domain", "workspaceId", "redirectTo", "redirectCode", "includeWww"
    }
    assert set(components["LegacyRegister"]["required"]) == {"domain", "workspaceId"}
    # The list is paginated.
    list_ref = ops["/api/domains/"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"]["$ref"]
    assert list_ref.endswith("/PaginatedDomainList")


def test_responses_match_the_documented_domain_shape(
    schema: dict[str, Any], api: APIClient, workspace: Any
) -> None:
    """The serializer and the schema cannot drift apart: same keys, required ones present."""
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    domain_schema = schema["components"]["schemas"]["Domain"]
    record = api.get("/api/domains/gallery.client.com/").json()
    assert set(record) == set(domain_schema["properties"])
    assert set(domain_schema["required"]) <= set(record)
    # Both spellings of the hostname are documented.
    assert {"hostname", "hostname_unicode"} <= set(domain_schema["required"])
    assert domain_schema["properties"]["hostname_unicode"]["type"] == "string"
    record_schema = schema["components"]["schemas"]["DnsRecord"]
    for dns_record in record["dns_records"]:
        assert set(dns_record) == set(record_schema["properties"])

    error = api.get("/api/domains/missing.client.com/").json()
    assert set(error) == {"error"}
    assert set(error["error"]) <= set(schema["components"]["schemas"]["ErrorDetail"]["properties"])


def test_diagnosis_is_documented_with_its_stable_codes(
    schema: dict[str, Any], api: APIClient, workspace: Any
) -> None:
    """The DNS doctor's answer matches its schema on detail and list answers."""
    diagnosis = [{"code": "zone_appended", "message": "m", "fix": "f", "docs_url": "u"}]
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com",
                        checks={"dns": {"ok": False, "detail": "", "at": "2026-12-07T13:05:00Z",
                                        "diagnosis": diagnosis}})
    domain_schema = schema["components"]["schemas"]["Domain"]
    assert "diagnosis" in domain_schema["required"]
    item_ref = domain_schema["properties"]["diagnosis"]["items"]["$ref"]
    item_schema = schema["components"]["schemas"][item_ref.rsplit("/", 1)[1]]
    assert set(item_schema["properties"]) == {"code", "message", "fix", "docs_url"}
    codes = schema["components"]["schemas"]["DiagnosisCodeEnum"]["enum"]
    assert set(codes) == {c.value for c in DiagnosisCode}
    assert api.get("/api/domains/gallery.client.com/").json()["diagnosis"] == diagnosis
    listed = api.get("/api/domains/").json()["results"]
    assert [d["diagnosis"] for d in listed] == [diagnosis]


def test_docs_page_works_offline(db: Any) -> None:
    r = Client().get("/api/docs/")
    assert r.status_code == 200
    html = r.content.decode()
    # Swagger UI comes from our own static files (drf-spectacular-sidecar), not a CDN.
    assert "drf_spectacular_sidecar/swagger-ui-dist" in html
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    assert "/api/schema/" in html


def test_the_sync_api_is_documented_with_its_signature_scheme(schema: dict[str, Any]) -> None:
    scheme = schema["components"]["securitySchemes"]["mainAppServiceSignature"]
    assert scheme["type"] == "apiKey" and scheme["name"] == "X-Vedomains-Signature"
    assert "vedomains-hmac-sha256-v2" in scheme["description"]
    for path, item in schema["paths"].items():
        if path.startswith("/api/service/"):
            for operation in item.values():
                assert operation["security"] == [{"mainAppServiceSignature": []}], path
