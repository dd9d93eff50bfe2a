"""Adversarial review: one test per attack, named for it.

Each test reproduces an attack against the running code (real PostgreSQL, moto in server
mode, the loopback DNS server) and asserts that it is refused. Every `test_attack_...`
here failed against the code before its fix; new names are imported inside the tests so
that each one fails on its own when run against the old code. `test_guard_...` tests
check that a fix did not weaken something that already held (TLS verification).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from domains.task_names import TaskName
from localdev.dns_server import LocalDNSServer


def _record_tasks(monkeypatch: pytest.MonkeyPatch, recorder: Any = None) -> None:
    """Tasks queued after commit are recorded (or dropped), not sent to a broker."""
    from domains import queueing

    monkeypatch.setattr(queueing, "task_send", recorder or (lambda name, *args: None))


# --- item 11: local DNS control API from a web page -----------------------------------------


def _control(server: LocalDNSServer, method: str, path: str, body: bytes | None,
             headers: dict[str, str]) -> int:
    request = urllib.request.Request(f"{server.control_url}{path}", data=body, method=method,
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def control_server() -> Any:
    server = LocalDNSServer(port=0, control_port=0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_attack_dns_control_text_plain_post_from_a_web_page(control_server: LocalDNSServer
                                                             ) -> None:
    """A page at https://evil.example POSTs a `text/plain` body: a CORS "simple request"
    the browser sends without asking. It must not program the DNS server."""
    body = json.dumps({"name": "victim.example", "type": "TXT", "value": "pwned"}).encode()
    status = _control(control_server, "POST", "/records", body,
                      {"Content-Type": "text/plain", "Origin": "https://evil.example"})
    assert status in (403, 415)
    # Even without an Origin header (some browsers omit it), text/plain is refused.
    status = _control(control_server, "POST", "/records", body, {"Content-Type": "text/plain"})
    assert status == 415
    assert control_server.records() == []


def test_attack_dns_control_json_from_a_foreign_origin_or_rebound_host(
    control_server: LocalDNSServer,
) -> None:
    body = json.dumps({"name": "victim.example", "type": "TXT", "value": "pwned"}).encode()
    json_type = {"Content-Type": "application/json"}
    assert _control(control_server, "PUT", "/records", body,
                    {**json_type, "Origin": "https://evil.example"}) == 403
    # DNS rebinding: evil.example now resolves to 127.0.0.1, so the page is same-origin.
    assert _control(control_server, "PUT", "/records", body,
                    {**json_type, "Host": f"evil.example:{control_server.control_port}"}) == 403
    assert control_server.records() == []
    # Our own client (no Origin, JSON) still works.
    assert _control(control_server, "PUT", "/records", body, json_type) == 200


# --- item 9: NUL byte in admin filters ------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", [
    "/admin/domains/customdomain/?q=a%00b",
    "/admin/domains/customdomain/?status=active%00",
    "/admin/domains/customdomain/?workspace__plan=pro%00",
    "/admin/domains/workspace/?q=%00",
    "/admin/autocomplete/?term=%00&app_label=domains&model_name=customdomain"
    "&field_name=workspace",
])
def test_attack_nul_byte_in_admin_filter_or_autocomplete_term(client: Any, url: str) -> None:
    from django.db import connection

    from tests.factories import CustomDomainFactory, UserFactory

    if connection.vendor != "postgresql":
        pytest.skip("the 500 is PostgreSQL's (SQLite accepts NUL in strings)")
    CustomDomainFactory()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.get(url)
    assert response.status_code == 400


# --- item 8: one owner's bad address ----------------------------------------------------------


@pytest.mark.django_db
def test_attack_crlf_owner_address_blocks_the_other_owners(
    monkeypatch: pytest.MonkeyPatch, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """An owner sets their email to `a@evil.test\\r\\nBcc: ...`: the header injection must
    not be sent, and the other owners still get their message, without a retry loop."""
    from django.core import mail
    from django.db import transaction

    from domains.models import DomainStatus, Role
    from notifications import sending
    from notifications.models import Notification
    from tests.factories import (
        CustomDomainFactory,
        MembershipFactory,
        UserFactory,
        WorkspaceFactory,
    )
    from tests.notify_helpers import LOCMEM_EMAIL, TaskRecorder
    from workflow import lifecycle

    settings.EMAIL_BACKEND = LOCMEM_EMAIL
    queued = TaskRecorder()
    _record_tasks(monkeypatch, queued)
    workspace = WorkspaceFactory()
    MembershipFactory(workspace=workspace, role=Role.OWNER,
                      user=UserFactory(email="a@evil.test\r\nBcc: victim@elsewhere.test"))
    MembershipFactory(workspace=workspace, role=Role.ADMIN,
                      user=UserFactory(email="owner@acme.test"))
    domain = CustomDomainFactory(workspace=workspace)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        lifecycle.domain_transition(domain=domain, to=DomainStatus.ACTIVE,
                            allowed_from=[DomainStatus.PENDING_VALIDATION], source="test")
    assert queued.run(TaskName.NOTIFICATION_SEND) == ["sent"]
    assert [m.to for m in mail.outbox] == [["owner@acme.test"]]
    assert all("victim" not in str(m.message()) for m in mail.outbox)
    assert sending.due_notifications() == []
    assert Notification.objects.get(domain=domain).recipients == ["owner@acme.test"]


# --- item 3: staff powers follow Django permissions ------------------------------------------


def _api_as(user: Any) -> Any:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_attack_staff_without_permissions_deletes_any_workspace_domain() -> None:
    from domains.models import CustomDomain, DomainStatus
    from tests.factories import CustomDomainFactory, UserFactory, staff_with_perms

    victim = CustomDomainFactory(hostname="gallery.victim.com", status=DomainStatus.ACTIVE)
    for staff in (UserFactory(is_staff=True), staff_with_perms("view_customdomain")):
        response = _api_as(staff).delete("/api/domains/gallery.victim.com/")
        assert response.status_code in (403, 404), response.content
        assert CustomDomain.objects.get(pk=victim.pk).status == DomainStatus.ACTIVE
    # The permission Django's admin would require does allow it.
    allowed = staff_with_perms("delete_customdomain", "view_customdomain")
    assert _api_as(allowed).delete("/api/domains/gallery.victim.com/").status_code == 200


@pytest.mark.django_db
def test_attack_staff_without_permissions_registers_into_any_workspace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from domains.models import CustomDomain
    from tests.factories import UserFactory, WorkspaceFactory, staff_with_perms

    _record_tasks(monkeypatch)
    WorkspaceFactory(slug="victim", plan="pro")
    for staff in (UserFactory(is_staff=True), staff_with_perms("view_customdomain")):
        response = _api_as(staff).post(
            "/api/domains/", {"hostname": "shop.victim-client.com", "workspace": "victim"},
            format="json")
        assert response.status_code == 403, response.content
    assert not CustomDomain.objects.exists()
    allowed = staff_with_perms("add_customdomain")
    assert _api_as(allowed).post(
        "/api/domains/", {"hostname": "shop.victim-client.com", "workspace": "victim"},
        format="json").status_code == 201


@pytest.mark.django_db
def test_attack_view_only_staff_reads_api_tokens_in_the_admin(client: Any) -> None:
    from django.contrib.auth.models import Permission
    from rest_framework.authtoken.models import Token

    from tests.factories import UserFactory

    victim = UserFactory(username="victim")
    token = Token.objects.create(user=victim)
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_tokenproxy"))
    for user in (viewer, UserFactory(is_staff=True, is_superuser=True)):
        client.force_login(user)
        for url in ("/admin/authtoken/tokenproxy/",
                    f"/admin/authtoken/tokenproxy/{victim.pk}/change/",
                    f"/admin/authtoken/tokenproxy/{victim.pk}/delete/"):
            response = client.get(url, follow=True)
            assert response.status_code in (200, 403)
            assert token.key not in response.content.decode(), url
    # A superuser adding a token sees its key once, on the page the add leads to.
    other = UserFactory(username="newcomer")
    response = client.post("/admin/authtoken/tokenproxy/add/", {"user": other.pk}, follow=True)
    assert Token.objects.get(user=other).key in response.content.decode()
    assert Token.objects.get(user=other).key not in client.get(
        "/admin/authtoken/tokenproxy/").content.decode()


@pytest.mark.django_db
def test_attack_view_only_staff_reads_webhook_signing_secret(client: Any) -> None:
    from tests.factories import WebhookEndpointFactory, staff_with_perms

    endpoint = WebhookEndpointFactory()
    url = f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/"
    client.force_login(staff_with_perms("view_webhookendpoint"))
    response = client.get(url)
    assert response.status_code == 200
    assert endpoint.secret not in response.content.decode()
    client.force_login(staff_with_perms("view_webhookendpoint", "change_webhookendpoint"))
    assert endpoint.secret in client.get(url).content.decode()


# --- item 1: takeover through a failed or removed claim -------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("first_claim_ended", ["failed", "removed"])
def test_attack_takeover_after_another_workspace_s_claim_failed_or_was_removed(
    monkeypatch: pytest.MonkeyPatch, first_claim_ended: str
) -> None:
    """A registered the name (its customer's CNAME, and ACM's validation CNAME, may still
    point at us); the claim failed or was removed without ever activating. B registers the
    name: B must prove ownership with its own TXT record."""
    from django.db import transaction

    from domains.models import DomainStatus
    from tests.factories import WorkspaceFactory
    from workflow import lifecycle, services

    _record_tasks(monkeypatch)
    a, b = WorkspaceFactory(slug="ws-a"), WorkspaceFactory(slug="ws-b")
    first = services.domain_register(workspace=a, hostname="gallery.client.com", by=None)
    if first_claim_ended == "failed":
        with transaction.atomic():
            lifecycle.domain_transition(domain=first, to=DomainStatus.FAILED,
                                allowed_from=[DomainStatus.PENDING_VALIDATION], source="test")
    else:
        services.domain_remove(domain=first, by=None, source="test")
    second = services.domain_register(workspace=b, hostname="gallery.client.com", by=None)
    assert second.ownership_required is True
    assert second.ownership_verified_at is None


@pytest.mark.django_db
def test_attack_explicit_release_is_the_only_way_to_skip_the_proof(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The counterpart: A releases the name explicitly (API), then B needs no TXT proof."""
    from domains.models import CustomDomain, DomainEvent, Role
    from tests.factories import MembershipFactory, WorkspaceFactory

    _record_tasks(monkeypatch)
    a, b = WorkspaceFactory(slug="ws-a"), WorkspaceFactory(slug="ws-b")
    a_owner = MembershipFactory(workspace=a, role=Role.OWNER).user
    b_owner = MembershipFactory(workspace=b, role=Role.OWNER).user
    body = {"hostname": "gallery.client.com"}
    assert _api_as(a_owner).post("/api/domains/", {**body, "workspace": "ws-a"},
                                 format="json").status_code == 201
    # A member of B cannot release A's name.
    assert _api_as(b_owner).post("/api/domains/gallery.client.com/release").status_code == 404
    released = _api_as(a_owner).post("/api/domains/gallery.client.com/release")
    assert released.status_code == 200, released.content
    assert released.json()["status"] == "removed"
    assert DomainEvent.objects.filter(kind="relinquished", actor=a_owner).count() == 1
    assert _api_as(b_owner).post("/api/domains/", {**body, "workspace": "ws-b"},
                                 format="json").status_code == 201
    assert CustomDomain.objects.get(workspace=b).ownership_required is False


