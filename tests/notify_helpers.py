"""Helpers for the notification, webhook and certificate-watch tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from celery import current_app
from django.test import override_settings

from domains.task_names import TaskName

LOCMEM_EMAIL = "django.core.mail.backends.locmem.EmailBackend"


class TaskRecorder:
    """Stands in for `lifecycle.task_send`: records what would be queued, runs it on demand.

    In `db` tests the broker is real but nothing consumes it, so the tests run the queued
    tasks themselves, in-process, exactly as a worker would (ids in, service call).
    """

    def __init__(self) -> None:
        self.calls: list[tuple[TaskName, tuple[Any, ...]]] = []

    def __call__(self, task_name: TaskName, *args: Any) -> None:
        if task_name not in current_app.tasks:  # as the real task_send, which raises
            raise KeyError(task_name)
        self.calls.append((TaskName(task_name), args))

    def names(self) -> list[TaskName]:
        return [name for name, _ in self.calls]

    def run(self, *only: TaskName) -> list[Any]:
        """Run (and forget) the recorded calls, or only those named in `only`."""
        results = []
        keep = []
        for name, args in self.calls:
            if only and name not in only:
                keep.append((name, args))
                continue
            results.append(current_app.tasks[name](*args))
        self.calls = keep
        return results


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that records webhook POSTs and answers as scripted."""

    server: ThreadingHTTPServer
    requests: list[ReceivedRequest] = field(default_factory=list)
    # Answers in order; when exhausted, `default`. An answer is a status code or
    # (status code, extra headers, delay seconds).
    script: list[Any] = field(default_factory=list)
    default: int = 200

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks"

    def next_answer(self) -> tuple[int, dict[str, str], float]:
        answer = self.script.pop(0) if self.script else self.default
        if isinstance(answer, int):
            return answer, {}, 0.0
        return answer


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    import time

    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            receiver = holder["r"]
            receiver.requests.append(ReceivedRequest(self.path, dict(self.headers.items()), body))
            status, headers, delay = receiver.next_answer()
            if delay:
                time.sleep(delay)
            payload = json.dumps({"received": True, "status": status}).encode()
            try:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (timeout tests)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder["r"] = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    # This receiver is plain http on loopback, which only DEBUG and an explicit allowed
    # network permit (the SSRF guard).
    loopback = override_settings(DEBUG=True, VEDOMAINS_WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"])
    loopback.enable()
    try:
        yield holder["r"]
    finally:
        loopback.disable()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
