"""The main app's whole journey, as one test against the real stack.

Every request goes over HTTP to a live server, the way the main app and the ve.ai frontend
send them: the sync API through the reference client the docs give
(docs/examples/veai_sync_client.py), the frontend with bearer tokens from a JWKS on
loopback. A real Celery worker with beat does the checks, the edge pushes and the plan
step, against moto (CloudFront SaaS Manager emulated), the loopback DNS server and
DynamoDB. docs/veai-integration.md, "The journey", walks the same requests.

sync a workspace with its plan -> a member signs in -> registers on both paths (the seed's
and ours) -> sees usage -> is downgraded -> sees the deadline and the domain at risk ->
the domain is detached by beat, with the reason.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from domains.integrations import edge_store
from domains.models import CustomDomain
from tests.infra import WorkerProcess
from tests.polling import wait_for
from tests.veai.helpers import SERVICE_SECRET, JwksServer, SigningKey, sync_client

pytestmark = [pytest.mark.integration, pytest.mark.worker,
              pytest.mark.django_db(transaction=True)]

TARGET = "domain.ve.ai"
# Short enough for a test, long enough to see the deadline before beat acts on it.
GRACE_SECONDS, WARNING_SECONDS = 21.6, 7.2


@pytest.fixture
def stack(clean_redis: str, tmp_path: Path, saas_stack: dict[str, Any], dns_server: Any,
          settings: Any) -> Any:
    settings.VEDOMAINS_PLAN_GRACE_SECONDS = GRACE_SECONDS
    settings.VEDOMAINS_PLAN_WARNING_SECONDS = WARNING_SECONDS
    worker = WorkerProcess(clean_redis, tmp_path / "worker.log", beat=True, extra_env={
        "VEDOMAINS_DISPATCH_INTERVAL_SECONDS": "1", "VEDOMAINS_FAST_CHECK_SECONDS": "1",
        "VEDOMAINS_CLEANUP_RETRY_SECONDS": "1", "VEDOMAINS_PLAN_ENFORCE_INTERVAL_SECONDS": "1",
        "VEDOMAINS_PLAN_GRACE_SECONDS": str(GRACE_SECONDS),
        "VEDOMAINS_PLAN_WARNING_SECONDS": str(WARNING_SECONDS)})
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


class Frontend:
    """The ve.ai frontend: JSON over HTTP with the signed-in user's token."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read()), dict(exc.headers)


