"""Fault injection for the reliability tests: a cuttable TCP proxy, a private Redis, checks.

- `TcpProxy` sits between the app and moto. `cut()` is an outage (new connections refused,
  live ones reset) and `restore()` ends it, without moto losing its state the way a moto
  restart would. `hold(pattern, seconds)` delays the *response* to requests containing
  `pattern` (e.g. `PutItem`): the request has reached AWS, the caller has not heard back,
  which is the moment a crash hurts most.
- `RedisServer` is a private `redis-server` on a free loopback port, so a test can kill
  and restart it; the shared Redis on 6379 is never touched.
- `use_broker()` points this process's Celery producer at such a broker.
- `edge_state()`, `cloudfront_aliases()`, `assert_converged()`: what "everything ended
  right" means after a fault, in one place, with the figures the reports print.

Used by tests/test_faults.py, tests/test_concurrency.py and bench/reliability.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from django.conf import settings

from tests.polling import wait_for

# --- TCP proxy -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Link:
    client: socket.socket
    upstream: socket.socket
    # Seconds to hold the next response (set when the request matched a hold pattern).
    hold_next: float = 0.0


class TcpProxy:
    """A loopback TCP proxy with an off switch and per-request response delays."""

    def __init__(self, upstream: tuple[str, int], port: int = 0) -> None:
        self.upstream = upstream
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._holds: dict[bytes, float] = {}
        # Holds that end after so many requests (`hold(..., times=n)`).
        self._hold_counts: dict[bytes, int] = {}
        self._stopping = False
        # Figures: requests seen per pattern, connections accepted, outages.
        self.seen: Counter[bytes] = Counter()
        self.connections = 0
        self.cuts = 0
        self._accept_thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        self._stopping = False
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Rebinding the same port after cut(): old connections may sit in TIME_WAIT.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        self._accept_thread = threading.Thread(target=self._accept_loop, args=(listener,),
                                               daemon=True, name=f"proxy-{self.port}")
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self._close_listener()
        self._reset_links()

    def cut(self) -> None:
        """An outage: refuse new connections and reset the live ones."""
        self.cuts += 1
        self._close_listener()
        self._reset_links()

    def restore(self) -> None:
        if self._listener is None:
            self.start()

    def hold(self, pattern: bytes, seconds: float, *, times: int | None = None) -> None:
        """Delay the response to every request whose bytes contain `pattern` (only the next
        `times` such requests when given: a fault that heals by itself)."""
        with self._lock:
            if seconds > 0:
                self._holds[pattern] = seconds
                if times is not None:
                    self._hold_counts[pattern] = times
            else:
                self._holds.pop(pattern, None)
                self._hold_counts.pop(pattern, None)

    def clear_holds(self) -> None:
        with self._lock:
            self._holds.clear()
            self._hold_counts.clear()

    def wait_seen(self, pattern: bytes, count: int = 1, timeout: float = 30) -> None:
        wait_for(lambda: self.seen[pattern] >= count, timeout,
                 f"the proxy to see {count} {pattern!r}",
                 on_timeout=lambda: f"it saw {self.seen[pattern]}", step=0.02)

    def watch(self, *patterns: bytes) -> None:
        """Count requests containing these patterns (without delaying them)."""
        for pattern in patterns:
            self.seen.setdefault(pattern, 0)

    # -- internals --

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
            self._accept_thread = None

    def _reset_links(self) -> None:
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            for sock in (link.client, link.upstream):
                with contextlib.suppress(OSError):
                    # SO_LINGER 0: close with RST, as a dropped connection looks to a client.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    sock.close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by cut() or stop()
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            link = _Link(client, upstream)
            with self._lock:
                self._links.append(link)
                self.connections += 1
            threading.Thread(target=self._pump, args=(link,), daemon=True).start()

    def _pump(self, link: _Link) -> None:
        sel = selectors.DefaultSelector()
        try:
            sel.register(link.client, selectors.EVENT_READ, "up")
            sel.register(link.upstream, selectors.EVENT_READ, "down")
            while True:
                for key, _ in sel.select(timeout=1.0):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    if key.data == "up":
                        self._on_request(link, data)
                        link.upstream.sendall(data)
                    else:
                        if link.hold_next:
                            delay, link.hold_next = link.hold_next, 0.0
                            time.sleep(delay)
                        link.client.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            sel.close()
            for sock in (link.client, link.upstream):
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                if link in self._links:
                    self._links.remove(link)

    def _on_request(self, link: _Link, data: bytes) -> None:
        with self._lock:
            for pattern in set(self.seen) | set(self._holds):
                if pattern in data:
                    self.seen[pattern] += 1
                    link.hold_next = max(link.hold_next, self._holds.get(pattern, 0.0))
                    if pattern in self._hold_counts:
                        self._hold_counts[pattern] -= 1
                        if self._hold_counts[pattern] <= 0:
                            del self._hold_counts[pattern]
                            self._holds.pop(pattern, None)


# --- a private Redis ---------------------------------------------------------------------------


class RedisServer:
    """A `redis-server` of our own on a free loopback port, killed and restarted at will."""

    def __init__(self, workdir: Path, *, appendonly: bool, port: int = 0) -> None:
        self.workdir = workdir
        self.appendonly = appendonly
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        cmd = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "yes" if self.appendonly else "no",
            # fsync every write: a restart then loses nothing that was acknowledged.
            "--appendfsync", "always", "--dir", str(self.workdir),
            "--logfile", str(self.workdir / "redis.log"),
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def answers() -> bool:
            try:
                return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
            except redis.RedisError:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {self._log_tail()}") from None
                return False

        wait_for(answers, 10, "redis-server to answer", on_timeout=self._log_tail, step=0.05)
        return self

    def _log_tail(self) -> str:
        return (self.workdir / "redis.log").read_text(errors="replace")[-2000:]

    def kill(self) -> None:
        """SIGKILL: no shutdown save; only the append-only file (if on) survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        self.kill()

    def queued(self) -> int:
        """Messages waiting in all the app's queues."""
        client = redis.Redis.from_url(self.url)
        return sum(int(client.llen(queue)) for queue in settings.CELERY_TASK_QUEUES)

    def queued_tasks(self) -> Counter[str]:
        """Task names of the messages waiting in all queues (Celery message protocol 2)."""
        client = redis.Redis.from_url(self.url)
        raw = [m for queue in settings.CELERY_TASK_QUEUES for m in client.lrange(queue, 0, -1)]
        return Counter(json.loads(m).get("headers", {}).get("task", "?") for m in raw)


