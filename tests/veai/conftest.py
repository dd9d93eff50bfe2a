"""Fixtures for the ve.ai integration tests: see tests/veai/helpers.py."""

from tests.veai.helpers import jwks, main_key, service_secret  # noqa: F401