def test_the_main_apps_whole_journey(stack: Any, live_server: Any, jwks: JwksServer,
                                     service_secret: str, dns_server: Any, settings: Any
                                     ) -> None:
    key = SigningKey("RSA")
    jwks.publish(key)
    main_app = sync_client.SyncClient(live_server.url, SERVICE_SECRET)

    # 1. The main app syncs the workspace with its plan (a plan vedomains has never heard
    #    of, with its limit) and its owner.
    status, _, body = main_app.request("PUT", "/api/service/workspaces/ws_77", {
        "slug": "journey", "name": "Journey", "plan": "studio", "domain_limit": 2,
        "version": 1})
    assert status == 200, body
    assert json.loads(body)["workspace"]["domain_limit"] == 2
    status, _, body = main_app.request(
        "PUT", "/api/service/workspaces/ws_77/members/auth0%7Cowner-77",
        {"role": "owner", "email": "owner@journey.test", "version": 1})
    assert (status, json.loads(body)["outcome"]) == (200, "created"), body
    status, _, body = main_app.request("GET", "/api/service/workspaces/ws_77")
    assert [m["subject"] for m in json.loads(body)["members"]] == ["auth0|owner-77"]

    # 2. The owner signs in with the main app's token and sees the plan.
    ui = Frontend(live_server.url, key.token("auth0|owner-77", email="owner@journey.test",
                                             expires_in=900))
    status, state, _ = ui.call("GET", "/api/workspaces/journey/")
    assert status == 200, state
    assert (state["plan"], state["domain_limit"], state["domains_used"]) == ("studio", 2, 0)

    # 3. Registers on the seed's path...
    status, seed, _ = ui.call("POST", "/api/domains/register", {
        "subdomain": "gallery", "domain": "client.com", "workspaceId": "journey"})
    assert (status, seed["status"]) == (200, "pending_validation"), seed
    routing = [r for r in seed["dns_records"] if r["purpose"] == "routing"][0]
    assert (routing["name"], routing["value"]) == ("gallery.client.com", TARGET)
    dns_server.store.set_record("gallery.client.com", "CNAME", TARGET)
    # ... and on ours.
    status, shop, headers = ui.call("POST", "/api/domains/", {
        "hostname": "shop.client.com", "workspace": "journey"})
    assert status == 201, shop
    assert headers["Location"].endswith("/api/domains/shop.client.com/")
    dns_server.store.set_record("shop.client.com", "CNAME", TARGET)

    def active(host: str) -> bool:
        status, record, _ = ui.call("GET", f"/api/domains/{host}/")
        assert status == 200, record
        return bool(record["status"] == "active")

    def diagnose() -> str:
        rows = list(CustomDomain.objects.values_list("hostname", "status", "last_error"))
        log = Path(stack.log_path).read_text(errors="replace")[-3000:]
        return f"\nrecords: {rows}\nworker log tail:\n{log}"

    wait_for(lambda: active("gallery.client.com") and active("shop.client.com"), 120,
             "both domains to become active", on_timeout=diagnose)
    for host in ("gallery.client.com", "shop.client.com"):
        item = wait_for(lambda h=host: edge_store.get_item(h), 30, f"the edge item of {host}")
        assert (item.status, item.workspace_id) == ("active", "journey")

    # 4. Usage.
    _, state, _ = ui.call("GET", "/api/workspaces/journey/")
    assert (state["domains_used"], state["can_register"], state["grace_until"]) == (
        2, False, None)

    # 5. The main app downgrades the workspace: a new plan, a lower limit.
    status, _, body = main_app.request("PUT", "/api/service/workspaces/ws_77", {
        "slug": "journey", "name": "Journey", "plan": "solo", "domain_limit": 1,
        "version": 2})
    assert json.loads(body)["workspace"]["domain_limit"] == 1, body

    # 6. The owner sees the deadline and the domain at risk (the newest), and a new
    #    registration is refused with the same deadline.
    _, state, _ = ui.call("GET", "/api/workspaces/journey/")
    assert (state["domain_limit"], state["domains_used"], state["over_limit"]) == (1, 2, True)
    assert state["grace_until"] is not None
    assert state["at_risk"] == [{"hostname": "shop.client.com",
                                 "detach_after": state["grace_until"]}]
    status, refusal, _ = ui.call("POST", "/api/domains/", {
        "hostname": "blog.client.com", "workspace": "journey"})
    assert (status, refusal["error"]["code"]) == (403, "domain_limit_reached"), refusal
    assert refusal["error"]["details"]["grace_until"] == state["grace_until"]

    # 7. Beat warns, then detaches the domain at the deadline, with the reason.
    def detached() -> dict[str, Any] | None:
        _, page, _ = ui.call("GET", "/api/domains/?workspace=journey&status=removed")
        return next((d for d in page["results"] if d["hostname"] == "shop.client.com"), None)

    record = wait_for(detached, 90, "the beat to detach shop.client.com")
    assert record["removal"]["code"] == "plan_limit", record
    assert "grace period" in record["removal"]["message"]
    wait_for(lambda: (edge_store.get_item("shop.client.com") or item).status == "inactive",
             30, "the edge tombstone")
    _, state, _ = ui.call("GET", "/api/workspaces/journey/")
    assert (state["domains_used"], state["over_limit"], state["at_risk"]) == (1, False, [])
    assert active("gallery.client.com")  # the oldest domain is kept
