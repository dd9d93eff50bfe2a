"""Operator metrics: the numbers on /metrics move when the events happen.

Real events only: a check against moto and the loopback DNS server, AWS calls answered by
moto (or by a loopback server that throttles), a webhook delivered to a real receiver,
messages sitting in the real Redis broker.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import redis
from django.test import Client
from django.utils import timezone

from domains import queueing
from domains.integrations import acm, aws
from domains.integrations.errors import IntegrationError
from domains.models import CustomDomain, DomainStatus
from domains.task_names import TaskName
from edge import sync as edge_sync
from edge import tasks as edge_tasks
from notifications import tasks as notifications_tasks
from notifications.models import WebhookDelivery
from tests.factories import CustomDomainFactory, WebhookEndpointFactory, WorkspaceFactory
from tests.notify_helpers import webhook_receiver
from tests.ops_helpers import METRICS_TOKEN, aws_answering, closed_port, scrape
from tests.polling import wait_for
from vedomains_site.observability import counters, emf, queues
from workflow import certificates, lifecycle, services
from workflow import tasks as workflow_tasks

HOST = "metrics.client.com"


@pytest.fixture(autouse=True)
def _metrics_on(settings: Any) -> None:
    settings.VEDOMAINS_METRICS_TOKEN = METRICS_TOKEN
    settings.VEDOMAINS_METRICS_REDIS_URL = ""
    counters.reset_state()


# --- protection -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_endpoint_is_off_without_a_token_and_refuses_a_wrong_one(settings: Any) -> None:
    client = Client()
    settings.VEDOMAINS_METRICS_TOKEN = ""
    off = client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    assert off.status_code == 404 and off.json()["error"]["code"] == "not_found"

    settings.VEDOMAINS_METRICS_TOKEN = METRICS_TOKEN
    for header in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"},
                   {"HTTP_AUTHORIZATION": f"Token {METRICS_TOKEN}"}):
        refused = client.get("/metrics", **header)
        assert refused.status_code == 401, header
        assert refused.json()["error"]["code"] == "not_authenticated"
        assert refused["WWW-Authenticate"].startswith("Bearer")
    # A Prometheus scrape addresses the task by IP: no ALLOWED_HOSTS entry is needed.
    ok = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}",
                    HTTP_HOST="10.0.12.34:8000")
    assert ok.status_code == 200
    assert ok["Content-Type"].startswith("text/plain; version=0.0.4")


# --- a real check ---------------------------------------------------------------------------


@pytest.mark.per_domain
@pytest.mark.integration
@pytest.mark.django_db
def test_a_real_check_moves_domains_checks_durations_aws_calls_and_edge_lag(
    aws_stack: dict[str, str], dns_server: Any, clean_redis: str,
) -> None:
    before = scrape()
    workspace = WorkspaceFactory(plan="pro")
    domain = services.domain_register(workspace=workspace, hostname=HOST, by=None)
    after_register = scrape()
    assert (after_register.get_value("vedomains_domains", status="pending_validation")
            == before.get_value("vedomains_domains", status="pending_validation") + 1)

    assert certificates.domain_request_certificate(domain_id=domain.pk) == "requested"
    dns_server.store.set_record(HOST, "CNAME", "domain.ve.ai")
    domain.refresh_from_db()
    wait_for(lambda: acm.describe_certificate(domain.certificate_arn).status == "ISSUED", 15,
             "moto to issue the certificate")
    mid = scrape()
    assert mid.get_value("vedomains_aws_calls_total", service="acm",
                         operation="RequestCertificate") == 1
    assert mid.get_value("vedomains_aws_calls_total", service="acm",
                         operation="DescribeCertificate") >= 2

    # The check runs as the worker runs it: the task, through Celery's tracer (signals).
    CustomDomain.objects.filter(pk=domain.pk).update(next_check_at=timezone.now())
    result = workflow_tasks.domains_check_batch.apply(args=[[domain.pk]])
    assert result.get() == 1
    domain.refresh_from_db()
    assert domain.status == DomainStatus.ACTIVE

    after = scrape()
    assert after.get_value("vedomains_domain_checks_total") == (
        mid.get_value("vedomains_domain_checks_total") + 1)
    assert after.get_value("vedomains_domains", status="active") == (
        mid.get_value("vedomains_domains", status="active") + 1)
    assert after.get_value("vedomains_domains", status="pending_validation") == (
        mid.get_value("vedomains_domains", status="pending_validation") - 1)
    batch = {"task": TaskName.DOMAINS_CHECK_BATCH}
    assert after.get_value("vedomains_task_duration_seconds_count", **batch) == 1
    assert after.get_value("vedomains_task_duration_seconds_sum", **batch) > 0
    assert after.get_value("vedomains_task_duration_seconds_bucket", le="+Inf", **batch) == 1
    assert after.get_value("vedomains_tasks_total", state="SUCCESS", **batch) == 1
    # Attaching created a distribution in moto: CloudFront calls moved too.
    assert after.total("vedomains_aws_calls_total", service="cloudfront") > mid.total(
        "vedomains_aws_calls_total", service="cloudfront")

    # Activation queued an edge push that has not run: the edge is behind, then caught up.
    assert after.get_value("vedomains_edge_unsynced_domains") >= 1
    assert after.get_value("vedomains_edge_sync_lag_seconds") >= 0
    assert edge_sync.edge_sync_hostname(hostname=HOST) == "written"
    synced = scrape()
    assert synced.get_value("vedomains_edge_unsynced_domains") == 0
    assert synced.get_value("vedomains_edge_sync_lag_seconds") == 0
    assert synced.get_value("vedomains_aws_calls_total", service="dynamodb",
                            operation="PutItem") >= 1
    assert synced.get_value("vedomains_metrics_source_up", source="database") == 1


# --- AWS errors and throttles ---------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.django_db
def test_aws_errors_are_counted_by_operation_and_code(
    aws_stack: dict[str, str], clean_redis: str,
) -> None:
    before = scrape()
    with pytest.raises(IntegrationError):
        try:
            aws.client("acm").describe_certificate(
                CertificateArn="arn:aws:acm:us-east-1:123456789012:certificate/"
                               "00000000-0000-0000-0000-000000000000")
        except Exception as exc:
            raise aws.classify(exc, "describe") from exc
    after = scrape()
    labels = {"service": "acm", "operation": "DescribeCertificate"}
    assert after.get_value("vedomains_aws_calls_total", **labels) == (
        before.get_value("vedomains_aws_calls_total", **labels) + 1)
    assert after.get_value("vedomains_aws_errors_total", code="ResourceNotFoundException",
                           **labels) == 1
    assert after.total("vedomains_aws_throttles_total") == before.total(
        "vedomains_aws_throttles_total")


@pytest.mark.integration
@pytest.mark.django_db
def test_throttles_are_counted_per_attempt_apart_from_errors(
    settings: Any, clean_redis: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An endpoint that always throttles: botocore retries, then the call fails once."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                       "message": "Rate of requests exceeds the allowed throughput."}).encode()
    with aws_answering(400, body, "application/x-amz-json-1.0") as server:
        settings.VEDOMAINS_AWS_ENDPOINT_URL = server["url"]
        aws.reset_clients()
        try:
            with pytest.raises(Exception) as raised:
                aws.client("dynamodb").describe_table(TableName="anything")
        finally:
            aws.reset_clients()
    assert aws.error_code(raised.value) == "ThrottlingException"
    labels = {"service": "dynamodb", "operation": "DescribeTable"}
    found = scrape()
    # retries={"max_attempts": 3} in aws.py: the first attempt and 3 retries.
    assert server["requests"] == 4
    assert found.get_value("vedomains_aws_throttles_total", **labels) == server["requests"]
    assert found.get_value("vedomains_aws_calls_total", **labels) == 1
    assert found.get_value("vedomains_aws_errors_total", code="ThrottlingException",
                           **labels) == 1


@pytest.mark.django_db
def test_an_aws_endpoint_that_does_not_answer_counts_a_network_error(
    settings: Any, clean_redis: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings.VEDOMAINS_AWS_ENDPOINT_URL = f"http://127.0.0.1:{closed_port()}"
    settings.VEDOMAINS_AWS_CONNECT_TIMEOUT_SECONDS = 0.5
    aws.reset_clients()
    try:
        with pytest.raises(Exception):  # noqa: B017 - botocore's EndpointConnectionError
            aws.client("dynamodb").describe_table(TableName="anything")
    finally:
        aws.reset_clients()
    labels = {"service": "dynamodb", "operation": "DescribeTable"}
    found = scrape()
    assert found.get_value("vedomains_aws_calls_total", **labels) == 1
    assert found.get_value("vedomains_aws_errors_total", code="network", **labels) == 1


# --- webhooks -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_webhook_deliveries_and_failures_move(
    clean_redis: str, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queueing, "task_send", lambda *a, **k: None)  # the test runs them
    with webhook_receiver() as receiver:
        WebhookEndpointFactory(url=receiver.url)
        before = scrape()
        for to in (DomainStatus.ACTIVE, DomainStatus.MISCONFIGURED):
            domain = CustomDomainFactory()
            with django_capture_on_commit_callbacks(execute=True):
                assert lifecycle.domain_transition(domain=domain, to=to,
                                                   allowed_from=[domain.status], source="test")
        first, second = WebhookDelivery.objects.order_by("pk")
        assert notifications_tasks.webhook_deliver.apply(args=[first.pk]).get() == "delivered"
        receiver.default = 500
        assert notifications_tasks.webhook_deliver.apply(args=[second.pk]).get() == "retry"
    after = scrape()
    assert after.get_value("vedomains_webhook_attempts_total", outcome="delivered") == (
        before.get_value("vedomains_webhook_attempts_total", outcome="delivered") + 1)
    assert after.get_value("vedomains_webhook_attempts_total", outcome="retry") == (
        before.get_value("vedomains_webhook_attempts_total", outcome="retry") + 1)
    assert after.get_value("vedomains_webhook_deliveries", status="delivered") == (
        before.get_value("vedomains_webhook_deliveries", status="delivered") + 1)
    assert after.get_value("vedomains_webhook_deliveries", status="pending") == 1


# --- queues ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_queue_depth_per_queue_from_the_broker_and_as_emf(clean_redis: str) -> None:
    assert set(scrape().total("vedomains_queue_depth", queue=q) for q in queues.names()) == {0}
    for _ in range(3):
        workflow_tasks.domains_check_batch.apply_async(args=[[1]])
    notifications_tasks.webhook_deliver.apply_async(args=[1])
    edge_tasks.edge_sync_hostname.apply_async(args=["x.client.com"])
    found = scrape()
    assert {q: found.get_value("vedomains_queue_depth", queue=q) for q in queues.names()} == {
        "checks": 3, "notifications": 1, "edge": 1}

    out = io.StringIO()
    emf.publish_once(out)
    documents = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {d["Queue"]: d["QueueDepth"] for d in documents} == {
        "checks": 3, "notifications": 1, "edge": 1}
    directive = documents[0]["_aws"]["CloudWatchMetrics"][0]
    assert directive == {"Namespace": "vedomains", "Dimensions": [["Queue"]],
                         "Metrics": [{"Name": "QueueDepth", "Unit": "Count"}]}
    assert isinstance(documents[0]["_aws"]["Timestamp"], int)


def test_queue_depth_reads_the_queues_under_the_broker_key_prefix(clean_redis: str,
                                                                   settings: Any) -> None:
    """A stack that shares its Redis (./dev run) keeps its queues under a key prefix."""
    client = redis.Redis.from_url(clean_redis)
    client.rpush("vedomains-abc:checks", "m1", "m2")
    client.rpush("checks", "another stack's")
    settings.CELERY_BROKER_KEY_PREFIX = "vedomains-abc:"
    assert queues.depths(clean_redis)["checks"] == 2
    settings.CELERY_BROKER_KEY_PREFIX = ""
    assert queues.depths(clean_redis)["checks"] == 1


@pytest.mark.django_db
def test_a_source_that_is_down_is_reported_and_the_rest_still_answers(settings: Any) -> None:
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    counters.reset_state()
    found = scrape()
    assert found.get_value("vedomains_metrics_source_up", source="broker") == 0
    assert found.get_value("vedomains_metrics_source_up", source="counters") == 0
    assert found.get_value("vedomains_metrics_source_up", source="database") == 1
    assert ("vedomains_domains", frozenset({("status", "active")})) in found
