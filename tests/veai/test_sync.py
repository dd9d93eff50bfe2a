"""The main app's server-to-server sync API and the bulk import command."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from domains.models import CustomDomain, DomainStatus, Membership, Role, Workspace
from tests.factories import CustomDomainFactory, MembershipFactory, WorkspaceFactory
from tests.veai.helpers import (
    ISSUER_ID,
    SERVICE_SECRET,
    SIGNATURE_META,
    SigningKey,
    bearer,
    signed_request,
    sync_client,
)
from veai import workspace_sync
from veai.models import ExternalIdentity, ExternalWorkspace

pytestmark = pytest.mark.django_db

WS = "/api/service/workspaces/ws_123"


def upsert(version: Any, *, slug: str = "acme", name: str = "Acme", plan: str = "pro",
           path: str = WS, **extra: Any) -> Any:
    return signed_request("PUT", path, {"slug": slug, "name": name, "plan": plan,
                                        "version": version, **extra})


# --- the credential -------------------------------------------------------------------------


def test_the_sync_api_needs_the_service_signature(service_secret: str,
                                                  main_key: SigningKey) -> None:
    body = {"slug": "acme", "name": "Acme", "plan": "pro", "version": 1}
    assert APIClient().put(WS, body, format="json").status_code == 401
    # A user's token, even a valid one, has no scope here.
    r = bearer(main_key.token("u1")).put(WS, body, format="json")
    assert r.status_code == 401
    r = signed_request("PUT", WS, body, secret="wrong" * 10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_signature"
    r = signed_request("PUT", WS, body, timestamp=int(time.time()) - 3600)
    assert r.status_code == 401 and r.json()["error"]["code"] == "signature_expired"
    assert not Workspace.objects.exists()


def test_a_tampered_body_or_path_fails_the_signature(service_secret: str) -> None:
    ts = int(time.time())
    signed = json.dumps({"slug": "acme", "name": "Acme", "plan": "pro", "version": 1}).encode()
    sent = json.dumps({"slug": "acme", "name": "Acme", "plan": "enterprise",
                       "version": 1}).encode()
    header = {SIGNATURE_META: sync_client.sign(SERVICE_SECRET, ts, "PUT", WS, signed)}
    r = APIClient().generic("PUT", WS, sent, content_type="application/json", **header)
    assert r.status_code == 401
    r = APIClient().generic("PUT", WS + "x", signed, content_type="application/json", **header)
    assert r.status_code == 401
    assert not Workspace.objects.exists()


def test_a_signature_for_an_id_with_a_question_mark_does_not_verify_for_a_shorter_id(
    service_secret: str,
) -> None:
    """the v1 string `t.PUT./ws?x.body` was the same for the id `ws?x`
    and for the id `ws` with the query `x`. The canonical request keeps them apart."""
    body = json.dumps({"slug": "acme", "name": "Acme", "plan": "pro", "version": 1}).encode()
    # The main app signs for the workspace id `ws?x` (its path segment, unencoded).
    header = {SIGNATURE_META: sync_client.sign(
        SERVICE_SECRET, int(time.time()), "PUT", "/api/service/workspaces/ws%3Fx", body)}
    # A replay that sends it to the id `ws` with the query `x` fails.
    r = APIClient().generic("PUT", "/api/service/workspaces/ws?x", body,
                            content_type="application/json", **header)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_signature"
    # Sent as signed (the id percent-encoded), it is applied to the id `ws?x`.
    r = APIClient().generic("PUT", "/api/service/workspaces/ws%3Fx", body,
                            content_type="application/json", **header)
    assert r.status_code == 200, r.content
    assert ExternalWorkspace.objects.get().external_id == "ws?x"


@pytest.mark.parametrize("value", [
    "t=1e400,v2=" + "0" * 64, "t=9999999999999999999999,v2=" + "0" * 64,
    "t=123,v2=\u00e9" + "0" * 63, "t=,v2=", "garbage", "t=1,v2=" + "G" * 64,
])
def test_malformed_signatures_are_401_never_500(service_secret: str, value: str) -> None:
    r = APIClient().generic("PUT", WS, b"{}", content_type="application/json",
                            **{SIGNATURE_META: value})
    assert r.status_code == 401, r.content
    assert r.json()["error"]["code"] in {"invalid_signature", "signature_expired"}


def test_v1_signatures_are_refused_with_a_pointer_to_v2(service_secret: str) -> None:
    r = APIClient().generic("PUT", WS, b"{}", content_type="application/json",
                            HTTP_X_VEDOMAINS_SERVICE_SIGNATURE="t=1,v1=" + "0" * 64)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unsupported_signature_version"


def test_the_reference_client_talks_to_a_live_server(service_secret: str, live_server: Any
                                                     ) -> None:
    """The client the docs give the main app, over real HTTP."""
    client = sync_client.SyncClient(live_server.url, SERVICE_SECRET)
    status, _, body = client.request("PUT", "/api/service/workspaces/ws%3Alive%20one",
                                     {"slug": "live", "name": "Live", "plan": "pro",
                                      "version": 1})
    assert status == 200, body
    assert ExternalWorkspace.objects.get().external_id == "ws:live one"
    # A subject with a slash, percent-encoded as a path segment.
    status, _, body = client.request(
        "PUT", "/api/service/workspaces/ws%3Alive%20one/members/oauth2%2Fgithub%7C42",
        {"role": "owner", "version": 1})
    assert status == 200, body
    assert ExternalIdentity.objects.get().subject == "oauth2/github|42"
    status, _, body = client.request("DELETE", "/api/service/workspaces/ws%3Alive%20one"
                                     "?version=2&b=%20&a=1")
    assert status == 200, body
    assert json.loads(body)["outcome"] == "deleted"


def test_the_service_signature_is_no_user_credential(service_secret: str) -> None:
    assert upsert(1).status_code == 200
    r = signed_request("GET", "/api/domains/")
    assert r.status_code == 401


def test_the_sync_api_is_off_without_a_secret(settings: Any) -> None:
    settings.VEDOMAINS_SERVICE_SECRETS = []
    r = upsert(1)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "service_disabled"


# --- workspaces -----------------------------------------------------------------------------


def test_upsert_is_idempotent_and_an_older_update_never_wins(service_secret: str) -> None:
    r = upsert(5)
    assert r.status_code == 200, r.content
    assert r.json()["outcome"] == "created"
    assert r.json()["workspace"] == {"slug": "acme", "name": "Acme", "plan": "pro",
                                     "domain_limit": 3, "domain_limit_override": None}
    assert upsert(5).json()["outcome"] == "unchanged"
    assert upsert(7, name="Acme Inc", plan="business").json()["outcome"] == "updated"
    stale = upsert(6, name="Old name", plan="free")
    assert stale.status_code == 200
    assert stale.json() | {"workspace": None} == {
        "applied": False, "outcome": "stale", "version": 7, "detail": "", "workspace": None}
    ws = Workspace.objects.get(slug="acme")
    assert (ws.name, ws.plan) == ("Acme Inc", "business")
    assert ExternalWorkspace.objects.get(external_id="ws_123").version == 7


def test_updated_at_timestamps_order_updates(service_secret: str) -> None:
    assert upsert(None, updated_at="2026-11-28T10:00:00Z", name="B").json()["applied"]
    assert not upsert(None, updated_at="2026-11-28T09:59:59.999Z", name="A").json()["applied"]
    assert Workspace.objects.get(slug="acme").name == "B"


def test_a_slug_of_another_synced_workspace_is_a_409(service_secret: str) -> None:
    assert upsert(1).status_code == 200
    r = upsert(1, path="/api/service/workspaces/ws_other")
    assert r.status_code == 409
    assert r.json()["error"] == {"code": "slug_taken", "field": "slug",
                                 "message": "The slug 'acme' belongs to another workspace."}


def test_an_existing_local_workspace_is_linked_not_duplicated(service_secret: str) -> None:
    local = WorkspaceFactory(slug="acme", plan="free")
    assert upsert(1, plan="pro").json()["outcome"] == "updated"
    local.refresh_from_db()
    assert local.plan == "pro"
    assert ExternalWorkspace.objects.get(external_id="ws_123").workspace == local


def test_a_rename_repushes_the_edge_mapping(service_secret: str) -> None:
    upsert(1)
    ws = Workspace.objects.get(slug="acme")
    active = CustomDomainFactory(workspace=ws, status=DomainStatus.ACTIVE, edge_version=3,
                                 edge_synced_version=3)
    assert upsert(2, slug="acme-new").json()["workspace"]["slug"] == "acme-new"
    active.refresh_from_db()
    assert active.edge_version == 4 and not active.edge_in_sync


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"slug": "acme", "name": "A", "plan": "gold", "version": 1}, "domain_limit",
         "unknown_plan"),
        ({"slug": "acme", "name": "A", "plan": "Gold plan!", "version": 1}, "plan",
         "invalid_plan"),
        ({"slug": "acme", "name": "A", "plan": "gold", "domain_limit": -1, "version": 1},
         "domain_limit", "invalid"),
        ({"slug": "Not A Slug", "name": "A", "plan": "pro", "version": 1}, "slug",
         "invalid_slug"),
        ({"slug": "acme", "name": "A", "plan": "pro"}, "version", "invalid_version"),
        ({"slug": "acme", "name": "A", "plan": "pro", "version": -1}, "version",
         "invalid_version"),
        ({"slug": "acme", "name": "A", "plan": "pro", "version": "yesterday"}, "version",
         "invalid_version"),
        ({"slug": "acme", "plan": "pro", "version": 1}, "name", "required"),
        ({"slug": "acme", "name": "A", "plan": "pro", "version": 1,
          "subscription_status": "paused"}, "subscription_status",
         "invalid_subscription_status"),
        ([1, 2], "body", "invalid_body"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(service_secret: str, body: Any, field: str,
                                             code: str) -> None:
    r = signed_request("PUT", WS, body)
    assert r.status_code == 400, r.content
    assert r.json()["error"]["field"] == field
    assert r.json()["error"]["code"] == code


def test_delete_removes_domains_and_members_and_keeps_a_tombstone(service_secret: str) -> None:
    upsert(3)
    ws = Workspace.objects.get(slug="acme")
    domain = CustomDomainFactory(workspace=ws, status=DomainStatus.ACTIVE)
    MembershipFactory(workspace=ws, role=Role.OWNER)
    r = signed_request("DELETE", WS + "?version=4")
    assert r.status_code == 200 and r.json()["outcome"] == "deleted"
    domain.refresh_from_db()
    assert domain.status == DomainStatus.REMOVED
    assert not Membership.objects.filter(workspace=ws).exists()
    assert ws.domain_limit == 0 or Workspace.objects.get(pk=ws.pk).plan == "free"
    # The upsert the main app sent before deleting arrives late: it cannot resurrect it.
    assert upsert(3).json()["outcome"] == "stale"
    assert signed_request("DELETE", WS, {"version": 4}).json()["outcome"] == "unchanged"
    assert upsert(5).json()["outcome"] == "created"  # re-created later, on purpose


# --- members --------------------------------------------------------------------------------


def member(subject: str, version: int, role: str = "owner", method: str = "PUT",
           **extra: Any) -> Any:
    body = {"version": version, **({"role": role} if method == "PUT" else {}), **extra}
    return signed_request(method, f"{WS}/members/{subject}", body)


def test_members_are_added_changed_and_removed_in_version_order(
    service_secret: str, main_key: SigningKey
) -> None:
    upsert(1)
    assert member("auth0|ana", 1, "member", email="ana@client.com").json()["outcome"] == "created"
    user = ExternalIdentity.objects.get(issuer=ISSUER_ID, subject="auth0|ana").user
    assert user.email == "ana@client.com"
    assert Membership.objects.get(user=user).role == "member"
    assert member("auth0|ana", 3, "owner").json()["outcome"] == "updated"
    assert member("auth0|ana", 2, "member").json()["outcome"] == "stale"
    assert Membership.objects.get(user=user).role == "owner"
    # The same person signing in with a token is that user, with that role.
    r = bearer(main_key.token("auth0|ana")).post(
        "/api/domains/", {"hostname": "bad host", "workspace": "acme"}, format="json")
    assert r.status_code == 400  # got past the membership and role checks to validation
    assert member("auth0|ana", 4, method="DELETE").json()["outcome"] == "deleted"
    assert not Membership.objects.filter(user=user).exists()
    assert member("auth0|ana", 3, "owner").json()["outcome"] == "stale"
    assert not Membership.objects.filter(user=user).exists()


def test_a_member_before_its_workspace_is_a_409_to_retry(service_secret: str) -> None:
    r = member("auth0|x", 1)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "workspace_not_synced"
    assert r["Retry-After"] == "5"


def test_a_bad_role_is_a_400(service_secret: str) -> None:
    upsert(1)
    r = member("auth0|x", 1, role="superuser")
    assert r.status_code == 400 and r.json()["error"]["field"] == "role"


@pytest.mark.django_db(transaction=True)
def test_concurrent_updates_in_any_order_end_at_the_newest(service_secret: str) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    workspace_sync.workspace_upsert(data=workspace_sync.WorkspaceInput(
        "ws_c", "conc", "v0", "pro", "active", 0))
    versions = list(range(1, 31))
    random.shuffle(versions)

    def send(v: int) -> str:
        from django.db import connection as conn

        try:
            return workspace_sync.workspace_upsert(data=workspace_sync.WorkspaceInput(
                "ws_c", "conc", f"v{v}", "pro", "active", v)).outcome
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(send, versions))
    assert Workspace.objects.get(slug="conc").name == "v30"
    assert ExternalWorkspace.objects.get(external_id="ws_c").version == 30
    assert "updated" in outcomes


# --- the bulk import command ----------------------------------------------------------------


EXPORT = {
    "workspaces": [
        {"id": "w1", "slug": "alpha", "name": "Alpha", "plan": "pro", "version": 2,
         "members": [{"subject": "s1", "email": "a@alpha.com", "role": "owner", "version": 1},
                     {"subject": "s2", "role": "member", "version": 1}]},
        {"id": "w2", "slug": "beta", "name": "Beta", "plan": "business", "version": 1,
         "subscription_status": "cancelled", "members": []},
    ]
}


def test_import_json_dry_run_then_for_real(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(EXPORT))
    call_command("import_workspaces", str(path), "--dry-run")
    out = capsys.readouterr().out
    assert "dry run" in out and "2 workspaces" in out
    assert not Workspace.objects.exists()
    call_command("import_workspaces", str(path))
    out = capsys.readouterr().out
    assert "workspaces: 2 created" in out and "members: 2 created" in out
    assert Workspace.objects.get(slug="beta").plan == "free"  # cancelled
    assert Membership.objects.filter(workspace__slug="alpha").count() == 2
    call_command("import_workspaces", str(path))
    assert "workspaces: 0 created, 0 updated, 2 unchanged" in capsys.readouterr().out


def test_import_csv(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "workspace_id,slug,name,plan,version,member_subject,member_email,member_role,"
        "member_version\n"
        "w1,alpha,Alpha,pro,2,s1,a@alpha.com,owner,1\n"
        "w1,alpha,Alpha,pro,2,s2,,admin,1\n"
        "w3,gamma,Gamma,free,1,,,,\n")
    call_command("import_workspaces", str(path))
    assert "workspaces: 2 created" in capsys.readouterr().out
    assert Membership.objects.get(workspace__slug="alpha",
                                  user__external_identity__subject="s2").role == "admin"


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("{not json", ".json", "not valid JSON"),
        (json.dumps({"workspaces": [{"id": "w1", "slug": "a", "name": "A", "plan": "gold",
                                     "version": 1}]}), ".json", "workspace 1 (w1): "),
        ("workspace_id,slug\nw1,a\n", ".csv", "missing columns"),
        ("", ".txt", "--format"),
    ],
)
def test_import_bad_input_is_a_one_line_command_error(tmp_path: Path, content: str,
                                                      suffix: str, message: str) -> None:
    path = tmp_path / f"export{suffix}"
    path.write_text(content)
    with pytest.raises(CommandError) as exc:
        call_command("import_workspaces", str(path))
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)
    assert not Workspace.objects.exists()


def test_import_of_a_missing_file_is_a_command_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_workspaces", str(tmp_path / "nope.json"))


def test_import_does_not_overwrite_newer_synced_state(tmp_path: Path) -> None:
    workspace_sync.workspace_upsert(data=workspace_sync.WorkspaceInput(
        "w1", "alpha", "Alpha renamed", "business", "active", 9))
    path = tmp_path / "export.json"
    path.write_text(json.dumps(EXPORT))
    call_command("import_workspaces", str(path))
    ws = Workspace.objects.get(slug="alpha")
    assert (ws.name, ws.plan) == ("Alpha renamed", "business")
    assert CustomDomain.objects.count() == 0


def test_plans_are_data_the_main_app_sends_the_limit(service_secret: str) -> None:
    """any plan name with its domain limit; per-workspace overrides."""
    r = upsert(1, plan="studio", domain_limit=7)
    assert r.status_code == 200, r.content
    ws = r.json()["workspace"]
    assert (ws["plan"], ws["domain_limit"], ws["domain_limit_override"]) == ("studio", 7, 7)
    assert Workspace.objects.get(slug="acme").domain_limit == 7
    # A known plan with a per-workspace override (a deal for this customer).
    r = upsert(2, plan="pro", domain_limit=40)
    assert r.json()["workspace"]["domain_limit"] == 40
    # The override dropped: the default table's limit for pro.
    r = upsert(3, plan="pro")
    assert r.json()["workspace"]["domain_limit"] == Workspace(plan="pro").domain_limit
    # A plan never seen before and no limit: refused, nothing changed (not a silent 0).
    r = upsert(4, plan="platinum")
    assert r.status_code == 400
    assert r.json()["error"] == {**r.json()["error"], "code": "unknown_plan",
                                 "field": "domain_limit"}
    assert Workspace.objects.get(slug="acme").plan == "pro"
    # A cancelled subscription: the free plan's default, whatever limit is sent.
    r = upsert(5, plan="studio", domain_limit=7, subscription_status="cancelled")
    assert r.json()["workspace"]["domain_limit"] == Workspace(plan="free").domain_limit


def test_one_ordering_field_per_resource(service_secret: str) -> None:
    """`version` and `updated_at` are never compared with each other."""
    # Both in one request: refused.
    r = upsert(2, updated_at="2026-01-01T00:00:00Z")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "ambiguous_version"
    assert upsert(2).json()["outcome"] == "created"
    # An updated_at of 1970-01-01T00:00:01Z (1,000,000 µs) used to beat version 2.
    r = signed_request("PUT", WS, {"slug": "acme", "name": "Hijack", "plan": "pro",
                                   "updated_at": "1970-01-01T00:00:01Z"})
    assert r.status_code == 400, r.content
    assert r.json()["error"] == {**r.json()["error"], "code": "version_field_mismatch",
                                 "field": "updated_at"}
    assert Workspace.objects.get().name == "Acme"
    r = signed_request("DELETE", WS + "?updated_at=2030-01-01T00:00:00Z")
    assert r.status_code == 400 and r.json()["error"]["code"] == "version_field_mismatch"
    # Members have their own ordering field.
    assert member("auth0|m", None, updated_at="2026-01-01T00:00:00Z").status_code == 200
    r = member("auth0|m", 99)
    assert r.status_code == 400 and r.json()["error"]["code"] == "version_field_mismatch"


# --- read-back and bulk ----------------------------------------------------


def test_the_main_app_reads_back_a_workspace_with_its_members(service_secret: str) -> None:
    assert signed_request("GET", WS).status_code == 404
    upsert(3, plan="studio", domain_limit=9)
    member("auth0|ana", 4, "admin")
    member("auth0|bo", 5, "member")
    member("auth0|bo", 6, method="DELETE")
    r = signed_request("GET", WS)
    assert r.status_code == 200, r.content
    state = r.json()
    assert (state["id"], state["version"], state["version_field"], state["deleted"]) == (
        "ws_123", 3, "version", False)
    assert state["workspace"] == {"slug": "acme", "name": "Acme", "plan": "studio",
                                  "domain_limit": 9, "domain_limit_override": 9}
    assert [(m["subject"], m["role"], m["version"], m["removed"]) for m in state["members"]] == [
        ("auth0|ana", "admin", 4, False), ("auth0|bo", None, 6, True)]
    # Unsigned, or with a user's credential: no read-back.
    assert APIClient().get(WS).status_code == 401


def _ndjson(*records: Any) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _bulk(body: bytes, query: str = "") -> list[dict[str, Any]]:
    path = "/api/service/import" + query
    header = {SIGNATURE_META: sync_client.sign(SERVICE_SECRET, int(time.time()), "POST", path,
                                               body)}
    r = APIClient().generic("POST", path, body, content_type="application/x-ndjson", **header)
    assert r.status_code == 200, r.content if hasattr(r, "content") else r
    assert r["Content-Type"] == "application/x-ndjson"
    return [json.loads(line) for line in b"".join(r.streaming_content).splitlines()]


def test_the_bulk_endpoint_is_streamed_idempotent_and_reports_each_line(
    service_secret: str,
) -> None:
    body = _ndjson(
        {"id": "w1", "slug": "one", "name": "One", "plan": "pro", "version": 1,
         "members": [{"subject": "auth0|a", "role": "owner"}]},
        {"id": "w2", "slug": "two", "name": "Two", "plan": "platinum", "version": 1},
        {"id": "w3", "slug": "three", "name": "Three", "plan": "studio", "domain_limit": 2,
         "updated_at": "2026-12-01T00:00:00Z"},
    ) + b"{not json\n"
    dry = _bulk(body, "?dry_run=true")
    assert dry[-1]["summary"]["dry_run"] is True
    assert not Workspace.objects.exists() and not ExternalWorkspace.objects.exists()
    lines = _bulk(body)
    assert [(x.get("id"), x.get("outcome"), (x.get("error") or {}).get("code"))
            for x in lines[:-1]] == [("w1", "created", None), ("w2", None, "unknown_plan"),
                                     ("w3", "created", None), (None, None, "invalid_json")]
    assert lines[0]["members"] == [{"subject": "auth0|a", "outcome": "created"}]
    assert lines[-1]["summary"]["workspaces"] == {"created": 2, "failed": 2}
    assert set(Workspace.objects.values_list("slug", flat=True)) == {"one", "three"}
    # The same file again changes nothing (a retry after a dropped connection).
    again = _bulk(body)
    assert [x.get("outcome") for x in again[:-1]] == ["unchanged", None, "unchanged", None]
    assert again[0]["members"] == [{"subject": "auth0|a", "outcome": "unchanged"}]


def test_the_bulk_body_is_covered_by_the_signature(service_secret: str) -> None:
    body = _ndjson({"id": "w1", "slug": "one", "name": "One", "plan": "pro", "version": 1})
    header = {SIGNATURE_META: sync_client.sign(SERVICE_SECRET, int(time.time()), "POST",
                                               "/api/service/import", body)}
    tampered = body.replace(b'"pro"', b'"enterprise"')
    r = APIClient().generic("POST", "/api/service/import", tampered,
                            content_type="application/x-ndjson", **header)
    assert r.status_code == 401
    assert not Workspace.objects.exists()


def test_the_bulk_endpoint_over_real_http_with_the_reference_client(
    service_secret: str, live_server: Any,
) -> None:
    records = [{"id": f"w{i}", "slug": f"bulk-{i}", "name": f"B{i}", "plan": "pro",
                "version": 1} for i in range(200)]
    client = sync_client.SyncClient(live_server.url, SERVICE_SECRET)
    status, headers, body = client.request("POST", "/api/service/import",
                                           body=_ndjson(*records),
                                           content_type="application/x-ndjson")
    assert status == 200, body
    lines = [json.loads(x) for x in body.splitlines()]
    assert lines[-1]["summary"]["workspaces"] == {"created": 200}
    assert Workspace.objects.count() == 200


def test_webhooks_carry_the_same_v2_signature_next_to_v1() -> None:
    """One scheme both ways: a webhook's v2 is what the reference client computes."""
    from notifications import sending

    body = b'{"type":"domain.active"}'
    header = sending.sign("whsec_x", 1700000000, body,
                                url="https://hooks.ve.ai/vedomains/in?b=2&a=1")
    fields = dict(part.split("=", 1) for part in header.split(","))
    assert set(fields) == {"t", "v1", "v2"}
    expected = sync_client.sign("whsec_x", 1700000000, "POST", "/vedomains/in?a=1&b=2", body)
    assert f"t={fields['t']},v2={fields['v2']}" == expected
    # Without a URL (the documented v1 example), the value is unchanged.
    assert "v2=" not in sending.sign("whsec_x", 1700000000, body)


