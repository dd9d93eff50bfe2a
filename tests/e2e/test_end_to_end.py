"""A domain from request to edge, through the whole local stack, over HTTP only.

Starts `python -m localdev.stack` exactly as `./dev run` does (real processes: gunicorn,
Celery worker and beat, moto, the DNS server, the edge proxy and the demo origin) on free
ports, against its own database: a fresh SQLite file, or a dedicated PostgreSQL database
when DATABASE_URL names PostgreSQL. Not pytest-django's test database: other processes
must see the data, and the stack migrates its database itself.

The only step that is not HTTP is creating the workspace member and its token, done with
`python -m localdev.bootstrap member` in a subprocess before the HTTP part. Activation is
driven by beat and the worker alone. The stack is stopped with SIGTERM at the end (pass
or fail), and the test checks that none of its processes is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from http.cookiejar import CookieJar
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
import redis

from localdev.moto_server import aws_env
from localdev.stack import DEFAULT_DEPLOY_SECONDS, PORTS
from tests.polling import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# Its own Redis: VEDOMAINS_E2E_BROKER_URL (`./dev test` sets it), or else a free port on
# which the stack starts a redis-server of its own, as `./dev run` does when none answers.
# Either way two test runs on one machine never share a Redis database.
BROKER_URL_FROM_ENV = os.environ.get("VEDOMAINS_E2E_BROKER_URL", "")
START_TIMEOUT = 150.0
ACTIVE_TIMEOUT = 90.0
STOP_TIMEOUT = 45.0
POSITIVE_TTL = 3
NEGATIVE_TTL = 1
# The stack's own default deploy delay: the e2e test sees "deploying" on what `./dev run` does.
DEPLOY_SECONDS = DEFAULT_DEPLOY_SECONDS


# --- helpers ----------------------------------------------------------------------------------


def _free_port(taken: set[int]) -> int:
    """A port free for TCP and UDP (the DNS server needs both) and not handed out yet."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in taken:
            taken.add(port)
            return port


def http(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if token:
        request.add_header("Authorization", f"Token {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if not request.has_header("Accept"):
        request.add_header("Accept", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            raw, status, resp_headers = response.read(), response.status, response.headers
    except urllib.error.HTTPError as exc:
        raw, status, resp_headers = exc.read(), exc.code, exc.headers
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text), resp_headers
    except ValueError:
        return status, text, resp_headers


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)  # every child leads its own process group
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- the stack --------------------------------------------------------------------------------


@pytest.fixture
def e2e_database(tmp_path: Path) -> Iterator[str]:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp_path / 'e2e.sqlite3'}"
        return
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = f"vedomains_e2e_{os.getpid()}"
    maintenance = urlunsplit(parts._replace(path="/postgres"))

    def run(statement: sql.Composed) -> None:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)

    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    run(drop)
    run(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        run(drop)


class RunningStack:
    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        summary: dict[str, Any],
        env: dict[str, str],
        output: Path,
    ) -> None:
        self.proc = proc
        self.summary = summary
        self.env = env
        self.output = output

    @property
    def urls(self) -> dict[str, str]:
        return dict(self.summary["urls"])

    def child_pids(self) -> list[int]:
        return [int(pid) for pid in self.summary["pids"].values()]

    def stop(self) -> float:
        """SIGTERM, as Ctrl-C or `kill` would; returns how long the stack took to stop."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill_everything()
                raise AssertionError(f"the stack did not stop within {STOP_TIMEOUT:.0f}s") from None
        return time.monotonic() - started

    def kill_everything(self) -> None:
        for pid in [self.proc.pid, *self.child_pids()]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)


def started_stack(env: dict[str, str], tmp_path: Path, *, broker_url: str,
                  running_env: dict[str, str] | None = None) -> Iterator[RunningStack]:
    """A stack fixture's body (`yield from` it): `python -m localdev.stack` with `env`, its
    state under tmp_path/var, yielded once up; stopped (or killed) afterwards, and the
    broker database emptied when it is the suite's own."""
    summary_file = tmp_path / "summary.json"
    output = tmp_path / "stack.out"
    with open(output, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "localdev.stack", "--var-dir", str(tmp_path / "var"),
             "--summary-file", str(summary_file)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
    running: RunningStack | None = None
    try:
        def started() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"the stack exited:\n{output.read_text()[-4000:]}")
            return summary_file.exists()

        wait_for(started, START_TIMEOUT, "the stack to start",
                 on_timeout=lambda: output.read_text()[-4000:])
        running = RunningStack(proc, json.loads(summary_file.read_text()),
                               running_env or env, output)
        yield running
    finally:
        if running is not None:
            try:
                running.stop()
            finally:
                running.kill_everything()  # no-op when the stop was clean
        elif proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if BROKER_URL_FROM_ENV:
            redis.Redis.from_url(broker_url).flushdb()


