"""Integration fixtures: real moto server, real DNS server, Redis, a real Celery worker.

Loaded as a pytest plugin from tests/conftest.py. Servers are started once per test session
on free loopback ports; each test gets them reset (moto state, DNS records and faults).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from domains.integrations import aws, edge_store
from edge_lambda.build import default_config
from localdev import bootstrap, saas_resources
from localdev.dns_server import LocalDNSServer
from localdev.edge_proxy import EdgeProxyServer
from localdev.moto_server import MotoHandle, aws_env, start_moto
from tests.polling import wait_for

ROOT = Path(__file__).resolve().parent.parent
# Certificates turn ISSUED this many seconds after they are requested (moto server mode).
ACM_WAIT_SECONDS = 1


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoHandle]:
    handle = start_moto(acm_validation_wait=ACM_WAIT_SECONDS)
    previous = {k: os.environ.get(k) for k in aws_env(handle.endpoint_url)}
    os.environ.update(aws_env(handle.endpoint_url))
    try:
        yield handle
    finally:
        handle.stop()
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def aws_stack(moto_server: MotoHandle, settings: Any) -> Iterator[dict[str, str]]:
    """A clean emulated AWS per test: the edge table and a template distribution exist.

    The per-domain strategy's resources (ACM certificates + a template to clone); the
    strategy itself is the test's (`@pytest.mark.per_domain`, tests/conftest.py).
    `saas_stack` gives the default SaaS Manager path.
    """
    moto_server.reset()
    settings.VEDOMAINS_AWS_ENDPOINT_URL = moto_server.endpoint_url
    aws.reset_clients()
    edge_store.create_table()
    template_id = bootstrap.create_template_distribution(origin_domain="origin.ve.test")
    settings.VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID = template_id
    yield {"endpoint_url": moto_server.endpoint_url, "template_id": template_id}
    aws.reset_clients()


# The routing endpoint's address: what "CloudFront's IPs" are in the emulator. Customers'
# other servers in tests live on other loopback addresses.
EDGE_IP = "127.0.0.1"


@pytest.fixture
def saas_stack(moto_server: MotoHandle, dns_server: LocalDNSServer, settings: Any
               ) -> Iterator[dict[str, Any]]:
    """The default path: a multi-tenant distribution and a connection group on the emulator.

    DNS: the CNAME target (domain.ve.ai) -> the connection group's routing endpoint -> EDGE_IP,
    as deploy/saas-manager.yaml sets it up in Route 53. The emulator validates managed
    certificates through this DNS server and the edge proxy started here.
    """
    moto_server.reset()
    settings.VEDOMAINS_AWS_ENDPOINT_URL = moto_server.endpoint_url
    settings.VEDOMAINS_CDN_STRATEGY = "saas-tenant"
    aws.reset_clients()
    edge_store.create_table()
    distribution_id = saas_resources.create_multi_tenant_distribution(
        origin_domain="origin.ve.test")
    group_id, endpoint = saas_resources.create_connection_group()
    settings.VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID = distribution_id
    settings.VEDOMAINS_CDN_CONNECTION_GROUP_ID = group_id
    dns_server.set_record(endpoint, "A", EDGE_IP)
    dns_server.set_record(settings.VEDOMAINS_CNAME_TARGET, "CNAME", endpoint)
    edge = _edge_proxy(moto_server)
    moto_server.saas_configure(dns_server=f"127.0.0.1:{dns_server.port}", edge_ips=[EDGE_IP],
                               edge_proxy=f"127.0.0.1:{edge.port}",
                               # Fast on purpose: most tests here are not about the
                               # deploying step (tests/test_dns_first.py and the e2e test,
                               # on the stack's default delay, are).
                               deploy_seconds=0, certificate_attach_seconds=0)
    try:
        yield {"endpoint_url": moto_server.endpoint_url, "distribution_id": distribution_id,
               "connection_group_id": group_id, "routing_endpoint": endpoint, "edge": edge}
    finally:
        edge.shutdown()
        edge.server_close()
        aws.reset_clients()


def _edge_proxy(moto_server: MotoHandle) -> EdgeProxyServer:
    """The local edge in a thread: it answers managed-certificate tokens as CloudFront does."""
    proxy = EdgeProxyServer(("127.0.0.1", 0), origin="http://127.0.0.1:9",
                            config=default_config(table_name=settings.VEDOMAINS_EDGE_TABLE))
    threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return proxy


@pytest.fixture(scope="session")
def dns_server_session() -> Iterator[LocalDNSServer]:
    server = LocalDNSServer(port=0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dns_server(dns_server_session: LocalDNSServer, settings: Any) -> Iterator[LocalDNSServer]:
    """The DNS server, empty and fault-free, with the app's resolver pointed at it."""
    dns_server_session.store.clear()
    dns_server_session.store.clear_faults()
    if not dns_server_session.running:
        dns_server_session.start()
    settings.VEDOMAINS_DNS_NAMESERVERS = [dns_server_session.nameserver]
    settings.VEDOMAINS_DNS_TIMEOUT_SECONDS = 1.0
    yield dns_server_session
    dns_server_session.store.clear()
    dns_server_session.store.clear_faults()