@contextlib.contextmanager
def use_broker(url: str) -> Iterator[None]:
    """Point this process's Celery producer (lifecycle.task_send) at `url` for the block."""
    from kombu import pools
    from kombu.utils.collections import eqhash

    from vedomains_site.celery import app

    def forget_cached_pools() -> None:
        # The app caches its connection pool and the producer pool built on it; kombu keeps
        # the pools themselves in global registries keyed by the connection's URL.
        app._pool = None
        app.amqp._producer_pool = None

    previous = app.conf.broker_url
    forget_cached_pools()
    app.conf.broker_url = url
    try:
        yield
    finally:
        connection = app.connection_for_write()
        forget_cached_pools()
        app.conf.broker_url = previous
        # Close and drop only this broker's pools; the default broker's stay open.
        for group in (pools.producers, pools.connections):
            pool = dict.pop(group, eqhash(connection), None)
            if pool is not None:
                with contextlib.suppress(Exception):
                    pool.force_close_all()
        connection.release()


# --- processes ---------------------------------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid` (Celery's prefork pool processes), from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 is the parent pid; the command name (field 2) may contain spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            children.append(int(entry.name))
    return sorted(children)


def kill_pool_children(worker_pid: int) -> int:
    """SIGKILL the pool processes running tasks, leaving the worker's main process alive."""
    pids = child_pids(worker_pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


# --- what "ended right" means -------------------------------------------------------------------


def cloudfront_aliases() -> Counter[str]:
    """How many distributions carry each alias, in the emulated account."""
    from domains.integrations import aws

    cf = aws.client("cloudfront", "us-east-1")
    counts: Counter[str] = Counter()
    for page in cf.get_paginator("list_distributions").paginate():
        for item in page.get("DistributionList", {}).get("Items", []) or []:
            for alias in item.get("Aliases", {}).get("Items") or []:
                counts[alias] += 1
    return counts


def edge_state() -> dict[str, Any]:
    """The whole edge table: hostname -> EdgeItem."""
    from domains.integrations import edge_store

    return {item.domain: item for item in edge_store.scan()}


@dataclass
class Convergence:
    """Figures for a report; `problems` empty means every guarantee held."""

    domains: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    edge_items: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def lost_updates(self) -> int:
        return len(self.problems)


def convergence(*, expect_status: dict[str, str] | None = None,
                check_cloudfront: bool = True) -> Convergence:
    """Compare Django, DynamoDB and CloudFront; every mismatch is a lost update.

    - every record in its expected status (when `expect_status` maps hostnames to one);
    - every routed (active/misconfigured) record in DynamoDB, active, with its workspace
      and exactly its latest edge_version, and recorded as synced;
    - no removed hostname routed at the edge (no tombstone overwritten by a stale write);
    - CloudFront: one distribution per active alias, none for removed ones.
    """
    from domains.models import EDGE_ROUTED_STATUSES, CustomDomain, DomainStatus

    report = Convergence()
    edge = edge_state()
    report.edge_items = len(edge)
    aliases = cloudfront_aliases() if check_cloudfront else Counter()
    live_hosts = set(
        CustomDomain.objects.exclude(status=DomainStatus.REMOVED).values_list("hostname",
                                                                              flat=True))
    for d in CustomDomain.objects.select_related("workspace").order_by("pk"):
        report.domains += 1
        report.by_status[d.status] += 1
        want = (expect_status or {}).get(d.hostname)
        if want is not None and d.status != want and d.status != DomainStatus.REMOVED:
            report.problems.append(f"{d.hostname}: status {d.status}, expected {want}")
        item = edge.get(d.hostname)
        if d.status in EDGE_ROUTED_STATUSES:
            if item is None or item.status != "active" or item.workspace_id != d.workspace.slug:
                report.problems.append(f"{d.hostname}: routed but edge has {item}")
            elif item.version != d.edge_version:
                report.problems.append(
                    f"{d.hostname}: edge v{item.version}, Django v{d.edge_version}")
            if d.edge_synced_version != d.edge_version:
                report.problems.append(f"{d.hostname}: sync not recorded")
            if check_cloudfront and d.cdn_resource_id and aliases[d.hostname] != 1:
                report.problems.append(
                    f"{d.hostname}: {aliases[d.hostname]} CloudFront distributions")
        elif d.status == DomainStatus.REMOVED and d.hostname not in live_hosts:
            if item is not None and item.status == "active":
                report.problems.append(f"{d.hostname}: removed but routed at the edge")
            if check_cloudfront and aliases[d.hostname]:
                report.problems.append(f"{d.hostname}: removed but still a CloudFront alias")
    return report
