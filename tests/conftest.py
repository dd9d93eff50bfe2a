"""Shared fixtures. Integration fixtures (moto, DNS, Redis, worker) live in tests/infra.py."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from domains import queueing
from domains.models import Role
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.notify_helpers import TaskRecorder

pytest_plugins = ["tests.infra", "tests.bench_background"]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Factories hash a password per user; PBKDF2 makes that ~0.3 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _isolated_cache(settings):
    # Throttle counters live in the cache; a fresh one per test keeps tests independent.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _default_strategy_unless_per_domain(request, settings):
    # Tests run what production runs: the default strategy (saas-tenant). A test that
    # describes the per-domain strategy (an ACM certificate the engine requests, its quotas,
    # a template clone) says so with `@pytest.mark.per_domain` (a module: `pytestmark`).
    per_domain = request.node.get_closest_marker("per_domain") is not None
    settings.VEDOMAINS_CDN_STRATEGY = "distribution-per-domain" if per_domain else "saas-tenant"


@pytest.fixture(autouse=True)
def _no_aws_rate_limits(settings):
    # The fleet-wide buckets live in Redis and outlast a test: one test's calls would slow
    # the next. Tests of the limiter set their own limits.
    settings.VEDOMAINS_AWS_RATE_LIMITS = {}


@pytest.fixture(autouse=True)
def _no_certificate_budget(settings):
    # Most tests request more certificates than a day's budget; the budget's own tests
    # (tests/test_security_adversarial.py) set the limits they exercise.
    settings.VEDOMAINS_CERT_BUDGET_WORKSPACE_DAILY = 0
    settings.VEDOMAINS_CERT_BUDGET_PLATFORM_DAILY = 0


@pytest.fixture
def queued_tasks(monkeypatch: pytest.MonkeyPatch) -> TaskRecorder:
    """Tasks queued after commit, recorded instead of sent (`.calls`, `.names()`), and run
    in-process on demand (`.run(...)`): for tests that drive the services without a worker."""
    recorder = TaskRecorder()
    monkeypatch.setattr(queueing, "task_send", recorder)
    return recorder


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(slug="acme", plan="pro")


@pytest.fixture
def owner(workspace):
    return MembershipFactory(workspace=workspace, role=Role.OWNER).user


@pytest.fixture
def api(owner) -> APIClient:
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.fixture
def stubbed_acm(monkeypatch):
    """ACM through botocore's Stubber (checked against the real ACM API model), for the
    states moto cannot produce. Tests using it are named test_stubbed_…."""
    import boto3
    from botocore.stub import Stubber

    from domains.integrations import aws

    client = boto3.client("acm", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    monkeypatch.setattr(aws, "client", lambda service, region=None: client)
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True, is_superuser=True)
