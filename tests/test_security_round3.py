"""Adversarial review, round 3 (the application's items): one test per attack.

Same rules as `tests/test_security_adversarial.py`: each `test_attack_...` failed against
the code before its fix (new names are imported inside the tests, so each fails on its
own), and asserts that the attack is now refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.veai.helpers import jwks, main_key, service_secret  # noqa: F401 (fixtures)

# --- item 15: webhook addresses in the special-purpose registries -----------------------------

SPECIAL_ADDRESSES = [
    "::a9fe:a9fe",             # IPv4-compatible (deprecated) ::169.254.169.254
    "::808:808",               # IPv4-compatible, even for a public IPv4 address
    "64:ff9b:1::a9fe:a9fe",    # local-use NAT64 (RFC 8215)
    "64:ff9b:1::808:808",
    "fec0::1",                 # site-local (deprecated, RFC 3879)
    "100::1",                  # discard-only
    "2001:2::1",               # benchmarking
    "3fff::1",                 # documentation (RFC 9637)
    "5f00::1",                 # SRv6 SIDs
    "192.0.0.9",               # IETF protocol assignments
    "192.88.99.1",             # 6to4 relay anycast (deprecated)
    "192.31.196.1",            # AS112
    "198.18.0.1",              # benchmarking
]


@pytest.mark.parametrize("address", SPECIAL_ADDRESSES)
def test_attack_webhook_to_a_special_purpose_address(address: str, settings: Any) -> None:
    from domains.integrations.errors import IntegrationError
    from domains.integrations.webhook_http import check_url

    settings.DEBUG = False
    settings.VEDOMAINS_WEBHOOK_ALLOWED_NETWORKS = []
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(IntegrationError) as caught:
        check_url(f"https://{host}/hooks")
    assert caught.value.code == "forbidden_destination"


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808"])
def test_guard_webhook_to_a_public_address_still_allowed(address: str, settings: Any) -> None:
    from domains.integrations.webhook_http import check_url

    settings.DEBUG = False
    settings.VEDOMAINS_WEBHOOK_ALLOWED_NETWORKS = []
    host = f"[{address}]" if ":" in address else address
    assert check_url(f"https://{host}/hooks")[1] == address


# --- item 4: one workspace spends the platform's whole daily certificate budget -------------


@pytest.mark.django_db
def test_attack_one_enterprise_workspace_spends_the_platform_s_daily_budget(
    settings: Any,
) -> None:
    from tests.factories import WorkspaceFactory
    from workflow.certificate_budget import (
        CertificateBudgetExceeded,
        certificate_budget_check,
        certificate_budget_consume,
    )

    settings.VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY = 10
    settings.VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY = 50
    big = WorkspaceFactory(slug="big", plan="enterprise")
    assert big.domain_limit >= 50
    taken = 0
    for _ in range(50):
        try:
            certificate_budget_consume(workspace=big, kind="acm")
        except CertificateBudgetExceeded:
            break
        taken += 1
    assert taken == 25  # half the platform's day (VEDOMAINS_CERT_BUDGET_WORKSPACE_SHARE=50)
    small = WorkspaceFactory(slug="small", plan="pro")
    certificate_budget_check(workspace=small)
    certificate_budget_consume(workspace=small, kind="acm")


@pytest.mark.parametrize(("share", "ok"), [(50, True), (100, True), (0, False), (101, False)])
def test_certificate_budget_share_setting_is_checked(settings: Any, share: int,
                                                     ok: bool) -> None:
    from domains.system_checks import settings_check

    settings.VEDOMAINS_CERT_BUDGET_WORKSPACE_SHARE = share
    named = [m for m in settings_check(None) if "VEDOMAINS_CERT_BUDGET_WORKSPACE_SHARE" in m.msg]
    assert (named == []) is ok


# --- item 5: seed adoption skips the TXT rule -------------------------------------------------


@pytest.mark.django_db
@pytest.mark.integration
def test_attack_seed_adoption_activates_a_name_another_workspace_held_without_proof(
    saas_stack: Any, dns_server: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`other` held shop.client.com and never released it (its claim was removed); the
    seed's table has an active item giving the name to `acme`. Adoption must ask for the
    same TXT proof as a registration would, and adopt once the record is there."""
    from domains import queueing
    from domains.models import CustomDomain, DomainStatus
    from tests.factories import CustomDomainFactory, WorkspaceFactory
    from tests.veai.test_adoption import _wait_issued, seed_register, seed_validate
    from veai.adoption import seed_table_adopt

    monkeypatch.setattr(queueing, "task_send", lambda name, *args: None)
    other = WorkspaceFactory(slug="other", plan="pro")
    CustomDomainFactory(hostname="shop.client.com", workspace=other,
                        status=DomainStatus.REMOVED)
    acme = WorkspaceFactory(slug="acme", plan="pro")
    arn = seed_register("shop.client.com", "acme")
    _wait_issued(arn)
    seed_validate("shop.client.com")
    dns_server.store.set_record("shop.client.com", "CNAME", "domain.ve.ai")

    report = seed_table_adopt(dry_run=False).items[0]
    assert (report.outcome, report.reason) == ("skipped", "ownership_proof_required")
    assert not CustomDomain.objects.filter(workspace=acme).exists()
    txt = report.dns_records[0]
    assert (txt["type"], txt["name"]) == ("TXT", "_vedomains-challenge.shop.client.com")

    dns_server.store.set_record(txt["name"], "TXT", txt["value"])
    report = seed_table_adopt(dry_run=False).items[0]
    assert report.outcome == "adopted", report
    adopted = CustomDomain.objects.get(workspace=acme)
    assert adopted.ownership_required and adopted.ownership_verified_at is not None