# --- item 4: slug rename -------------------------------------------------------------------


@pytest.mark.django_db
def test_attack_new_workspace_takes_an_old_slug_and_inherits_txt_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tokens were derived from the slug: a workspace created later under a slug another
    workspace once had would be handed that workspace's proofs. They follow the id now."""
    from domains.models import Workspace
    from workflow import services

    first = Workspace.objects.create(slug="acme", name="Acme", plan="pro")
    before = services.ownership_token_for(
        **_token_kwargs(services, first), hostname="gallery.client.com")
    first.delete()
    second = Workspace.objects.create(slug="acme", name="Impostor", plan="pro")
    after = services.ownership_token_for(
        **_token_kwargs(services, second), hostname="gallery.client.com")
    assert before != after


def _token_kwargs(services: Any, workspace: Any) -> dict[str, Any]:
    import inspect

    params = inspect.signature(services.ownership_token_for).parameters
    return ({"workspace_id": workspace.pk} if "workspace_id" in params
            else {"workspace_slug": workspace.slug})


@pytest.mark.django_db
def test_attack_slug_rename_in_the_admin_leaves_the_edge_on_the_old_slug(client: Any) -> None:
    """Renaming is refused: the slug is read-only once the workspace exists."""
    from domains.models import Workspace
    from tests.factories import UserFactory, WorkspaceFactory

    workspace = WorkspaceFactory(slug="acme", name="Acme", plan="pro")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = f"/admin/domains/workspace/{workspace.pk}/change/"
    form = {"slug": "renamed", "name": "Acme", "plan": "pro",
            "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000"}
    response = client.post(url, form)
    assert response.status_code in (200, 302)
    assert Workspace.objects.get(pk=workspace.pk).slug == "acme"


