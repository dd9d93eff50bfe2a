"""Health: liveness without I/O, readiness with reasons, the worker health command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client

from tests.infra import WorkerProcess
from tests.needs import need
from tests.ops_helpers import closed_port

ROOT = Path(__file__).resolve().parent.parent
# An address a load balancer uses: the task's own IP, in no ALLOWED_HOSTS.
TASK_HOST = "10.0.3.7:8000"


def test_liveness_answers_without_any_io(settings: Any) -> None:
    # No `db` fixture: pytest-django fails the test on any database access.
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = Client().get("/health/live", HTTP_HOST=TASK_HOST)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def _not_ready_log(caplog: pytest.LogCaptureFixture) -> str:
    return next(r.getMessage() for r in caplog.records if r.name == "vedomains.request"
                and r.getMessage().startswith("not ready:"))


@pytest.mark.django_db
def test_readiness_checks_database_broker_and_cache(redis_url: str, settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": redis_url}}
    response = Client().get("/health/ready", HTTP_HOST=TASK_HOST)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True, "broker": True, "cache": True}


@pytest.mark.django_db
def test_readiness_fails_with_a_reason_when_the_broker_is_down(
    settings: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    port = closed_port()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    response = Client().get("/health/ready", HTTP_HOST=TASK_HOST)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert not body["checks"]["broker"]["ok"]
    assert body["checks"]["database"]["ok"] and body["checks"]["cache"]["ok"]
    # The reason (it names the host and port) is in the log, not in the answer.
    assert _not_ready_log(caplog).startswith("not ready: broker: ConnectionError")
    assert str(port) in _not_ready_log(caplog)


@pytest.mark.django_db
def test_readiness_fails_with_a_reason_when_the_database_is_down(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    if connections["default"].vendor != "postgresql":
        need(False, "needs a network database (set DATABASE_URL to PostgreSQL)")
    # The probe's thread opens its own connection from these settings: point it nowhere.
    monkeypatch.setitem(connections.settings["default"], "PORT", str(closed_port()))
    response = Client().get("/health/ready", HTTP_HOST=TASK_HOST)
    assert response.status_code == 503
    body = response.json()
    assert _not_ready_log(caplog).startswith("not ready: database: OperationalError")
    assert body["checks"]["broker"]["ok"] and not body["checks"]["database"]["ok"]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never answers: a host that drops the conversation."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


@pytest.mark.django_db
def test_readiness_gives_up_on_a_hung_dependency_within_its_timeout(
    settings: Any, silent_server: int, caplog: pytest.LogCaptureFixture,
) -> None:
    settings.VEDOMAINS_READINESS_TIMEOUT_SECONDS = 0.5
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_server}/0"
    started = time.monotonic()
    response = Client().get("/health/ready", HTTP_HOST=TASK_HOST)
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert _not_ready_log(caplog).startswith("not ready: broker: ")
    assert elapsed < 3, f"the probe took {elapsed:.1f} s"


# --- worker health --------------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_health_passes_with_a_worker_and_fails_with_a_reason_without(
    clean_redis: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(CommandError, match=r"^no Celery worker on host \S+ answered a ping "
                                           r"within 1 s$"):
        call_command("worker_health", "--timeout", "1")

    worker = WorkerProcess(clean_redis, tmp_path / "worker.log", concurrency=1).start()
    try:
        call_command("worker_health", "--timeout", "5")
        assert capsys.readouterr().out.startswith(f"ok: celery@{socket.gethostname()}")
    finally:
        worker.stop()
    with pytest.raises(CommandError, match="answered a ping"):
        call_command("worker_health", "--timeout", "1", "--any-host")


def test_worker_health_exits_non_zero_with_one_line_when_the_broker_is_down() -> None:
    env = {k: v for k, v in os.environ.items() if k != "VEDOMAINS_TEST_BROKER_URL"}
    out = subprocess.run(
        [sys.executable, "manage.py", "worker_health", "--timeout", "1"], cwd=ROOT,
        capture_output=True, text=True, timeout=60,
        env={**env, "DJANGO_DEBUG": "true", "VEDOMAINS_LOG_FORMAT": "plain",
             "CELERY_BROKER_URL": f"redis://127.0.0.1:{closed_port()}/0"})
    assert out.returncode != 0
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("CommandError: broker unreachable"), out.stderr
