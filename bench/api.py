"""API: register and status-poll under 50 concurrent clients against gunicorn, then the
domain list and the admin change list at 1,000 and at 100,000 domains.

The load generator is threads with keep-alive `http.client` connections (no extra
package): one thread per client, each waiting for its answer before the next request,
so "50 concurrent clients" means 50 requests in flight. It shares the 2 cores with
gunicorn, which lowers the absolute requests/s a little; every phase pays the same.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from bench.common import (
    BENCH_BROKER_URL,
    ROOT,
    WORK_DIR,
    BenchDatabase,
    Row,
    flush_redis,
    fmt_ratio,
    log,
    percentile,
    redis_available,
    timed,
    verdict,
)

CLIENTS: Final = 50
# High enough that nothing in the benchmark is ever throttled or refused for quota.
UNLIMITED_RATE: Final = "1000000/s"


@dataclass(frozen=True)
class ApiSizes:
    phase_seconds: float  # per slice; register and poll alternate twice each
    small: int
    big: int
    list_requests: int

    @classmethod
    def for_run(cls, quick: bool) -> ApiSizes:
        if quick:
            return cls(phase_seconds=3, small=200, big=2_000, list_requests=20)
        return cls(phase_seconds=10, small=1_000, big=100_000, list_requests=100)


@dataclass
class LoadStats:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    # A few answers per error status, to say why in the table's notes.
    error_samples: dict[int, list[str]] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 400)

    def merge(self, other: LoadStats) -> None:
        self.latencies += other.latencies
        for code, n in other.statuses.items():
            self.statuses[code] = self.statuses.get(code, 0) + n
        for code, bodies in other.error_samples.items():
            mine = self.error_samples.setdefault(code, [])
            mine += bodies[:3 - len(mine)]
        self.seconds += other.seconds

    def summary(self) -> dict[str, Any]:
        return {"requests": len(self.latencies), "seconds": self.seconds,
                "rps": len(self.latencies) / self.seconds if self.seconds else 0,
                "p50_ms": percentile(self.latencies, 50) * 1000,
                "p99_ms": percentile(self.latencies, 99) * 1000, "statuses": self.statuses,
                "error_samples": self.error_samples}


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(database: BenchDatabase) -> Iterator[int]:
    port = free_port()
    broker = BENCH_BROKER_URL if redis_available() else "memory://localhost/"
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database.url,
        "DJANGO_DEBUG": "true",
        "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": broker,
        "VEDOMAINS_PLAN_LIMITS": json.dumps({"enterprise": 10_000_000}),
        "VEDOMAINS_ACM_MAX_PENDING": "100000000",
        "VEDOMAINS_ACM_MAX_PENDING_PER_WORKSPACE": "0",  # 0 = no per-workspace cap
        "VEDOMAINS_THROTTLE_REGISTER_USER": UNLIMITED_RATE,
        "VEDOMAINS_THROTTLE_REGISTER_WORKSPACE": UNLIMITED_RATE,
        "VEDOMAINS_THROTTLE_VERIFY_USER": UNLIMITED_RATE,
        "VEDOMAINS_THROTTLE_VERIFY_WORKSPACE": UNLIMITED_RATE,
    })
    log_path = WORK_DIR / "gunicorn.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "vedomains_site.wsgi", "-w", "2", "--threads",
             "4", "-b", f"127.0.0.1:{port}", "--timeout", "120"],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {log_path.read_text()[-2000:]}")
            try:
                status, _ = request(port, "GET", "/api/domains/")
                if status == 401:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer within 60 s")
            time.sleep(0.2)
        log(f"api: gunicorn on :{port} (broker {broker})")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if broker == BENCH_BROKER_URL:
            flush_redis()  # the domain_request_certificate tasks nobody consumed


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None,
            conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if own:
            conn.close()


# --------------------------------------------------------------------------- load


Request = tuple[str, str, bytes | None, str]  # method, path, body, tag for on_success


def load(port: int, seconds: float, clients: list[dict[str, Any]],
         next_request: Callable[[dict[str, Any], int], Request],
         on_success: Callable[[dict[str, Any], str], None] | None = None) -> LoadStats:
    """Each client loops for `seconds`: build a request, send it, wait for the answer."""
    stop_at = time.perf_counter() + seconds
    results = [LoadStats() for _ in clients]
    start_gate = threading.Barrier(len(clients) + 1)

    def worker(index: int) -> None:
        client = clients[index]
        stats = results[index]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Token {client['token']}",
                   "Content-Type": "application/json"}
        start_gate.wait()
        n = 0
        while time.perf_counter() < stop_at:
            method, path, body, tag = next_request(client, n)
            n += 1
            t0 = time.perf_counter()
            try:
                status, answer = request(port, method, path, body, headers, conn)
            except (OSError, http.client.HTTPException) as exc:
                status, answer = 599, repr(exc).encode()
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            stats.latencies.append(time.perf_counter() - t0)
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
            if status < 400:
                if on_success is not None:
                    on_success(client, tag)
            elif len(stats.error_samples.setdefault(status, [])) < 3:
                stats.error_samples[status].append(answer[:300].decode("utf-8", "replace"))
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(len(clients))]
    for thread in threads:
        thread.start()
    start_gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    total = LoadStats(seconds=time.perf_counter() - started)
    for stats in results:
        total.merge(stats)
    return total


# --------------------------------------------------------------------------- data


def make_clients() -> list[dict[str, Any]]:
    """50 owners, each with an enterprise workspace and an API token."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from domains.models import Membership, Role, Workspace

    user_model = get_user_model()
    clients = []
    for i in range(CLIENTS):
        user = user_model.objects.create_user(f"load{i}", f"load{i}@example.com", "pw-bench-1")
        workspace = Workspace.objects.create(slug=f"load-ws-{i}", name=f"Load {i}",
                                             plan="enterprise")
        Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
        token = Token.objects.create(user=user)
        clients.append({"index": i, "slug": workspace.slug, "token": token.key,
                        "hosts": [], "user": user})
    return clients