# --- item 5: webhook SSRF ------------------------------------------------------------------

SSRF_URLS = [
    "https://169.254.169.254/latest/meta-data/",
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://10.0.0.5/hooks",
    "https://192.168.1.10/hooks",
    "https://localhost/hooks",
    "https://[::1]/hooks",
    "https://[::ffff:127.0.0.1]/hooks",
    "https://[64:ff9b::a9fe:a9fe]/hooks",
    "https://metadata.google.internal/computeMetadata/v1/",
]


def _deliver_once(url: str, django_capture_on_commit_callbacks: Any,
                  monkeypatch: pytest.MonkeyPatch) -> Any:
    from django.db import transaction

    from domains.models import DomainStatus
    from notifications import sending
    from notifications.models import WebhookDelivery, WebhookEndpoint
    from tests.factories import CustomDomainFactory, WebhookEndpointFactory
    from workflow import lifecycle

    _record_tasks(monkeypatch)
    endpoint = WebhookEndpointFactory()
    # Straight into the table: the sender must not rely on the save-time check.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=url)
    domain = CustomDomainFactory()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        lifecycle.domain_transition(domain=domain, to=DomainStatus.ACTIVE,
                            allowed_from=[DomainStatus.PENDING_VALIDATION], source="test")
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    outcome = sending.webhook_deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return outcome, delivery