def test_an_imported_member_without_a_version_is_ordered_like_its_workspace(
    service_secret: str,
) -> None:
    """A member of a workspace ordered by `updated_at` inherits `updated_at` (not the
    workspace's microseconds as a `version`): a later removal by `updated_at` applies."""
    _bulk(_ndjson({"id": "ws_123", "slug": "acme", "name": "Acme", "plan": "pro",
                   "updated_at": "2026-12-01T00:00:00Z",
                   "members": [{"subject": "auth0|gone", "role": "member"}]}))
    assert Membership.objects.filter(workspace__slug="acme").count() == 1
    r = signed_request("DELETE", f"{WS}/members/auth0|gone",
                       {"updated_at": "2026-12-02T00:00:00Z"})
    assert r.status_code == 200, r.content
    assert r.json()["outcome"] == "deleted"
    assert not Membership.objects.filter(workspace__slug="acme").exists()


@pytest.mark.parametrize("subject", ["user%41x", "oauth2/gh%2F42", "a%zz/b%"])
def test_a_subject_with_percent_signs_syncs_over_real_http(
    service_secret: str, live_server: Any, subject: str,
) -> None:
    """The path is decoded exactly once on each side: a literal `%XX` in an id (sent as
    `%25XX`) signs and verifies the same as the reference client computed it."""
    from urllib.parse import quote

    client = sync_client.SyncClient(live_server.url, SERVICE_SECRET)
    status, _, body = client.request("PUT", "/api/service/workspaces/ws%25pct",
                                     {"slug": "pct", "name": "Pct", "plan": "pro",
                                      "version": 1})
    assert status == 200, body
    assert ExternalWorkspace.objects.get().external_id == "ws%pct"
    path = f"/api/service/workspaces/ws%25pct/members/{quote(subject, safe='')}"
    status, _, body = client.request("PUT", path, {"role": "owner", "version": 1})
    assert status == 200, body
    assert ExternalIdentity.objects.get().subject == subject
    status, _, body = client.request("DELETE", path + "?version=2")
    assert status == 200, body
    assert json.loads(body)["outcome"] == "deleted"
    assert not Membership.objects.filter(workspace__slug="pct").exists()