@pytest.fixture
def stack(tmp_path: Path, e2e_database: str) -> Iterator[RunningStack]:
    taken: set[int] = set()
    broker_url = BROKER_URL_FROM_ENV
    if broker_url:
        try:
            redis.Redis.from_url(broker_url, socket_connect_timeout=2).flushdb()
        except redis.RedisError as exc:
            pytest.fail(f"Redis is not reachable at {broker_url}: {exc}. `./dev test` starts it.")
    elif shutil.which("redis-server") is None:
        pytest.fail("set VEDOMAINS_E2E_BROKER_URL, or install redis-server for a private one")
    else:
        broker_url = f"redis://127.0.0.1:{_free_port(taken)}/0"
    env = dict(os.environ)
    env.update({var: str(_free_port(taken)) for _, var, _, _ in PORTS})
    env.update(
        {
            "DATABASE_URL": e2e_database,
            "CELERY_BROKER_URL": broker_url,
            "DJANGO_DEBUG": "true",
            "VEDOMAINS_LOCAL_ACM_WAIT": "1",
            "VEDOMAINS_DISPATCH_INTERVAL_SECONDS": "1",
            "VEDOMAINS_FAST_CHECK_SECONDS": "1",
            "VEDOMAINS_DNS_TIMEOUT_SECONDS": "1",
            # Short edge caches, so a removed domain 404s within seconds.
            "VEDOMAINS_EDGE_POSITIVE_TTL_SECONDS": str(POSITIVE_TTL),
            "VEDOMAINS_EDGE_NEGATIVE_TTL_SECONDS": str(NEGATIVE_TTL),
            # VEDOMAINS_LOCAL_DEPLOY_SECONDS left at the stack's default (a few seconds),
            # so the deploying step is observable as it is in `./dev run`.
            "VEDOMAINS_CDN_DEPLOY_CHECK_SECONDS": "1",
            "VEDOMAINS_CDN_CAPACITY_RETRY_SECONDS": "2",
        }
    )
    yield from started_stack(env, tmp_path, broker_url=broker_url)


# --- the test ---------------------------------------------------------------------------------


