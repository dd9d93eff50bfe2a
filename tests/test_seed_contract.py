"""The seed's contract: a frontend and readers written against the seed work unchanged.

The requests and answers below are the seed's own examples (shared/seed, sections 4 and 5:
`POST /api/domains/register`, `GET /api/domains/verify/<domain>`, the DynamoDB item).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient

from domains.models import CustomDomain, DomainStatus, Role
from edge import sync as edge_sync
from tests.factories import CustomDomainFactory, MembershipFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
SEED_REGISTER = {"subdomain": "gallery", "domain": "client.com", "workspaceId": "acme"}
SEED_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def seed_error(response: Any) -> dict[str, Any]:
    """The seed frontend's error shape, with ours beside it."""
    body = response.json()
    assert body["status"] == "error", body
    assert isinstance(body["message"], str) and body["message"], body
    assert body["message"] == body["error"]["message"]
    return body["error"]


# --- POST /api/domains/register -----------------------------------------------------------------


def test_seed_register_answers_200_pending_validation_with_a_message(api: APIClient,
                                                                     workspace: Any) -> None:
    r = api.post("/api/domains/register", SEED_REGISTER, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "pending_validation"
    assert "gallery.client.com" in body["message"] and "domain.ve.ai" in body["message"]
    # Our fields stay beside the seed's.
    assert body["hostname"] == "gallery.client.com"
    assert body["state"] == DomainStatus.PENDING_VALIDATION
    assert body["dns_records"][0] == {"purpose": "routing", "type": "CNAME",
                                      "name": "gallery.client.com", "value": "domain.ve.ai"}
    assert r["Location"] == "/api/domains/gallery.client.com/"


@pytest.mark.parametrize(
    ("case", "status_code", "code"),
    [
        ("unpaid", 403, "plan_not_entitled"),
        ("invalid", 400, "invalid_subdomain"),
        ("duplicate", 409, "already_registered"),
    ],
)
def test_seed_register_errors_carry_the_seed_s_status_and_message(
    api: APIClient, workspace: Any, case: str, status_code: int, code: str
) -> None:
    body = dict(SEED_REGISTER)
    if case == "unpaid":
        workspace.plan = "free"
        workspace.save()
    elif case == "invalid":
        body["subdomain"] = "gal lery"
    else:
        assert api.post("/api/domains/register", body, format="json").status_code == 200
    r = api.post("/api/domains/register", body, format="json")
    assert r.status_code == status_code
    assert seed_error(r)["code"] == code


def test_seed_register_unauthenticated_is_a_seed_error() -> None:
    r = APIClient().post("/api/domains/register", SEED_REGISTER, format="json")
    assert r.status_code == 401
    seed_error(r)


def test_seed_register_of_an_apex_says_what_to_use_instead(api: APIClient,
                                                           workspace: Any) -> None:
    r = api.post("/api/domains/register", {**SEED_REGISTER, "subdomain": ""}, format="json")
    assert r.status_code == 400
    err = seed_error(r)
    assert (err["code"], err["field"]) == ("apex_not_supported", "domain")
    assert "www.client.com" in err["message"]


# --- GET /api/domains/verify/<domain> -----------------------------------------------------------


def _dns(ok: bool, *, transient: bool = False) -> dict[str, Any]:
    return {"dns": {"ok": ok, "detail": "d", "at": timezone.now().isoformat(),
                    "reason": "transient" if transient else ("ok" if ok else "no_cname"),
                    "transient": transient}}


@pytest.mark.parametrize(
    ("fields", "seed_status", "says"),
    [
        ({}, "pending_validation", "pointing to domain.ve.ai"),
        ({"checks": _dns(False)}, "invalid_cname", "Please ensure CNAME points to domain.ve.ai"),
        ({"checks": _dns(False, transient=True)}, "error", "Could not verify domain"),
        ({"checks": _dns(True)}, "pending_validation", "certificate"),
        ({"checks": _dns(True), "ownership_required": True}, "pending_validation", "TXT"),
        ({"status": DomainStatus.ACTIVE, "checks": _dns(True)}, "verified",
         "Domain verified and mapped successfully"),
        ({"status": DomainStatus.MISCONFIGURED, "checks": _dns(False)}, "invalid_cname",
         "Please ensure CNAME points to domain.ve.ai"),
        ({"status": DomainStatus.FAILED, "last_error": "The certificate could not be issued."},
         "error", "The certificate could not be issued."),
    ],
)
def test_seed_verify_answers_in_the_seed_s_words(
    api: APIClient, workspace: Any, fields: dict[str, Any], seed_status: str, says: str
) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com", **fields)
    r = api.get("/api/domains/verify/gallery.client.com")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == seed_status
    assert says in body["message"]
    assert body["state"] == fields.get("status", DomainStatus.PENDING_VALIDATION)
    assert body["hostname"] == "gallery.client.com"


def test_seed_verify_of_an_unknown_domain_is_a_seed_error(api: APIClient,
                                                          workspace: Any) -> None:
    r = api.get("/api/domains/verify/nothing.client.com")
    assert r.status_code == 404
    assert seed_error(r)["code"] == "not_found"


def test_seed_verify_for_another_workspace_s_domain_is_a_seed_error(workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    stranger = APIClient()
    stranger.force_authenticate(MembershipFactory(workspace=WorkspaceFactory(),
                                                  role=Role.OWNER).user)
    r = stranger.get("/api/domains/verify/gallery.client.com")
    assert r.status_code == 404
    seed_error(r)


def test_our_own_paths_keep_their_shape(api: APIClient, workspace: Any) -> None:
    r = api.post("/api/domains/", {"hostname": "gallery.client.com", "workspace": "acme"},
                 format="json")
    assert r.status_code == 201
    assert r.json()["status"] == DomainStatus.PENDING_VALIDATION
    assert "message" not in r.json() and "state" not in r.json()
    r = api.post("/api/domains/", {"hostname": "gallery.client.com", "workspace": "acme"},
                 format="json")
    assert set(r.json()) == {"error"}


# --- the DynamoDB item --------------------------------------------------------------------------


@pytest.mark.integration
def test_edge_items_use_the_seed_s_timestamp_form(aws_stack: Any, workspace: Any) -> None:
    created = datetime(2025, 3, 13, 12, 0, 0, 654321, tzinfo=UTC)
    domain = CustomDomainFactory(workspace=workspace, hostname="gallery.client.com",
                                 status=DomainStatus.ACTIVE, verified_at=created
                                 + timedelta(minutes=5, microseconds=7))
    CustomDomain.objects.filter(pk=domain.pk).update(created_at=created)
    assert edge_sync.edge_sync_hostname(hostname=domain.hostname) == "written"
    table = boto3.client(
        "dynamodb", region_name="us-east-1", endpoint_url=django_settings.VEDOMAINS_AWS_ENDPOINT_URL
    )
    item = table.get_item(TableName=django_settings.VEDOMAINS_EDGE_TABLE,
                          Key={"domain": {"S": domain.hostname}})["Item"]
    assert item["createdAt"]["S"] == "2025-03-13T12:00:00Z"
    assert item["verifiedAt"]["S"] == "2025-03-13T12:05:00Z"
    assert SEED_TIMESTAMP.match(item["updatedAt"]["S"]), item["updatedAt"]


# --- apex -----------------------------------------------------------------------------------------


def test_the_retired_apex_setting_stops_start_up_with_its_name(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEDOMAINS_")}
    out = subprocess.run(
        [sys.executable, "-c", "import vedomains_site.settings"], cwd=tmp_path,
        capture_output=True, text=True, timeout=60,
        env={**env, "PYTHONPATH": str(ROOT), "DJANGO_DEBUG": "true",
             "VEDOMAINS_ALLOW_APEX": "true"},
    )
    assert out.returncode != 0
    assert "VEDOMAINS_ALLOW_APEX is no longer supported" in out.stderr