@pytest.fixture(scope="session")
def redis_url() -> str:
    from django.conf import settings

    url = settings.CELERY_BROKER_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {url}: {exc}. The test command starts it.")
    return url


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


def database_url_for_subprocess() -> str:
    """The test database, as a URL another process (worker, beat, web) can open."""
    from django.db import connection

    cfg = connection.settings_dict
    if cfg["ENGINE"].endswith("sqlite3"):
        name = cfg["NAME"]
        if not name or name == ":memory:" or "mode=memory" in str(name):
            pytest.fail("subprocess tests need a file SQLite test database")
        return f"sqlite:///{name}"
    user = cfg.get("USER") or ""
    password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return (
        f"postgres://{auth}{cfg.get('HOST') or '127.0.0.1'}:{cfg.get('PORT') or 5432}/{cfg['NAME']}"
    )


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child process that must see the same settings as the test."""
    from django.conf import settings

    template_id = settings.VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "vedomains_site.settings",
            "DJANGO_DEBUG": "true",
            "DATABASE_URL": database_url_for_subprocess(),
            "VEDOMAINS_AWS_ENDPOINT_URL": settings.VEDOMAINS_AWS_ENDPOINT_URL or "",
            "VEDOMAINS_DNS_NAMESERVERS": ",".join(settings.VEDOMAINS_DNS_NAMESERVERS),
            "VEDOMAINS_DNS_TIMEOUT_SECONDS": str(settings.VEDOMAINS_DNS_TIMEOUT_SECONDS),
            "VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID": template_id,
            "VEDOMAINS_CDN_STRATEGY": settings.VEDOMAINS_CDN_STRATEGY,
            "VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID":
                settings.VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID,
            "VEDOMAINS_CDN_CONNECTION_GROUP_ID": settings.VEDOMAINS_CDN_CONNECTION_GROUP_ID,
            # The test's AWS rate limits (none, unless the test sets some): without them a
            # worker paces its calls at production's limits, and bench/reliability.py's
            # 2,000-domain cycle waited on the limiter instead of measuring the engine.
            "VEDOMAINS_AWS_RATE_LIMITS": json.dumps(settings.VEDOMAINS_AWS_RATE_LIMITS),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


class WorkerProcess:
    """A real `celery worker` in its own process group, stopped (or killed) by the test."""

    def __init__(
        self,
        broker_url: str,
        log_path: Path,
        *,
        concurrency: int = 2,
        extra_env: dict[str, str] | None = None,
        beat: bool = False,
        queues: list[str] | None = None,
    ) -> None:
        self.queues = queues
        self.broker_url = broker_url
        self.log_path = log_path
        self.concurrency = concurrency
        self.extra_env = extra_env or {}
        self.beat = beat
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "vedomains_site",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={self.concurrency}",
            "--pool=prefork",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        if self.beat:
            cmd += ["--beat", "--schedule", str(self.log_path.with_suffix(".beat"))]
        if self.queues:
            cmd += ["-Q", ",".join(self.queues)]
        env = subprocess_env({"CELERY_BROKER_URL": self.broker_url, **self.extra_env})
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            return b"ready." in self.log_path.read_bytes()

        wait_for(ready, 30, "the worker to say ready",
                 on_timeout=lambda: self.log_path.read_text()[-3000:])
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup, no acks (a crash)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        if hasattr(self, "_log"):
            self._log.close()


@pytest.fixture
def celery_worker(
    clean_redis: str,
    tmp_path: Path,
    aws_stack: dict[str, str],
    dns_server: LocalDNSServer,
    settings: Any,
) -> Iterator[WorkerProcess]:
    """A real worker on Redis, seeing this test's database, moto and DNS server.

    Needs `transactional_db` in the test (data must be committed for another process).
    """
    worker = WorkerProcess(
        clean_redis, tmp_path / "worker.log",
        extra_env={"VEDOMAINS_CLEANUP_RETRY_SECONDS": "1",
                   # Webhook receivers in tests listen on loopback (the SSRF guard).
                   "VEDOMAINS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"},
    )
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