@pytest.mark.django_db
@pytest.mark.parametrize("url", SSRF_URLS)
def test_attack_webhook_ssrf_to_metadata_private_and_loopback_addresses(
    url: str, settings: Any, monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.core.exceptions import ValidationError

    from tests.factories import WebhookEndpointFactory

    settings.DEBUG = False
    connects: list[Any] = []
    monkeypatch.setattr("socket.create_connection",
                        lambda *a, **k: connects.append(a) or (_ for _ in ()).throw(OSError()))
    with pytest.raises(ValidationError):
        WebhookEndpointFactory.build(url=url).full_clean()
    outcome, delivery = _deliver_once(url, django_capture_on_commit_callbacks, monkeypatch)
    assert outcome == "failed" and delivery.status_code is None
    assert connects == []


@pytest.mark.django_db
def test_attack_webhook_name_resolving_to_loopback_and_dns_rebinding(
    settings: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any,
) -> None:
    """hooks.attacker.example resolves to an internal address (here a real server on
    127.0.0.2, standing for one inside the VPC), first alone, then among public answers,
    then only on the second lookup (rebinding). No POST may reach it."""
    import socket

    from tests.notify_helpers import webhook_receiver

    real_getaddrinfo = socket.getaddrinfo
    with webhook_receiver() as good:
        port = good.server.server_address[1]
        with webhook_receiver() as internal:
            internal.server.server_close()
            from http.server import ThreadingHTTPServer

            internal.server = ThreadingHTTPServer(("127.0.0.2", port),
                                                  good.server.RequestHandlerClass)
            import threading

            threading.Thread(target=internal.server.serve_forever, daemon=True).start()
            try:
                # Loopback 127.0.0.1 plays the public receiver; 127.0.0.2 the internal one.
                settings.VEDOMAINS_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
                answers: list[list[str]] = []

                def fake_dns(host: str, *args: Any, **kwargs: Any) -> Any:
                    if host != "hooks.attacker.example":
                        return real_getaddrinfo(host, *args, **kwargs)
                    ips = answers.pop(0) if len(answers) > 1 else answers[0]
                    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                            for ip in ips]

                monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
                url = f"http://hooks.attacker.example:{port}/hooks"
                for scenario in (["127.0.0.2"], ["127.0.0.2", "127.0.0.1"]):
                    answers[:] = [scenario]
                    outcome, delivery = _deliver_once(url, django_capture_on_commit_callbacks,
                                                      monkeypatch)
                    assert outcome == "failed", scenario
                # Rebinding: the check sees 127.0.0.1, any later lookup 127.0.0.2.
                answers[:] = [["127.0.0.1"], ["127.0.0.2"]]
                outcome, delivery = _deliver_once(url, django_capture_on_commit_callbacks,
                                                  monkeypatch)
                assert internal.requests == []
                assert outcome == "delivered" and len(good.requests) == 1
                # Host header names the URL's host, not the address.
                assert good.requests[0].headers["Host"].startswith("hooks.attacker.example")
            finally:
                internal.server.shutdown()