def add_big_workspace_domains(workspace: Any, start: int, stop: int) -> None:
    from django.utils import timezone

    from domains.models import CustomDomain, DomainStatus

    now = timezone.now()
    CustomDomain.objects.bulk_create(
        [CustomDomain(hostname=f"site{i}.big-client.com", workspace=workspace,
                      status=DomainStatus.ACTIVE if i % 4 else DomainStatus.PENDING_VALIDATION,
                      ownership_token="bench", edge_version=1, edge_synced_version=1,
                      verified_at=now, activated_at=now, next_check_at=now,
                      checks={"dns": {"ok": True, "detail": "bench", "at": now.isoformat()}})
         for i in range(start, stop)], batch_size=5000)


def latency(port: int, path: str, headers: dict[str, str], n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    samples = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            status, _ = request(port, "GET", path, headers=headers, conn=conn)
            samples.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}")
    finally:
        conn.close()
    return samples


def query_count(path: str, *, user: Any, token: str | None = None) -> int:
    """SQL statements one GET runs (in-process test client; same code as gunicorn runs)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    headers = {}
    if token:
        headers["Authorization"] = f"Token {token}"
    else:
        client.force_login(user)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.status_code)
    return len(ctx)


def list_plan(owner: Any, workspace: Any) -> str:
    """The database's plan for the list page query (the view's queryset, first page)."""
    from domains import selectors
    from domains.models import DomainStatus

    qs = (selectors.domains_visible_to(owner).filter(workspace=workspace)
          .exclude(status=DomainStatus.REMOVED))
    return qs[:50].explain()


# --------------------------------------------------------------------------- benchmark


def run(quick: bool, database: BenchDatabase) -> list[Row]:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from domains.models import CustomDomain, Membership, Role, Workspace

    sizes = ApiSizes.for_run(quick)
    clients = make_clients()
    staff = get_user_model().objects.create_superuser("bench-staff", "staff@example.com",
                                                      "pw-bench-1")
    owner = get_user_model().objects.create_user("big-owner", "big@example.com", "pw-bench-1")
    big = Workspace.objects.create(slug="big-ws", name="Big", plan="enterprise")
    Membership.objects.create(workspace=big, user=owner, role=Role.OWNER)
    owner_token = Token.objects.create(user=owner).key

    def register(client: dict[str, Any], n: int) -> Request:
        client["sent"] = client.get("sent", 0) + 1
        host = f"app{client['sent']}.c{client['index']}.load-client.com"
        body = json.dumps({"hostname": host, "workspace": client["slug"]}).encode()
        return "POST", "/api/domains/", body, host

    def registered(client: dict[str, Any], host: str) -> None:
        client["hosts"].append(host)

    def poll(client: dict[str, Any], n: int) -> Request:
        hosts = client["hosts"]
        return "GET", f"/api/domains/{hosts[n % len(hosts)]}/", None, ""

    reg, stat = LoadStats(), LoadStats()
    with gunicorn(database) as port:
        # Alternating slices, so drift in machine load hits both endpoints alike.
        for _ in range(2):
            reg.merge(load(port, sizes.phase_seconds, clients, register, registered))
            stat.merge(load(port, sizes.phase_seconds, clients, poll))
        log(f"api: register {reg.summary()}; poll {stat.summary()}")

        # The list and the admin change list, at `small` and then `big` domains.
        staff_client = Client()
        staff_client.force_login(staff)
        cookie = f"sessionid={staff_client.cookies['sessionid'].value}"
        list_path = f"/api/domains/?workspace={big.slug}"
        admin_path = "/admin/domains/customdomain/"
        figures: dict[int, dict[str, Any]] = {}
        for size in (sizes.small, sizes.big):
            with timed(f"api: fill the big workspace to {size:,} domains (setup)"):
                add_big_workspace_domains(big, CustomDomain.objects.filter(workspace=big).count(),
                                          size)
            database.analyze()
            list_lat: list[float] = []
            admin_lat: list[float] = []
            for _ in range(4):  # interleaved
                list_lat += latency(port, list_path, {"Authorization": f"Token {owner_token}"},
                                    sizes.list_requests // 4)
                admin_lat += latency(port, admin_path, {"Cookie": cookie},
                                     sizes.list_requests // 4)
            figures[size] = {
                "list_p50_ms": percentile(list_lat, 50) * 1000,
                "list_p99_ms": percentile(list_lat, 99) * 1000,
                "admin_p50_ms": percentile(admin_lat, 50) * 1000,
                "admin_p99_ms": percentile(admin_lat, 99) * 1000,
                "list_queries": query_count(list_path, user=owner, token=owner_token),
                "admin_queries": query_count(admin_path, user=staff),
                "total_domains": CustomDomain.objects.count(),
            }
            log(f"api: at {size:,}: {figures[size]}")
        plan = list_plan(owner, big)

    rows: list[Row] = []
    for name, stats, path in (("register", reg, "POST /api/domains/"),
                              ("status poll", stat, "GET /api/domains/<hostname>/")):
        s = stats.summary()
        rows.append(Row(
            "api", f"{name}: {path}, {CLIENTS} concurrent clients ({database.vendor}, "
            "gunicorn 2 workers x 4 threads)",
            f"{s['rps']:,.0f} req/s; p50 {s['p50_ms']:.0f} ms, p99 {s['p99_ms']:.0f} ms",
            "-", "-", "no errors (no 429, no 5xx)", verdict(stats.errors == 0),
            note="" if stats.errors == 0 else (
                f"status codes: {stats.statuses}; e.g. {stats.error_samples}"),
            data=s,
        ))
    small, large = figures[sizes.small], figures[sizes.big]
    sorts_everything = "TEMP B-TREE FOR ORDER BY" in plan or re.search(r"\bSort\b", plan)
    for key, label, path in (("list", "domain list (page of 50)", "GET /api/domains/"),
                             ("admin", "admin change list (page of 100)",
                              "/admin/domains/customdomain/")):
        same = large[f"{key}_queries"] == small[f"{key}_queries"]
        slower = large[f"{key}_p99_ms"] / small[f"{key}_p99_ms"]
        notes = [] if same else ["The query count grows with the number of domains."]
        if key == "list" and slower > 3 and sorts_everything:
            notes.append(
                f"p99 grows {slower:.0f}x: to show the newest 50 of the workspace's "
                f"{sizes.big:,} domains, the page query sorts all of them: the plan does not "
                "use the (workspace, -created_at, -id) index (domain_ws_recent_idx).")
        rows.append(Row(
            "api", f"{label}, {path}: {sizes.big:,} vs {sizes.small:,} domains",
            f"p99 {large[f'{key}_p99_ms']:.0f} ms (p50 {large[f'{key}_p50_ms']:.0f}); "
            f"{large[f'{key}_queries']} queries",
            f"p99 {small[f'{key}_p99_ms']:.0f} ms (p50 {small[f'{key}_p50_ms']:.0f}); "
            f"{small[f'{key}_queries']} queries",
            f"p99 {fmt_ratio(large[f'{key}_p99_ms'] / small[f'{key}_p99_ms'])}",
            "same query count at any size", verdict(same),
            note=" ".join(notes),
            data={"small": small, "big": large, **({"plan": plan} if key == "list" else {})},
        ))
    return rows