def test_domain_from_request_to_edge_and_back(stack: RunningStack) -> None:
    started = time.monotonic()
    urls = stack.urls
    api = urls["api"]
    hostname = f"gallery-{uuid.uuid4().hex[:8]}.e2e-example.com"

    # Set-up, outside HTTP: a workspace on a paid plan, its owner and an API token.
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "localdev.bootstrap",
            "member",
            "--workspace",
            "e2e",
            "--username",
            "e2e-owner",
        ],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    member = json.loads(made.stdout.splitlines()[-1])
    token = member["token"]

    # The pages a newcomer opens first answer, with their static files (no collectstatic).
    for path in ("/admin/login/", "/api/docs/", "/static/admin/css/base.css"):
        status, _, _ = http(
            "GET", urls["admin"].replace("/admin/", path), headers={"Accept": "text/html,*/*"}
        )
        assert status == 200, path

    # Register through the API; the answer says which DNS records to create: on the default
    # path (CloudFront SaaS Manager, managed certificate) exactly ONE, the routing CNAME.
    status, domain, _ = http(
        "POST", api, token=token, body={"hostname": hostname, "workspace": "e2e"}
    )
    assert status == 201, domain
    assert domain["status"] == "pending_validation"
    assert domain["dns_records"] == [
        {"purpose": "routing", "type": "CNAME", "name": hostname, "value": "domain.ve.ai"}
    ]
    detail = f"{api}{hostname}/"

    # DNS first: the first check sees no CNAME and creates nothing at CloudFront (no tenant,
    # no certificate). Still one record.
    def first_check() -> dict[str, Any] | None:
        _, body, _ = http("GET", detail, token=token)
        return body if "cdn" in (body.get("checks") or {}) else None

    pending = wait_for(first_check, 30, "the first check")
    assert pending["checks"]["cdn"]["detail"].startswith("Nothing is created at CloudFront")
    assert pending["certificate_status"] == "" and pending["status"] == "pending_validation"
    assert len(pending["dns_records"]) == 1, pending["dns_records"]

    # "Create" that one record at the customer's DNS provider: the local DNS control API.
    cname_set = _create_records(urls, pending["dns_records"])

    # CloudFront validates the certificate over HTTP (through the edge proxy), then deploys:
    # the API shows "deploying" and when it looks again; active only once Deployed.
    seen_statuses: list[str] = []

    def active() -> dict[str, Any] | None:
        _, body, _ = http("GET", detail, token=token)
        assert body["status"] in ("pending_validation", "deploying", "active"), body
        if not seen_statuses or seen_statuses[-1] != body["status"]:
            seen_statuses.append(body["status"])
        if body["status"] == "deploying":
            assert body["next_check_at"] and body["certificate_status"] == "issued", body
        return body if body["status"] == "active" else None

    activated = wait_for(active, ACTIVE_TIMEOUT, "the domain to turn active", step=0.25)
    assert seen_statuses[-2:] == ["deploying", "active"], seen_statuses
    assert activated["checks"]["dns"]["ok"] and activated["checks"]["certificate"]["ok"]
    activated_after = time.monotonic() - started
    cname_to_active = time.monotonic() - cname_set

    # The edge projection: one active item in DynamoDB (moto), tagged with the workspace.
    ddb = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=urls["moto"],
        aws_access_key_id=aws_env(urls["moto"])["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws_env(urls["moto"])["AWS_SECRET_ACCESS_KEY"],
    )

    def edge_item(status: str) -> dict[str, Any] | None:
        item = ddb.get_item(
            TableName="domain-workspace-mappings", Key={"domain": {"S": hostname}}
        ).get("Item")
        return item if item and item["status"]["S"] == status else None

    item = wait_for(lambda: edge_item("active"), 20, "the active DynamoDB item", step=0.5)
    assert item["workspaceId"]["S"] == "e2e"
    assert int(item["version"]["N"]) >= 1

    # Through the edge: the demo origin sees the workspace, never a viewer-sent one.
    edge = urls["edge"]

    def through_edge() -> dict[str, Any] | None:
        status, body, _ = http(
            "GET",
            f"{edge}gallery/photos?format=json",
            headers={"Host": hostname, "workspace-id": "someone-else"},
        )
        return body if status == 200 else None

    seen = wait_for(through_edge, 2 * NEGATIVE_TTL + 10, "the edge to route the domain", step=0.5)
    assert seen["workspace"] == "e2e"
    assert seen["host"] == hostname
    assert seen["path"] == "/gallery/photos"

    # A spoofed workspace-id on a host nobody registered: 404 at the edge, origin untouched.
    marker = f"/spoof-{uuid.uuid4().hex}"
    status, body, _ = http(
        "GET",
        f"{edge}{marker.lstrip('/')}",
        headers={"Host": "unknown.e2e-example.com", "workspace-id": "e2e"},
    )
    assert status == 404, body
    _, log, _ = http("GET", f"{urls['origin']}__origin/requests")
    assert marker not in [r["path"] for r in log["requests"]], "the origin saw a refused request"

    _quota_path(stack, token)
    _prevalidation_path(stack, token)

    # Remove: the API answers at once; the edge follows once the item is tombstoned and the
    # edge's positive cache entry expires.
    status, removed, _ = http("DELETE", detail, token=token)
    assert status == 200 and removed["status"] == "removed", removed
    wait_for(lambda: edge_item("inactive"), 30, "the DynamoDB tombstone", step=0.5)

    def edge_404() -> bool:
        status, _, _ = http("GET", f"{edge}?format=json", headers={"Host": hostname})
        return status == 404

    wait_for(edge_404, POSITIVE_TTL + 15, "the edge to answer 404", step=0.5)

    # `./dev manage` in another shell finds this stack: the file names its moto,
    # its DNS server and its database, and goes when the stack stops.
    stack_file = Path(stack.summary["log_dir"]).parent / "stack.json"
    described = json.loads(stack_file.read_text())
    assert described["env"]["VEDOMAINS_AWS_ENDPOINT_URL"] == urls["moto"]
    assert described["env"]["VEDOMAINS_DNS_NAMESERVERS"] == urls["dns"]
    assert described["env"]["DATABASE_URL"] == stack.env["DATABASE_URL"]
    assert stack_file.stat().st_mode & 0o077 == 0
    # moto's own log is where the README says.
    assert b"POST / HTTP" in (Path(stack.summary["log_dir"]) / "moto.log").read_bytes()

    # Everything stops on SIGTERM, and nothing the stack started is left running.
    pids = stack.child_pids()
    stop_seconds = stack.stop()
    assert not stack_file.exists()
    leftovers = [pid for pid in pids if _alive(pid)]
    assert not leftovers, f"processes left behind: {leftovers}"
    assert stack.proc.returncode == 0, stack.output.read_text()[-3000:]
    total = time.monotonic() - started
    print(
        f"\ne2e: active after {activated_after:.1f}s (CNAME set -> active "
        f"{cname_to_active:.1f}s, deploy delay {DEPLOY_SECONDS}s), test body {total:.1f}s, "
        f"stack stopped in {stop_seconds:.1f}s"
    )