@pytest.mark.django_db
def test_attack_plain_http_webhook_outside_debug(settings: Any) -> None:
    from django.core.exceptions import ValidationError

    from tests.factories import WebhookEndpointFactory

    settings.DEBUG = False
    with pytest.raises(ValidationError):
        WebhookEndpointFactory.build(url="http://hooks.example.com/x").full_clean()
    WebhookEndpointFactory.build(url="https://hooks.example.com/x").full_clean()


@pytest.mark.django_db
def test_attack_webhook_response_body_stored_for_staff_to_read() -> None:
    from notifications.models import WebhookDelivery

    assert "response_excerpt" not in {f.name for f in WebhookDelivery._meta.get_fields()}


@pytest.mark.django_db
def test_attack_webhook_endpoint_saved_with_a_name_resolving_to_a_private_address(
    client: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from notifications.models import WebhookEndpoint
    from tests.factories import UserFactory

    real_getaddrinfo = socket.getaddrinfo

    def fake_dns(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.attacker.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 443))]
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.post("/admin/notifications/webhookendpoint/add/", {
        "name": "x", "url": "https://hooks.attacker.example/h", "active": "on"})
    assert response.status_code == 200 and "non-public" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


# --- item 6: production settings ------------------------------------------------------------


def _settings_process(code: str, extra: dict[str, str], tmp_path: Any) -> Any:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VEDOMAINS_", "DJANGO_", "CACHE_URL"))}
    env.update({"PYTHONPATH": str(root), "DJANGO_SETTINGS_MODULE": "vedomains_site.settings",
                **extra})
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=env)


PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "k3y-" + "x7Rq9#Lp2!vZ" * 5,
    "DJANGO_ALLOWED_HOSTS": "domains.ve.ai",
    "CACHE_URL": "rediscache://127.0.0.1:6379/6",
    "DJANGO_BEHIND_TLS_PROXY": "true",
    # The default CDN strategy's resources, as deploy/control-plane.yaml injects them.
    "VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID": "E2MULTITENANT1",
    "VEDOMAINS_CDN_CONNECTION_GROUP_ID": "cg_2abcdefghijklmnopqrstuvwxyz",
}


def test_attack_importing_pytest_switches_production_into_test_mode(tmp_path: Any) -> None:
    """A production process that imports pytest (a plugin, a debugging aid) must not get
    the insecure development key: without a key, settings refuse to load."""
    out = _settings_process("import pytest, vedomains_site.settings", {"DJANGO_DEBUG": "false",
                            "CACHE_URL": "rediscache://127.0.0.1:6379/6"}, tmp_path)
    assert out.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in out.stderr


def test_attack_check_deploy_warnings_in_production(tmp_path: Any) -> None:
    # Every deployment check (Django's "security" tag) passes at WARNING level; the whole
    # `check --deploy` has no error. (drf-spectacular's enum-naming warnings are about the
    # schema's component names, not the deployment.)
    code = ("import django; django.setup(); from django.core.management import call_command; "
            "call_command('check', deploy=True, tags=['security'], fail_level='WARNING'); "
            "call_command('check', deploy=True, fail_level='ERROR'); "
            "from django.conf import settings as s; print(s.SECURE_PROXY_SSL_HEADER)")
    out = _settings_process(code, PRODUCTION_ENV, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "security." not in out.stderr
    assert "HTTP_X_FORWARDED_PROTO" in out.stdout


def test_attack_local_memory_cache_multiplies_throttles_in_production(tmp_path: Any) -> None:
    out = _settings_process("import django; django.setup()",
                            {**PRODUCTION_ENV, "CACHE_URL": "locmemcache://vedomains"}, tmp_path)
    assert out.returncode != 0
    assert "CACHE_URL is a local-memory cache" in out.stderr
    # The default (no CACHE_URL at all) is local memory too: refused the same way.
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "CACHE_URL"}
    assert _settings_process("import django; django.setup()", env, tmp_path).returncode != 0