# --- items 13 and 14: the operator endpoints ---------------------------------------------------

TASK_HOST = "10.0.3.7:8000"


@pytest.mark.django_db
def test_attack_readiness_shows_internal_addresses_and_exception_text(
    settings: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    from django.test import Client

    from tests.ops_helpers import closed_port

    port = closed_port()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    with caplog.at_level("WARNING", logger="vedomains.request"):
        response = Client().get("/health/ready", HTTP_HOST=TASK_HOST)
    assert response.status_code == 503
    text = response.content.decode()
    assert str(port) not in text and "127.0.0.1" not in text and "Error" not in text
    assert response.json() == {"status": "unavailable", "checks": {
        "database": {"ok": True}, "broker": {"ok": False}, "cache": {"ok": True}}}
    # The reason is for operators, in the log line.
    assert any("broker: ConnectionError" in r.getMessage() and str(port) in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("raw", [
    "/%68ealth/live", "/health%2Flive", "/health/%6Cive",
    "http://10.0.3.7:8000/%68ealth/live",
])
def test_attack_encoded_health_path_passes_a_literal_load_balancer_rule(
    raw: str, settings: Any,
) -> None:
    """gunicorn decodes %-escapes (%2F included) into PATH_INFO and keeps the request line in
    RAW_URI: the same environ the test client gets here."""
    from django.test import Client

    settings.VEDOMAINS_METRICS_TOKEN = "t0ken"
    response = Client().get("/health/live", HTTP_HOST=TASK_HOST, RAW_URI=raw)
    assert response.status_code == 404
    metrics = raw.replace("health/live", "metrics").replace("%68ealth", "%6Detrics")
    response = Client().get("/metrics", HTTP_HOST=TASK_HOST, RAW_URI=metrics,
                            HTTP_AUTHORIZATION="Bearer t0ken")
    assert response.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["/%61dmin/login/", "/admin%2Flogin/"])
def test_attack_encoded_admin_path_passes_a_literal_load_balancer_rule(raw: str) -> None:
    from django.test import Client

    response = Client().get("/admin/login/", RAW_URI=raw)
    assert response.status_code == 404
    assert Client().get("/admin/login/", RAW_URI="/admin/login/?next=/admin/").status_code == 200


@pytest.mark.parametrize("raw", ["/health/live", "/health/live?probe=1",
                                 "http://10.0.3.7:8000/health/live"])
def test_guard_canonical_health_path_still_answers(raw: str) -> None:
    from django.test import Client

    response = Client().get("/health/live", HTTP_HOST=TASK_HOST, RAW_URI=raw)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_attack_encoded_health_path_through_gunicorn(tmp_path: Any) -> None:
    """The real server: the canonical path answers, its encoded spellings do not."""
    import http.client
    import os
    import subprocess
    import sys

    from tests.ops_helpers import closed_port
    from tests.polling import wait_for

    port = closed_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "vedomains_site.settings",
           "DJANGO_DEBUG": "true", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "vedomains_site.wsgi"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def status(raw: str) -> int | None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.putrequest("GET", raw, skip_accept_encoding=True)
            conn.endheaders()
            return conn.getresponse().status
        except OSError:
            return None
        finally:
            conn.close()

    try:
        wait_for(lambda: proc.poll() is not None or status("/health/live") == 200, 30,
                 "gunicorn answering /health/live")
        assert proc.poll() is None, "gunicorn exited"
        assert status("/%68ealth/live") == 404
        assert status("/health%2Flive") == 404
        assert status("/%61dmin/login/") == 404
        assert status("/admin%2Flogin/") == 404
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- item 11: a slug freed by a sync rename is taken while edges still cache it --------------


@pytest.mark.django_db
def test_attack_slug_freed_by_a_rename_taken_at_once_by_another_workspace(
    settings: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`alpha` renames itself `beta`; edges keep routing its domains to workspaceId `alpha`
    for up to the positive TTL (300 s) plus the stale window (600 s). Another workspace
    taking `alpha` meanwhile would be served those domains' traffic."""
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from domains import queueing
    from domains.errors import Conflict
    from veai import workspace_sync

    monkeypatch.setattr(queueing, "task_send", lambda name, *args: None)
    settings.VEDOMAINS_EDGE_POSITIVE_TTL_SECONDS = 300

    def upsert(external_id: str, slug: str, version: int) -> Any:
        return workspace_sync.workspace_upsert(data=workspace_sync.workspace_input(
            external_id=external_id,
            data={"slug": slug, "name": slug, "plan": "pro", "version": version}))

    now = timezone.now()
    with time_machine.travel(now, tick=False):
        upsert("ws_a", "alpha", 1)
        upsert("ws_a", "beta", 2)
        with pytest.raises(Conflict) as caught:
            upsert("ws_b", "alpha", 1)
        assert caught.value.code == "slug_held" and caught.value.field == "slug"
        with pytest.raises(Conflict):  # a rename into it is refused the same way
            upsert("ws_c", "gamma", 1)
            upsert("ws_c", "alpha", 2)
    with time_machine.travel(now + timedelta(seconds=899), tick=False), \
            pytest.raises(Conflict):
        upsert("ws_b", "alpha", 1)
    with time_machine.travel(now + timedelta(seconds=901), tick=False):
        assert upsert("ws_b", "alpha", 1).workspace.slug == "alpha"


@pytest.mark.django_db
def test_attack_staff_create_a_workspace_on_a_held_slug(
    client: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.contrib.auth import get_user_model

    from domains import queueing
    from domains.models import Workspace
    from veai import workspace_sync

    monkeypatch.setattr(queueing, "task_send", lambda name, *args: None)
    for version, slug in enumerate(["alpha", "beta"], start=1):
        workspace_sync.workspace_upsert(data=workspace_sync.workspace_input(
            external_id="ws_a", data={"slug": slug, "name": "A", "plan": "pro",
                                      "version": version}))
    client.force_login(get_user_model().objects.create_superuser("s", "s@example.com", "x"))
    response = client.post("/admin/domains/workspace/add/", {
        "slug": "alpha", "name": "Squatter", "plan": "free",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"})
    assert response.status_code == 200 and "is held until" in response.content.decode()
    assert not Workspace.objects.filter(slug="alpha").exists()


@pytest.mark.django_db
def test_guard_a_workspace_takes_its_own_old_slug_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from domains import queueing
    from veai import workspace_sync

    monkeypatch.setattr(queueing, "task_send", lambda name, *args: None)
    for version, slug in enumerate(["alpha", "beta", "alpha"], start=1):
        result = workspace_sync.workspace_upsert(data=workspace_sync.workspace_input(
            external_id="ws_a", data={"slug": slug, "name": "A", "plan": "pro",
                                      "version": version}))
    assert result.workspace.slug == "alpha"


# --- item 7: redaction in JSON logs and Sentry events -----------------------------------------

SYNC_SECRET = "svc_live_Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4"
BARE_JWT = ("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLTEiLCJpc3MiOiJ2ZS5haSJ9"
            ".c2lnbmF0dXJlLWJ5dGVzLWhlcmUtYW5kLW1vcmUtYnl0ZXM")
V1 = "3f6c2a1d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29"


def _json_line(message: str, *args: Any) -> str:
    import logging

    from vedomains_site.observability.logs import JsonFormatter

    record = logging.LogRecord("vedomains.test", logging.WARNING, __file__, 1, message, args,
                               None)
    return JsonFormatter().format(record)


def test_attack_sync_secret_in_json_logs_and_sentry_events(settings: Any) -> None:
    from vedomains_site.observability.sentry import before_send

    settings.VEDOMAINS_SERVICE_SECRETS = ["svc_old_" + "q" * 30, SYNC_SECRET]
    line = _json_line("signing with %s for %s", SYNC_SECRET, "ws_1")
    assert SYNC_SECRET not in line and "ws_1" in line
    event = before_send({"exception": {"values": [{"value": f"bad key {SYNC_SECRET}"}]},
                         "extra": {"args": [SYNC_SECRET]}}, {})
    assert SYNC_SECRET not in str(event)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_attack_bare_jwt_and_signature_v1_kept_in_logs_and_sentry_events(version: str) -> None:
    from vedomains_site.observability.sentry import before_send

    header = f"t=1764300000,{version}={V1}"
    line = _json_line("token %s rejected; header %s", BARE_JWT, header)
    assert BARE_JWT.split(".")[1] not in line and V1 not in line
    assert "t=1764300000" in line  # the timestamp is not a secret and helps debugging
    event = before_send({"message": f"{BARE_JWT} {header}",
                         "request": {"query_string": f"jwt={BARE_JWT}"}}, {})
    assert BARE_JWT.split(".")[2] not in str(event) and V1 not in str(event)


# --- item 9: cheap 500s ------------------------------------------------------------------------


def _no_error_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= 40]
    assert errors == []


def _json_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] and error["message"]
    return dict(error)


def _client(**credentials: str) -> Any:
    from rest_framework.test import APIClient

    client = APIClient(raise_request_exception=False)
    client.credentials(**credentials)
    return client


@pytest.mark.django_db
def test_attack_jwt_alg_not_matching_its_key_type(
    jwks: Any, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    """The JWKS publishes an RSA key under this kid; the token claims ES256 for it."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.veai.helpers import SigningKey

    rsa_key = SigningKey("RSA")
    jwks.publish(rsa_key)
    forged = jwt.encode({"sub": "x", "iss": "https://ve.ai.test", "aud": "vedomains",
                         "iat": 1, "exp": 2**40}, ec.generate_private_key(ec.SECP256R1()),
                        algorithm="ES256", headers={"kid": rsa_key.kid})
    response = _client(HTTP_AUTHORIZATION=f"Bearer {forged}").get("/api/domains/")
    assert _json_error(response, 401)["code"] == "invalid_token"
    _no_error_logged(caplog)


@pytest.mark.django_db
def test_attack_static_key_of_another_type_than_the_token_s_alg(
    settings: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from domains.integrations import main_app_tokens
    from tests.veai.helpers import SigningKey

    rsa_key = SigningKey("RSA")
    settings.VEDOMAINS_JWT_JWKS_URL = ""
    settings.VEDOMAINS_JWT_PUBLIC_KEY = rsa_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    settings.VEDOMAINS_JWT_ISSUER = "https://ve.ai.test"
    settings.VEDOMAINS_JWT_AUDIENCE = "vedomains"
    main_app_tokens.reset_clients()
    forged = jwt.encode({"sub": "x", "iss": "https://ve.ai.test", "aud": "vedomains",
                         "iat": 1, "exp": 2**40}, ec.generate_private_key(ec.SECP256R1()),
                        algorithm="ES256")
    response = _client(HTTP_AUTHORIZATION=f"Bearer {forged}").get("/api/domains/")
    assert _json_error(response, 401)["code"] == "invalid_token"
    _no_error_logged(caplog)


@pytest.mark.django_db
@pytest.mark.parametrize("subject", ["user\x00one", "user\none", "\x00"])
def test_attack_nul_or_control_character_in_the_token_subject(
    main_key: Any, subject: str, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.count()
    token = main_key.token(subject)
    response = _client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/domains/")
    assert _json_error(response, 401)["code"] == "invalid_subject"
    assert get_user_model().objects.count() == users
    _no_error_logged(caplog)


@pytest.mark.django_db
@pytest.mark.parametrize("header", [
    "t=1e400,v2=00", "t=" + "9" * 400 + ",v2=00", "t=-" + "9" * 400 + ",v2=00",
    "t={now},v2=\u00e9\u00e9", "t={now},v2=\u2603", "t={now},v2=ab,v2=\u00ff",
    "t=1e400,v1=00",
])
def test_attack_malformed_service_signature(
    service_secret: str, header: str, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    import time

    from api.authentication import SIGNATURE_HEADER

    value = header.replace("{now}", str(int(time.time())))
    client = _client(**{"HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"): value})
    response = client.put("/api/service/workspaces/ws_1", {"slug": "a"}, format="json")
    # v1 (the old, path/query-ambiguous scheme) is refused by name before its value is read.
    assert _json_error(response, 401)["code"] in {"invalid_signature", "signature_expired",
                                                   "unsupported_signature_version"}
    _no_error_logged(caplog)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/domains/", "/admin/login/", "/api/docs/"])
def test_attack_more_than_a_thousand_query_parameters(
    path: str, caplog: pytest.LogCaptureFixture, settings: Any,
) -> None:
    settings.DEBUG = False
    query = "&".join(f"p{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = _client().get(f"{path}?{query}")
    assert _json_error(response, 400)["code"] == "too_many_fields"
    _no_error_logged(caplog)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/domains/", "/admin/login/"])
def test_attack_more_than_a_thousand_form_fields(
    path: str, caplog: pytest.LogCaptureFixture, settings: Any,
) -> None:
    from django.test import Client

    settings.DEBUG = False
    body = "&".join(f"p{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = Client(raise_request_exception=False).post(
        path, body, content_type="application/x-www-form-urlencoded")
    assert _json_error(response, 400)["code"] == "too_many_fields"
    _no_error_logged(caplog)


@pytest.mark.django_db
@pytest.mark.parametrize("csrf_checks", [False, True])
def test_attack_more_than_a_thousand_multipart_fields(
    caplog: pytest.LogCaptureFixture, settings: Any, csrf_checks: bool,
) -> None:
    """The API takes JSON only (415 for multipart); the admin's forms take multipart."""
    from django.test import Client

    settings.DEBUG = False
    data = {f"p{i}": "1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    client = Client(raise_request_exception=False, enforce_csrf_checks=csrf_checks)
    # With a CSRF cookie, the CSRF middleware reads the form (for its token) before the view.
    client.cookies["csrftoken"] = "a" * 32
    response = client.post("/admin/login/", data)
    assert _json_error(response, 400)["code"] == "too_many_fields"
    _no_error_logged(caplog)


# --- item 6: admin login throttle ---------------------------------------------------------------

ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture
def redis_cache(clean_redis: str, settings: Any) -> str:
    """Production keeps the throttle in Redis (a shared cache), so the tests do too."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": clean_redis}}
    return clean_redis


def _admin_login(client: Any, username: str, password: str, **extra: str) -> Any:
    return client.post("/admin/login/?next=/admin/", {"username": username,
                                                      "password": password}, **extra)


def _logged_in(response: Any) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


@pytest.mark.django_db
def test_attack_admin_password_guessing_then_the_right_password(
    redis_cache: str, settings: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from tests.polling import wait_for

    settings.VEDOMAINS_ADMIN_LOGIN_LOCKOUT_SECONDS = 3
    get_user_model().objects.create_superuser("root", "root@example.com", ADMIN_PASSWORD)
    client = Client()
    for i in range(30):
        response = _admin_login(client, "root", f"guess-{i}")
        assert not _logged_in(response)
    response = _admin_login(client, "root", ADMIN_PASSWORD)
    assert not _logged_in(response)
    text = response.content.decode()
    assert "Too many failed sign-ins" in text and "UTC" in text
    # Every failure is audited, with the account and the address.
    failures = [r for r in caplog.records if r.name == "vedomains.security"
                and "admin sign-in failed" in r.getMessage()]
    assert len(failures) >= settings.VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ACCOUNT
    assert "root" in failures[0].getMessage() and "127.0.0.1" in failures[0].getMessage()
    # The lock expires: the right password then works.
    wait_for(lambda: _logged_in(_admin_login(Client(), "root", ADMIN_PASSWORD)), 10,
             "the lockout to expire")


@pytest.mark.django_db
def test_attack_admin_password_spraying_from_one_address_behind_the_alb(
    redis_cache: str, settings: Any,
) -> None:
    """Many accounts from one client; the viewer's own X-Forwarded-For entries (left of the
    one the load balancer appends) change every time and must not count as addresses."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    settings.DJANGO_BEHIND_TLS_PROXY = True
    settings.VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ADDRESS = 10
    get_user_model().objects.create_superuser("victim", "v@example.com", ADMIN_PASSWORD)
    client = Client()
    for i in range(10):
        _admin_login(client, f"user{i}", "x", HTTP_X_FORWARDED_FOR=f"10.0.{i}.1, 203.0.113.9",
                     secure=True)
    response = _admin_login(client, "victim", ADMIN_PASSWORD,
                            HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.9", secure=True)
    assert not _logged_in(response)
    assert "Too many failed sign-ins" in response.content.decode()
    # Another client address is not locked out by it.
    response = _admin_login(client, "victim", ADMIN_PASSWORD,
                            HTTP_X_FORWARDED_FOR="198.51.100.7", secure=True)
    assert response.status_code == 302


@pytest.mark.parametrize(("name", "value"), [
    ("VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ACCOUNT", 0),
    ("VEDOMAINS_ADMIN_LOGIN_FAILURES_PER_ADDRESS", -1),
    ("VEDOMAINS_ADMIN_LOGIN_LOCKOUT_SECONDS", 0),
])
def test_admin_login_throttle_settings_are_checked(settings: Any, name: str,
                                                   value: int) -> None:
    from domains.system_checks import settings_check

    setattr(settings, name, value)
    assert [m for m in settings_check(None) if name in m.msg]