def _create_records(urls: dict[str, str], records: list[dict[str, str]]) -> float:
    for record in records:
        status, body, _ = http("PUT", f"{urls['dns_control']}/records", body={
            "name": record["name"], "type": record["type"], "value": record["value"],
            "ttl": 60})
        assert status == 200, body
    return time.monotonic()


def _emulator(urls: dict[str, str], **changes: Any) -> None:
    status, body, _ = http("POST", f"{urls['moto']}/_localdev/cloudfront/config", body=changes)
    assert status == 200, body


def _register(urls: dict[str, str], token: str, hostname: str, **extra: Any) -> dict[str, Any]:
    status, body, _ = http("POST", urls["api"], token=token,
                           body={"hostname": hostname, "workspace": "e2e", **extra})
    assert status == 201, body
    return dict(body)


def _status(urls: dict[str, str], token: str, hostname: str) -> dict[str, Any]:
    _, body, _ = http("GET", f"{urls['api']}{hostname}/", token=token)
    return dict(body)


def admin_page(stack: RunningStack, path: str) -> str:
    """An admin page's HTML, logged in as the stack's admin with the banner's password."""
    admin = stack.summary["admin"]
    assert admin.get("password"), admin
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login = stack.urls["admin"] + "login/"
    page = opener.open(login, timeout=15).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, page[:500]
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1),
                                   "username": admin["username"],
                                   "password": admin["password"], "next": "/admin/"}).encode()
    opener.open(urllib.request.Request(login, data=form, headers={"Referer": login}),
                timeout=15).read()
    return opener.open(stack.urls["admin"].rstrip("/") + path, timeout=15).read().decode()


