"""The two ve.ai paths end to end, against a JWKS served on loopback.

- The main app's server syncs a workspace and its owner (HMAC-signed sync API).
- The frontend, with the owner's token from the main app, lists, registers (the seed's
  path), polls until the domain is live, and removes it. A real Celery worker and beat do the
  work against moto and the loopback DNS server; the main app rotates its signing key
  half-way, which the API follows without a restart.
- The main app downgrades the plan: new domains are refused at once and, after the grace
  period, the remaining domain is detached.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from domains.integrations import edge_store
from domains.models import CustomDomain, DomainStatus, PlanGrace
from tests import polling
from tests.infra import WorkerProcess
from tests.veai.helpers import JwksServer, SigningKey, bearer, signed_request
from veai import plans

pytestmark = [pytest.mark.integration, pytest.mark.worker,
              pytest.mark.django_db(transaction=True)]

TARGET = "domain.ve.ai"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    return polling.wait_for(check, timeout, what, step=0.3)


@pytest.fixture
def worker_with_beat(clean_redis: str, tmp_path: Path, saas_stack: dict[str, Any],
                     dns_server: Any) -> Any:
    worker = WorkerProcess(clean_redis, tmp_path / "worker.log", beat=True, extra_env={
        "VEDOMAINS_DISPATCH_INTERVAL_SECONDS": "1", "VEDOMAINS_FAST_CHECK_SECONDS": "1",
        "VEDOMAINS_CLEANUP_RETRY_SECONDS": "1"})
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def test_frontend_and_main_app_paths(jwks: JwksServer, service_secret: str,
                                     worker_with_beat: Any, dns_server: Any,
                                     settings: Any) -> None:
    settings.VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS = 0
    first_key = SigningKey("RSA")
    jwks.publish(first_key)

    # --- the main app's server: workspace, plan and owner --------------------------------
    r = signed_request("PUT", "/api/service/workspaces/ws_42",
                       {"slug": "acme", "name": "Acme", "plan": "pro", "version": 1})
    assert r.status_code == 200 and r.json()["outcome"] == "created", r.content
    r = signed_request("PUT", "/api/service/workspaces/ws_42/members/auth0|owner-1",
                       {"role": "owner", "email": "owner@acme.com", "version": 1})
    assert r.json()["outcome"] == "created"

    # --- the frontend, with the owner's token from the main app ---------------------------
    def api() -> Any:
        return bearer(current_key.token("auth0|owner-1", email="owner@acme.com"))

    current_key = first_key
    r = api().get("/api/domains/?workspace=acme")
    assert r.status_code == 200 and r.json()["results"] == []
    r = api().post("/api/domains/register", {"subdomain": "gallery", "domain": "client.com",
                                             "workspaceId": "acme"}, format="json")
    # The seed's path answers in the seed's words (200, status + message) plus the record.
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "pending_validation"
    routing = [rec for rec in r.json()["dns_records"] if rec["purpose"] == "routing"][0]
    assert routing == {"purpose": "routing", "type": "CNAME", "name": "gallery.client.com",
                       "value": TARGET}
    dns_server.store.set_record("gallery.client.com", "CNAME", TARGET)

    # The main app rotates its signing key while the user is polling.
    current_key = SigningKey("EC")
    jwks.publish(current_key)

    def live() -> bool:
        r = api().get("/api/domains/verify/gallery.client.com")
        assert r.status_code == 200, r.content
        # The seed's words ("verified") and ours ("state": "active").
        return r.json()["state"] == "active" and r.json()["status"] == "verified"

    wait_for("the domain to become active", live)
    item = wait_for("the edge mapping", lambda: edge_store.get_item("gallery.client.com"))
    assert (item.status, item.workspace_id) == ("active", "acme")
    listed = api().get("/api/domains/?workspace=acme").json()["results"]
    assert [d["hostname"] for d in listed] == ["gallery.client.com"]

    r = api().delete("/api/domains/gallery.client.com/")
    assert r.status_code == 200 and r.json()["status"] == "removed"
    wait_for("the edge tombstone", lambda: (edge_store.get_item("gallery.client.com") or
                                            item).status == "inactive")
    wait_for("the cleanup", lambda: not CustomDomain.objects.get(
        hostname="gallery.client.com").cleanup_pending)

    # --- the main app's server: a downgrade -------------------------------------------------
    r = api().post("/api/domains/", {"hostname": "shop.client.com", "workspace": "acme"},
                   format="json")
    assert r.status_code == 201
    r = signed_request("PUT", "/api/service/workspaces/ws_42",
                       {"slug": "acme", "name": "Acme", "plan": "free", "version": 2})
    assert r.json()["workspace"]["domain_limit"] == 0
    r = api().post("/api/domains/", {"hostname": "blog.client.com", "workspace": "acme"},
                   format="json")
    assert r.status_code == 403 and r.json()["error"]["code"] == "plan_not_entitled"
    grace = PlanGrace.objects.get(resolved_at__isnull=True)
    later = timezone.now() + timedelta(
        seconds=settings.VEDOMAINS_PLAN_GRACE_SECONDS) + timedelta(days=2)
    plans.plan_graces_enforce(now=later)  # the warning
    report = plans.plan_graces_enforce(now=later + timedelta(
        seconds=settings.VEDOMAINS_PLAN_WARNING_SECONDS))
    assert report.detached == ["shop.client.com"]
    assert CustomDomain.objects.get(hostname="shop.client.com").status == DomainStatus.REMOVED
    assert grace.workspace.slug == "acme"
    # A token that was valid all along still is; the withdrawn first key is not.
    assert api().get("/api/domains/").status_code == 200
    assert bearer(first_key.token("auth0|owner-1")).get("/api/domains/").status_code == 401
