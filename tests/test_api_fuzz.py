"""Schemathesis against the project's own OpenAPI schema, in-process through the WSGI app.

Every operation in `/api/schema/` is called with generated input, valid and invalid, by a
token-authenticated workspace owner. Checks (schemathesis' defaults): no 5xx, every status
code documented, bodies, headers and content types as documented, invalid input rejected,
undeclared methods answered 405, and a request without the token refused. Generated valid
cases are mixed with real hostnames and the caller's workspace, so the fuzzer reaches the
services behind the 403/404 answers and not only the validators.

Bounded here (`VEDOMAINS_FUZZ_EXAMPLES`, default 25 per operation); `bench/reliability.py`
runs this same module with a larger budget.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from domains.models import DomainStatus, Role
from tests.factories import CustomDomainFactory, MembershipFactory, WorkspaceFactory

# A test dependency (requirements-dev.txt), not a runtime one.
positive_data_acceptance = schemathesis.checks.positive_data_acceptance

pytestmark = pytest.mark.django_db

FUZZ_EXAMPLES = int(os.environ.get("VEDOMAINS_FUZZ_EXAMPLES", "25"))
WORKSPACE = "fuzz-ws"
# Records of the caller's workspace in every status: detail, verify and delete then reach
# each status's branch instead of answering 404 for random text.
KNOWN_HOSTS = [f"{status.replace('_', '-')}.fuzz-client.com" for status in DomainStatus.values]
# Held by another workspace: registering it must answer 409, reading it 404.
FOREIGN_HOST = "taken.other-client.com"
HOSTS = [*KNOWN_HOSTS, FOREIGN_HOST, "GALLERY.Active.fuzz-client.com.", "bücher.fuzz-client.com"]

# Tallies for the summary line (bench/reliability.py reads it from the output).
TALLY: dict[str, int] = {"requests": 0, "5xx": 0}

_django_app = get_wsgi_application()


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Django's WSGI app, minus the per-request database close.

    A real server closes old connections around each request; here that would close the
    test's transaction (Django's own test client avoids it the same way).
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = _django_app(environ, start_response)
        try:
            return list(response)
        finally:
            response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# Loaded at import through the WSGI app (the schema view touches no database). Not
# `schemathesis.pytest.from_fixture`: its lazy loader reads `Function._nodeid`, which
# pytest 9 removed.
schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    # The sync API's bulk endpoint takes NDJSON text; the fuzzer sends what it generated.
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else str(
        value).encode()


@schema.hook
def flatmap_case(context: Any, case: Any) -> Any:
    """Valid cases: also try real hostnames and the caller's workspace.

    Negative cases are left alone: replacing their (deliberately invalid) parts would make
    them valid while schemathesis still expects a rejection.
    """
    meta = getattr(case, "meta", None)
    if meta is not None and meta.generation.mode.is_negative:
        return st.just(case)
    label = st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True)
    hosts = st.sampled_from(HOSTS)

    def with_host(host: str) -> Any:
        params = dict(case.path_parameters or {})
        for key in ("hostname", "domain"):
            if key in params:
                params[key] = host
        case.path_parameters = params
        return case

    def with_body(body: dict[str, Any]) -> Any:
        case.body = {**case.body, **body}
        return case

    options = [st.just(case)]
    if set(case.path_parameters or {}) & {"hostname", "domain"}:
        options.append(hosts.map(with_host))
    if isinstance(case.body, dict) and "hostname" in case.body:
        options.append(st.builds(lambda h, lbl: with_body(
            {"hostname": f"{lbl}.{h}", "workspace": WORKSPACE}), hosts, label))
        options.append(hosts.map(lambda h: with_body({"hostname": h, "workspace": WORKSPACE})))
    if isinstance(case.body, dict) and "workspaceId" in case.body:
        options.append(label.map(lambda lbl: with_body(
            {"subdomain": lbl, "domain": "fuzz-client.com", "workspaceId": WORKSPACE})))
    return st.one_of(options)


_INVALID_QUERY = re.compile(r"Invalid component: parameters? ((?:`\w+`(?:, )?)+) in query")


@schema.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    # DRF's PageNumberPagination reads `page=` as page 1 and `page=last` as the last page,
    # and falls back to the default size for a `page_size` it cannot use (documented DRF
    # behaviour, pinned in tests/test_api_bad_input.py). Those are accepted on purpose;
    # every other accepted-invalid input fails the test.
    found = _INVALID_QUERY.search(str(getattr(failure, "message", "")))
    if found is None or response.status_code != 200:
        return True
    names = set(re.findall(r"`(\w+)`", found.group(1)))
    # What Django received (the last of repeated parameters), not what was generated.
    sent = parse_qs(urlsplit(response.request.url).query, keep_blank_values=True)
    page = (sent.get("page") or [""])[-1]
    lenient = names <= {"page", "page_size"} and ("page" not in names or page in ("", "last"))
    return not lenient


@pytest.fixture
def fuzz_token(db: Any, settings: Any, dns_server: Any, queued_tasks: Any) -> str:
    """An owner of an enterprise workspace with a record in every status; its API token."""
    # Not about rate limits (tests/test_abuse_limits.py is): every request reaches the view.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            k: "1000000/minute" for k in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        },
    }
    settings.VEDOMAINS_PLAN_LIMITS = {**settings.VEDOMAINS_PLAN_LIMITS, "enterprise": 100_000}
    # Queued work is not under test and needs no broker (the queued_tasks fixture records it).
    workspace = WorkspaceFactory(slug=WORKSPACE, plan="enterprise")
    owner = MembershipFactory(workspace=workspace, role=Role.OWNER).user
    for status, host in zip(DomainStatus.values, KNOWN_HOSTS, strict=True):
        CustomDomainFactory(workspace=workspace, hostname=host, status=status)
    CustomDomainFactory(hostname=FOREIGN_HOST, status=DomainStatus.ACTIVE)
    return Token.objects.create(user=owner).key


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    yield
    print(f"\nAPI fuzzing: {TALLY['requests']} requests, {TALLY['5xx']} 5xx")


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    # The database is per test, not per example, on purpose: state builds up across
    # examples (registrations, removals) as in a real session.
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
def test_api_conforms_to_its_schema(case: Any, fuzz_token: str) -> None:
    headers = {"Authorization": f"Token {fuzz_token}"}
    response = case.call(headers=headers)
    TALLY["requests"] += 1
    if response.status_code >= 500:
        TALLY["5xx"] += 1
    # positive_data_acceptance is off: the schema says "a string" for a hostname, and the
    # hostname rules (IDNA, public suffixes, label lengths) cannot be written in it, so a
    # schema-valid "0" is rightly a 400. tests/test_api_bad_input.py pins those answers.
    case.validate_response(response, headers=headers, excluded_checks=[positive_data_acceptance])
