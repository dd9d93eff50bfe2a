"""Structured logs: JSON lines with request, task and domain context; no secrets."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from domains.models import CustomDomain, DomainStatus, Role
from domains.task_names import TaskName
from notifications.models import DeliveryStatus, WebhookDelivery
from tests.factories import (
    CustomDomainFactory,
    MembershipFactory,
    WebhookEndpointFactory,
    WorkspaceFactory,
)
from tests.infra import WorkerProcess
from tests.notify_helpers import webhook_receiver
from tests.ops_helpers import captured_json_logs
from tests.polling import wait_for
from vedomains_site.observability import context
from vedomains_site.observability.logs import REDACTED, redact
from workflow import lifecycle, tasks

ROOT = Path(__file__).resolve().parent.parent
DRF_TOKEN = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
WEBHOOK_SECRET = "whsec_Zm9vYmFyYmF6cXV4cXV1eC1ub3QtYS1yZWFsLXNlY3JldA"


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("raw", [
    f"Authorization: Token {DRF_TOKEN}",
    f"token={DRF_TOKEN}",
    f'{{"token": "{DRF_TOKEN}"}}',
    f"the key {DRF_TOKEN} leaked",
    f"signed with {WEBHOOK_SECRET}",
    f"secret: {WEBHOOK_SECRET}",
    "Bearer abc123def456ghi789",
    "postgres://vedomains:s3cr3t-pw@db.internal:5432/vedomains",
    "password=hunter2hunter2",
])
def test_redact_removes_tokens_secrets_and_url_passwords(raw: str) -> None:
    out = redact(raw)
    assert REDACTED in out
    for secret in (DRF_TOKEN, WEBHOOK_SECRET, "abc123def456ghi789", "s3cr3t-pw", "hunter2hunter2"):
        assert secret not in out


def test_redact_keeps_ordinary_lines_readable() -> None:
    for line in ("token expired for the session", "check of gallery.client.com: waiting",
                 "arn:aws:acm:us-east-1:123456789012:certificate/1f0c3c9e-75b1-4d7f"):
        assert redact(line) == line


def test_a_log_call_that_includes_a_secret_is_redacted_on_the_way_out() -> None:
    with captured_json_logs() as out:
        logging.getLogger("vedomains.test").warning("header was Token %s, secret %s",
                                                    DRF_TOKEN, WEBHOOK_SECRET)
        try:
            raise RuntimeError(f"receiver refused signature made with {WEBHOOK_SECRET}")
        except RuntimeError:
            logging.getLogger("vedomains.test").exception("delivery failed")
    text = out.getvalue()
    assert DRF_TOKEN not in text and WEBHOOK_SECRET not in text
    first, second = _lines(text)
    assert first["message"].startswith("header was Token [redacted]")
    assert "RuntimeError" in second["exc"] and WEBHOOK_SECRET not in second["exc"]


@pytest.mark.parametrize("message", [
    '{"password": "hunter2hunter2", "api_key": "hunter2hunter2"}',
    'password="hunter2hunter2" and more',
    "secret: hunter2hunter2\\ and a backslash",
])
def test_a_json_line_stays_json_and_redacted_whatever_the_quotes(message: str) -> None:
    with captured_json_logs() as out:
        logging.getLogger("vedomains.test").warning("%s", message)
    (event,) = _lines(out.getvalue())
    assert "hunter2hunter2" not in event["message"]
    assert REDACTED in event["message"]


@pytest.mark.django_db
def test_request_lines_carry_the_request_id_and_the_domain_hostname(owner: Any,
                                                                    workspace: Any) -> None:
    CustomDomainFactory(workspace=workspace, hostname="gallery.client.com")
    client = APIClient()
    client.force_authenticate(owner)
    with captured_json_logs() as out:
        given = client.get("/api/domains/gallery.client.com/",
                           HTTP_X_REQUEST_ID="req-from-the-alb-0001")
        made = client.get("/api/domains/gallery.client.com/",
                          HTTP_X_REQUEST_ID="bad id with spaces\nand a newline")
    assert given.status_code == made.status_code == 200
    assert given["X-Request-ID"] == "req-from-the-alb-0001"
    assert made["X-Request-ID"] != "bad id with spaces\nand a newline"
    assert len(made["X-Request-ID"]) == 32
    requests = [e for e in _lines(out.getvalue()) if e["logger"] == "vedomains.request"]
    assert [(e["request_id"], e["hostname"]) for e in requests] == [
        ("req-from-the-alb-0001", "gallery.client.com"),
        (made["X-Request-ID"], "gallery.client.com"),
    ]
    assert requests[0]["message"] == requests[0]["message"].splitlines()[0]
    assert "GET /api/domains/gallery.client.com/ 200" in requests[0]["message"]
    # Nothing leaks into whatever this thread does next.
    assert set(context.current().values()) == {None}


@pytest.mark.django_db
def test_task_lines_carry_the_task_id_and_the_domain_id() -> None:
    domain = CustomDomainFactory(status=DomainStatus.ACTIVE)
    with captured_json_logs() as out:
        result = tasks.domain_cleanup.apply(args=[domain.pk], task_id="task-0001")
    assert result.get() == "not_removed"
    events = [e for e in _lines(out.getvalue()) if e["task_id"] == "task-0001"]
    assert events, out.getvalue()
    assert {(e["task"], e["domain_id"]) for e in events} == {
        (TaskName.DOMAIN_CLEANUP, domain.pk)}
    assert set(context.current().values()) == {None}


@pytest.mark.parametrize(("debug", "fmt"), [("true", "plain"), ("false", "json")])
def test_plain_text_in_development_and_json_in_production(tmp_path: Path, debug: str,
                                                          fmt: str) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VEDOMAINS_LOG", "DJANGO_", "LOG_LEVEL"))}
    code = ("import django, logging; django.setup(); "
            "logging.getLogger('vedomains.probe').warning('probe line')")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**env, "DJANGO_SETTINGS_MODULE": "vedomains_site.settings", "PYTHONPATH": str(ROOT),
             "DJANGO_DEBUG": debug, "DJANGO_SECRET_KEY": "k" * 50,
             # DJANGO_DEBUG=false refuses a per-process cache; nothing connects.
             "CACHE_URL": "rediscache://127.0.0.1:6379/1"})
    assert out.returncode == 0, out.stderr
    (line,) = [ln for ln in out.stdout.splitlines() if "probe line" in ln]
    if fmt == "json":
        event = json.loads(line)
        assert event["message"] == "probe line" and event["level"] == "WARNING"
        assert {"request_id", "task_id", "domain_id", "hostname"} <= set(event)
    else:
        assert line.endswith("WARNING vedomains.probe probe line")


@pytest.mark.per_domain
@pytest.mark.integration
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_run_never_logs_the_api_token_or_the_webhook_secret(
    aws_stack: dict[str, str], dns_server: Any, clean_redis: str, tmp_path: Path,
) -> None:
    """API calls, a certificate request and a signed webhook delivery by a real worker, with
    every logger at DEBUG in the production (JSON) format: neither secret appears."""
    workspace = WorkspaceFactory(slug="logs", plan="pro")
    owner = MembershipFactory(workspace=workspace, role=Role.OWNER).user
    # The certificate is requested once the CNAME points at us.
    dns_server.store.set_record("logs.client.com", "CNAME", "domain.ve.ai")
    token = Token.objects.create(user=owner, key=DRF_TOKEN)
    with webhook_receiver() as receiver:
        endpoint = WebhookEndpointFactory(url=receiver.url)
        endpoint.secret = WEBHOOK_SECRET
        endpoint.save()
        worker = WorkerProcess(clean_redis, tmp_path / "worker.log", extra_env={
            "VEDOMAINS_LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG",
            # The receiver listens on loopback (the SSRF guard allows it explicitly).
            "VEDOMAINS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"})
        worker.start()
        try:
            client = APIClient()
            with captured_json_logs() as web_log:
                client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
                created = client.post("/api/domains/", {"hostname": "logs.client.com",
                                                        "workspace": "logs"}, format="json")
                assert created.status_code == 201, created.content
                # A token in a query string (a mistake a client could make) is not logged.
                assert client.get(f"/api/domains/?api_key={token.key}").status_code == 200
                client.credentials(HTTP_AUTHORIZATION=f"Token {token.key[:-1]}0")
                assert client.get("/api/domains/").status_code == 401
                domain = CustomDomain.objects.get(hostname="logs.client.com")
                # The first check (queued by the registration) requests the certificate.
                wait_for(lambda: CustomDomain.objects.filter(pk=domain.pk).exclude(
                             certificate_arn="").exists(), 60, "the certificate request",
                         on_timeout=lambda: worker.log_path.read_text()[-3000:])
                domain.refresh_from_db()
                with transaction.atomic():
                    assert lifecycle.domain_transition(domain=domain, to=DomainStatus.FAILED,
                                               allowed_from=[domain.status], source="test")
                wait_for(lambda: (
                    WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).exists()
                    and CustomDomain.objects.exclude(certificate_arn="")
                    .filter(pk=domain.pk).exists()), 60, "the webhook's delivery",
                    on_timeout=lambda: worker.log_path.read_text()[-3000:])
        finally:
            worker.stop()
    assert receiver.requests, "the worker never delivered the webhook"
    worker_log = worker.log_path.read_text()
    everything = worker_log + web_log.getvalue()
    assert DRF_TOKEN not in everything
    assert WEBHOOK_SECRET not in everything
    # The run was real and logged at DEBUG, in JSON, with task context.
    worker_events = _lines(worker_log)
    delivered = [e for e in worker_events if e["task"] == TaskName.WEBHOOK_DELIVER]
    assert delivered and all(e["task_id"] for e in delivered)
    assert any(e["task"] == TaskName.DOMAIN_REQUEST_CERTIFICATE
               and e["domain_id"] == domain.pk for e in worker_events)
    assert any(e["level"] == "DEBUG" for e in worker_events)