@pytest.mark.parametrize("version", ["\u00b2", "\u0663"])
def test_a_version_of_non_ascii_digits_is_a_400_on_every_path(service_secret: str,
                                                              version: str) -> None:
    r = upsert(version)
    assert r.status_code == 400, r.content
    assert (r.json()["error"]["code"], r.json()["error"]["field"]) == (
        "invalid_version", "version")
    # The bulk stream labels it for what it is, not as a JSON syntax error.
    lines = _bulk(_ndjson({"id": "w1", "slug": "one", "name": "One", "plan": "pro",
                           "version": version}))
    assert lines[0]["error"]["code"] == "invalid_version"
    assert not Workspace.objects.exists()


def test_a_bulk_content_length_over_the_limit_is_413_before_the_body_is_read(
    service_secret: str, monkeypatch: Any,
) -> None:
    from api import authentication

    body = _ndjson({"id": "w1", "slug": "one", "name": "One", "plan": "pro", "version": 1})
    header = {SIGNATURE_META: sync_client.sign(SERVICE_SECRET, int(time.time()), "POST",
                                               "/api/service/import", body)}
    reads: list[int] = []
    real = authentication.tempfile.SpooledTemporaryFile

    def counting(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(authentication.tempfile, "SpooledTemporaryFile", counting)
    r = APIClient().generic("POST", "/api/service/import", body,
                            content_type="application/x-ndjson",
                            CONTENT_LENGTH=str(authentication.BULK_MAX_BYTES + 1), **header)
    assert r.status_code == 413, r.content if hasattr(r, "content") else r
    assert (r.json()["error"]["code"], r.json()["error"]["field"]) == ("body_too_large", "body")
    assert reads == [] and not Workspace.objects.exists()


def test_a_bulk_body_that_fails_the_signature_has_its_spooled_file_closed(
    service_secret: str, monkeypatch: Any,
) -> None:
    from api import authentication

    opened: list[Any] = []
    real = authentication.tempfile.SpooledTemporaryFile

    def recording(*args: Any, **kwargs: Any) -> Any:
        opened.append(real(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(authentication.tempfile, "SpooledTemporaryFile", recording)
    body = _ndjson({"id": "w1", "slug": "one", "name": "One", "plan": "pro", "version": 1})
    header = {SIGNATURE_META: sync_client.sign(SERVICE_SECRET, int(time.time()), "POST",
                                               "/api/service/import", body + b"\n")}
    r = APIClient().generic("POST", "/api/service/import", body,
                            content_type="application/x-ndjson", **header)
    assert r.status_code == 401
    assert opened and all(f.closed for f in opened)