def _admin_dashboard(stack: RunningStack) -> str:
    """The staff dashboard's HTML."""
    return admin_page(stack, "/domains/dashboard/")


def _quota_path(stack: RunningStack, token: str) -> None:
    """Tenant quota 2 (one is used): the third domain waits, staff see it, a raise lets it in."""
    urls = stack.urls
    _emulator(urls, limits={"tenants": 2})
    names = [f"quota-{i}-{uuid.uuid4().hex[:6]}.e2e-example.com" for i in range(2)]
    for name in names:
        _create_records(urls, _register(urls, token, name)["dns_records"])

    # Both are checked by the same worker in an order nobody chose: whichever takes the
    # last tenant goes live, the other waits for capacity.
    def one_active() -> tuple[str, str] | None:
        for name, other in (names, names[::-1]):
            if _status(urls, token, name)["status"] == "active":
                return name, other
        return None

    second, third = wait_for(one_active, ACTIVE_TIMEOUT, "one of the two domains active")

    def waiting_for_capacity() -> dict[str, Any] | None:
        body = _status(urls, token, third)
        return body if (body["checks"].get("cdn") or {}).get("capacity") else None

    waiting = wait_for(waiting_for_capacity, 30, "the third domain to wait for capacity")
    assert waiting["status"] == "pending_validation", waiting
    assert "nothing to do on your side" in waiting["last_error"]
    dashboard = _admin_dashboard(stack)
    assert "Platform capacity" in dashboard and "EntityLimitExceeded" in dashboard

    _emulator(urls, limits={"tenants": 10000})
    wait_for(lambda: _status(urls, token, third)["status"] == "active", ACTIVE_TIMEOUT,
             "the third domain active once the quota is raised")
    # Within the plan's limit again for the next path (removal frees the slot at once).
    for name in names:
        status, body, _ = http("DELETE", f"{urls['api']}{name}/", token=token)
        assert status == 200 and body["status"] == "removed", body


def _prevalidation_path(stack: RunningStack, token: str) -> None:
    """A live site elsewhere: the certificate is issued before the CNAME moves."""
    urls = stack.urls
    hostname = f"live-{uuid.uuid4().hex[:6]}.e2e-example.com"
    # Whether CloudFront makes a self-hosted tenant before DNS moves is unverified: this
    # path is the answer "yes" (the emulator refuses by default; tests/test_cdn_tenant.py
    # pins the "no" answer, where the domain waits for the CNAME).
    _emulator(urls, prevalidated_before_dns=True)
    registered = _register(urls, token, hostname, prevalidation="self-hosted")
    assert [r["purpose"] for r in registered["dns_records"]] == ["routing"]

    def validation() -> list[dict[str, str]] | None:
        return _status(urls, token, hostname)["http_validation"] or None

    token_url = wait_for(validation, 30, "the self-hosted validation URL")[0]

    class CurrentSite(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = token_url["redirect_from"].endswith(self.path)
            self.send_response(302 if ok else 404)
            if ok:
                self.send_header("Location", token_url["redirect_to"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.2", 0), CurrentSite)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        _emulator(urls, self_hosted_port=site.server_address[1])
        # Their site still lives elsewhere: A record to the current server.
        _create_records(urls, [{"name": hostname, "type": "A", "value": "127.0.0.2"}])
        issued = wait_for(
            lambda: (lambda b: b if b["certificate_status"] == "issued" else None)(
                _status(urls, token, hostname)), 30,
            "the certificate issued before the CNAME moves")
        assert issued["status"] == "pending_validation"
        # Now they move the CNAME: no TLS gap, the certificate is already there.
        status, body, _ = http("DELETE", f"{urls['dns_control']}/records?name={hostname}")
        assert status == 200, body
        _create_records(urls, [{"name": hostname, "type": "CNAME", "value": "domain.ve.ai"}])
        wait_for(lambda: _status(urls, token, hostname)["status"] == "active", ACTIVE_TIMEOUT,
                 "the pre-validated domain active")
    finally:
        site.shutdown()
        site.server_close()