# --- item 2: certificate budget --------------------------------------------------------------


@pytest.mark.per_domain
@pytest.mark.django_db
@pytest.mark.integration
def test_attack_register_and_remove_loop_exhausts_the_acm_request_quota(
    aws_stack: Any, dns_server: Any, settings: Any, monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """A 3-domain workspace registers and removes names in a loop. Names whose CNAME never
    points at us cost no certificate; the rest stop at the workspace's daily budget, held
    with the reason; the platform budget caps everyone; nothing is counted twice."""
    from workflow import services

    try:  # the engine was split into checks and certificates (struct)
        from workflow.certificates import domain_request_certificate
        from workflow.checks import domain_check
    except ImportError:
        from domains.engine import domain_check, domain_request_certificate
    from domains.errors import Throttled
    from domains.integrations import aws
    from domains.models import CustomDomain
    from tests.factories import WorkspaceFactory
    from tests.notify_helpers import TaskRecorder

    queued = TaskRecorder()
    _record_tasks(monkeypatch, queued)
    settings.VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY = 4
    settings.VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY = 6
    attacker = WorkspaceFactory(slug="attacker", plan="pro")

    def acm_certificates() -> int:
        return len(aws.client("acm", "us-east-1").list_certificates()["CertificateSummaryList"])

    # 1. Without a CNAME, registration and checks request nothing (the queued tasks run
    # as a worker would run them).
    for i in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            domain = services.domain_register(workspace=attacker, hostname=f"d{i}.junk.com",
                                              by=None)
            domain_check(domain_id=domain.pk, force=True)
        queued.run(TaskName.DOMAIN_REQUEST_CERTIFICATE)
        services.domain_remove(domain=domain, by=None, source="test")
    assert acm_certificates() == 0
    queued.calls.clear()

    # 2. With the CNAME: the check asks for the certificate; the 5th is held.
    outcomes = []
    for i in range(5):
        host = f"c{i}.junk.com"
        dns_server.store.set_record(host, "CNAME", "domain.ve.ai")
        try:
            domain = services.domain_register(workspace=attacker, hostname=host, by=None)
        except Throttled as exc:
            outcomes.append(exc.code)
            continue
        domain_check(domain_id=domain.pk, force=True)
        outcomes.append(domain_request_certificate(domain_id=domain.pk))
        domain.refresh_from_db()
        services.domain_remove(domain=domain, by=None, source="test")
    assert outcomes == ["requested"] * 4 + ["certificate_budget"]
    assert acm_certificates() == 4

    # A request that was already queued when the budget ran out is held, with the reason.
    dns_server.store.set_record("late.junk.com", "CNAME", "domain.ve.ai")
    settings.VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY = 5
    late = services.domain_register(workspace=attacker, hostname="late.junk.com", by=None)
    settings.VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY = 4
    assert domain_request_certificate(domain_id=late.pk) == "held"
    late = CustomDomain.objects.get(pk=late.pk)
    assert late.certificate_arn == "" and "requested its 4 certificates" in late.last_error
    assert late.checks["certificate"]["held"] is True

    # 3. The platform budget (6) caps the others once it is spent.
    other = WorkspaceFactory(slug="other", plan="pro")
    for i in range(3):
        host = f"o{i}.fine.com"
        dns_server.store.set_record(host, "CNAME", "domain.ve.ai")
        try:
            domain = services.domain_register(workspace=other, hostname=host, by=None)
        except Throttled as exc:
            outcomes.append(exc.code)
            continue
        outcomes.append(domain_request_certificate(domain_id=domain.pk))
    assert outcomes[-3:] == ["requested", "requested", "certificate_budget"]
    assert acm_certificates() == 6
    from workflow.certificate_budget import certificate_budget_usage
    from workflow.models import CertificateBudgetDay

    usage = certificate_budget_usage()
    assert (usage["platform_used"], usage["platform_limit"]) == (6, 6)
    assert usage["busiest"][0] == {"workspace": "attacker", "used": 4, "limit": 4}
    assert CertificateBudgetDay.objects.count() == 3


@pytest.mark.django_db
def test_attack_certificate_budget_shown_on_the_dashboard(client: Any, settings: Any) -> None:
    from django.utils import timezone

    from tests.factories import UserFactory
    from workflow.models import CertificateBudgetDay

    settings.VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY = 50
    CertificateBudgetDay.objects.create(day=timezone.now().date(), workspace=None, count=37)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get("/admin/domains/dashboard/").content.decode()
    assert "37 / 50" in page


# --- item 10: the app's IAM policy -----------------------------------------------------------

# Operations whose IAM action differs from the API name (Service Authorization Reference).
IAM_ACTIONS_FOR = {
    "cloudfront:CreateDistributionWithTags": ["cloudfront:CreateDistribution",
                                              "cloudfront:TagResource"],
}
SERVICE_MARKERS = {"acm": '"acm"', "cloudfront": '"cloudfront"', "dynamodb": '"dynamodb"'}
# Called only by local tooling, never by the deployed app: production creates the table in
# deploy/dynamodb-global-table.yaml (`manage.py create_edge_table` is for the emulator).
LOCAL_ONLY = {"dynamodb:CreateTable"}


# Run by an operator with a sandbox account's own credentials, never by the task role:
# `aws_probe` creates and deletes its own distribution, connection group and tenants.
OPERATOR_ONLY_MODULES = frozenset({"aws_probe.py"})


def _app_operations() -> set[str]:
    """Every AWS operation domains/ calls: client methods named like an operation of a
    service the same module builds a client for (plus paginators)."""
    import re
    from pathlib import Path

    import botocore.session
    from botocore import xform_name

    root = Path(__file__).resolve().parent.parent
    session = botocore.session.get_session()
    found: set[str] = set()
    for path in (
        p
        for app in ("domains", "notifications", "edge", "workflow", "veai", "staff", "api")
        for p in (root / app).rglob("*.py")
    ):
        if "migrations" in path.parts or path.name in OPERATOR_ONLY_MODULES:
            continue
        source = path.read_text()
        called = set(re.findall(r"\.([a-z_0-9]+)\(", source))
        called |= set(re.findall(r"get_paginator\(\s*\"([a-z_0-9]+)\"", source))
        for service, marker in SERVICE_MARKERS.items():
            if marker not in source:
                continue
            model = session.get_service_model(service)
            for operation in model.operation_names:
                if xform_name(operation) in called:
                    found.add(f"{service}:{operation}")
    return found


def _policy_statements() -> list[dict[str, Any]]:
    """The task role's statements as deployed (intrinsics resolved), with the per-domain
    strategy on so that every operation of every strategy is in scope; Resource and
    Condition are evaluated in tests/test_iam_policy.py."""
    from tests.iam_policy import app_statements

    return app_statements(per_domain=True)


def _allowed(action: str, statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from fnmatch import fnmatchcase

    matches = []
    for statement in statements:
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else actions
        if statement["Effect"] == "Allow" and any(
                fnmatchcase(action.lower(), a.lower()) for a in actions):
            matches.append(statement)
    return matches


def test_attack_app_calls_an_aws_operation_its_iam_policy_does_not_allow() -> None:
    """The hourly reconcile calls dynamodb:BatchGetItem, which the policy lacked: in AWS
    the call fails with AccessDenied however green the suite is against moto."""
    operations = _app_operations()
    # The scan sees the calls the design rests on (so it cannot silently find nothing).
    assert {"acm:RequestCertificate", "dynamodb:BatchGetItem",
            "cloudfront:UpdateDistribution"} <= operations
    statements = _policy_statements()
    missing = [
        action
        for operation in sorted(operations - LOCAL_ONLY)
        for action in IAM_ACTIONS_FOR.get(operation, [operation])
        if not _allowed(action, statements)
    ]
    assert missing == []


def test_attack_compromised_worker_deletes_the_platform_s_own_distribution_or_certificates(
) -> None:
    """Destructive CloudFront and ACM actions are allowed only on resources carrying the
    app's tag, which the app sets on everything it creates (and the platform's own
    distributions and certificates do not carry)."""
    from domains.integrations import aws

    statements = _policy_statements()
    tag_key = getattr(aws, "MANAGED_TAG_KEY", "vedomains-managed")
    tag_value = getattr(aws, "MANAGED_TAG_VALUE", "true")
    key = f"aws:ResourceTag/{tag_key}"
    for action in ("cloudfront:UpdateDistribution", "cloudfront:DeleteDistribution",
                   "acm:DeleteCertificate"):
        grants = _allowed(action, statements)
        assert grants, action
        for statement in grants:
            condition = statement.get("Condition", {}).get("StringEquals", {})
            assert condition.get(key) == tag_value, (action, statement.get("Sid"))
    # Creating and tagging are allowed only with the tag in the request, so the app can
    # only ever label things with its own tag...
    for action in ("acm:RequestCertificate", "acm:AddTagsToCertificate",
                   "cloudfront:TagResource"):
        for statement in _allowed(action, statements):
            if "distribution-tenant/" in str(statement["Resource"]):
                continue  # tenants: the SaaS strategy's statement
            condition = statement.get("Condition", {}).get("StringEquals", {})
            assert condition.get(f"aws:RequestTag/{tag_key}") == \
                tag_value, action
    # ...and can never tag, update or delete what the platform owns.
    denied = [s for s in statements if s["Effect"] == "Deny"
              and s.get("Condition", {}).get("StringEquals", {}).get(
                  "aws:ResourceTag/vedomains-platform") == "true"]
    denied_actions = {a for s in denied for a in s["Action"]}
    assert {"cloudfront:TagResource", "cloudfront:UntagResource",
            "cloudfront:UpdateDistribution", "cloudfront:DeleteDistribution",
            "acm:DeleteCertificate", "acm:AddTagsToCertificate"} <= denied_actions


@pytest.mark.django_db
@pytest.mark.integration
def test_attack_what_the_app_creates_carries_the_tag_its_policy_requires(
    aws_stack: Any,
) -> None:
    from domains.integrations import acm, aws, cdn

    managed = {"Key": "vedomains-managed", "Value": "true"}
    arn = acm.request_certificate(hostname="shop.client.com", key="t1",
                                  tags={"vedomains-domain-id": "1"})
    tags = aws.client("acm", "us-east-1").list_tags_for_certificate(CertificateArn=arn)["Tags"]
    assert managed in tags
    attachment = cdn.DistributionPerDomain().attach(
        hostname="shop.client.com", certificate_arn=arn, reference="vedomains-t1")
    cf = aws.client("cloudfront", "us-east-1")
    dist_arn = cf.get_distribution(Id=attachment.resource_id)["Distribution"]["ARN"]
    items = cf.list_tags_for_resource(Resource=dist_arn)["Tags"]["Items"] or []
    assert managed in items


def _self_signed(tmp_path: Any, name: str) -> tuple[str, str]:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_guard_pinned_address_keeps_tls_verification_on_the_hostname(
    tmp_path: Any, settings: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Connecting to the checked address must still present SNI and verify the certificate
    against the URL's hostname: a server holding a certificate for another name fails."""
    import socket
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from domains.integrations import webhook_http
    from domains.integrations.errors import IntegrationError

    settings.DEBUG = False
    settings.VEDOMAINS_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    good_cert, good_key = _self_signed(tmp_path, "hooks.attacker.example")
    other_cert, other_key = _self_signed(tmp_path, "someone-else.example")
    seen_sni: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    def serve(cert: str, key: str) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda sock, name, ctx: seen_sni.append(name)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    real_getaddrinfo = socket.getaddrinfo

    def fake_dns(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.attacker.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
    # Trust both self-signed certificates, as if a public CA had issued them.
    real_context = ssl.create_default_context

    def trusting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        context = real_context(*args, **kwargs)
        context.load_verify_locations(good_cert)
        context.load_verify_locations(other_cert)
        return context

    monkeypatch.setattr(ssl, "create_default_context", trusting)
    for cert, key, ok in ((good_cert, good_key, True), (other_cert, other_key, False)):
        server = serve(cert, key)
        url = f"https://hooks.attacker.example:{server.server_address[1]}/h"
        try:
            if ok:
                result = webhook_http.post_json(url, b"{}", {}, timeout=5)
                assert result.status_code == 204
            else:
                with pytest.raises(IntegrationError):
                    webhook_http.post_json(url, b"{}", {}, timeout=5)
        finally:
            server.shutdown()
            server.server_close()
    assert seen_sni == ["hooks.attacker.example", "hooks.attacker.example"]
