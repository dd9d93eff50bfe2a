"""Shared fixtures. Integration fixtures (moto, DNS, Redis, worker) live in tests/infra.py."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from domains.models import Role
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory

pytest_plugins = ["tests.infra"]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):  # type: ignore[no-untyped-def]
    # Factories hash a password per user; PBKDF2 makes that ~0.3 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _isolated_cache(settings):  # type: ignore[no-untyped-def]
    # Throttle counters live in the cache; a fresh one per test keeps tests independent.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def workspace(db):  # type: ignore[no-untyped-def]
    return WorkspaceFactory(slug="acme", plan="pro")


@pytest.fixture
def owner(workspace):  # type: ignore[no-untyped-def]
    return MembershipFactory(workspace=workspace, role=Role.OWNER).user


@pytest.fixture
def api(owner) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.fixture
def staff_user(db):  # type: ignore[no-untyped-def]
    return UserFactory(is_staff=True, is_superuser=True)
