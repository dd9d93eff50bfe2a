"""The run command's checks that happen before anything starts (the whole run: tests/e2e)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from celery import Celery
from redis import Redis

from domains.task_names import TaskName
from localdev.stack import (
    LOCAL_SETTING_DEFAULTS,
    PORTS,
    StackConfig,
    StackError,
    banner,
    check_ports_free,
    keep_previous_logs,
)

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_documented_ports(tmp_path: Path) -> None:
    config = StackConfig.from_env({}, var_dir=tmp_path)
    assert dict(config.ports) == {
        "web": 8000,
        "edge": 8080,
        "origin": 8081,
        "dns": 5353,
        "dns_control": 5380,
        "moto": 5000,
    }
    assert config.acm_wait == 10
    assert config.database_url is None  # settings' SQLite default
    assert config.url("web", "/admin/") == "http://127.0.0.1:8000/admin/"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VEDOMAINS_LOCAL_WEB_PORT": "http"}, "not a whole number"),
        ({"VEDOMAINS_LOCAL_EDGE_PORT": "70000"}, "out of range"),
        ({"VEDOMAINS_LOCAL_ACM_WAIT": "1.5"}, "not a whole number"),
        ({"VEDOMAINS_LOCAL_ORIGIN_PORT": "8000"}, "both set to port 8000"),
    ],
)
def test_bad_settings_are_one_line_errors(
    env: dict[str, str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(StackError, match=message) as info:
        StackConfig.from_env(env, var_dir=tmp_path)
    assert "\n" not in str(info.value)


def test_a_taken_port_is_named_with_its_variable(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = StackConfig.from_env(
            {**_other_free_ports(port), "VEDOMAINS_LOCAL_EDGE_PORT": str(port)}, var_dir=tmp_path
        )
        with pytest.raises(StackError) as info:
            check_ports_free(config)
    message = str(info.value)
    assert f"TCP port {port}" in message and "VEDOMAINS_LOCAL_EDGE_PORT" in message
    assert "\n" not in message


def test_run_command_fails_fast_on_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {**os.environ, **_other_free_ports(port), "VEDOMAINS_LOCAL_WEB_PORT": str(port)}
        done = subprocess.run(
            [sys.executable, "-m", "localdev.stack", "--var-dir", str(tmp_path / "var")],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("localdev:")]
    assert len(errors) == 1 and "VEDOMAINS_LOCAL_WEB_PORT" in errors[0], done.stderr
    assert not (tmp_path / "var" / "log" / "moto.log").exists()  # nothing was started


def _other_free_ports(avoid: int) -> dict[str, str]:
    """Free ports for every service, so only the one under test collides."""
    env: dict[str, str] = {}
    sockets = []
    try:
        for _, var, _, _ in PORTS:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
            env[var] = str(sock.getsockname()[1])
    finally:
        for sock in sockets:
            sock.close()
    assert str(avoid) not in env.values()
    return env


# --- the newcomer's path ------------------------------------------------------------------


def test_every_taken_port_is_reported_at_once(tmp_path: Path) -> None:
    holders = []
    try:
        for _ in range(2):
            holder = socket.socket()
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            holders.append(holder)
        web, moto = (h.getsockname()[1] for h in holders)
        env = {**_other_free_ports(web), "VEDOMAINS_LOCAL_WEB_PORT": str(web),
               "VEDOMAINS_LOCAL_MOTO_PORT": str(moto)}
        config = StackConfig.from_env(env, var_dir=tmp_path)
        with pytest.raises(StackError) as info:
            check_ports_free(config)
    finally:
        for holder in holders:
            holder.close()
    message = str(info.value)
    assert f"TCP port {web}" in message and "VEDOMAINS_LOCAL_WEB_PORT" in message
    assert f"TCP port {moto}" in message and "VEDOMAINS_LOCAL_MOTO_PORT" in message
    assert "\n" not in message


def test_the_previous_run_s_logs_are_kept(tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    keep_previous_logs(log_dir)  # first run: nothing to keep
    assert not (tmp_path / "log.prev").exists()
    log_dir.mkdir()
    (log_dir / "worker.log").write_text("run 1 crashed here")
    keep_previous_logs(log_dir)
    assert (tmp_path / "log.prev" / "worker.log").read_text() == "run 1 crashed here"
    assert not log_dir.exists()
    log_dir.mkdir()
    (log_dir / "worker.log").write_text("run 2")
    keep_previous_logs(log_dir)  # only the run before is kept
    assert (tmp_path / "log.prev" / "worker.log").read_text() == "run 2"


def test_the_banner_shows_the_development_rate_limits(tmp_path: Path) -> None:
    summary = {
        "urls": {"admin": "a", "api": "b", "api_docs": "c", "edge": "d", "origin": "e",
                 "dns": "f", "dns_control": "http://127.0.0.1:5380", "moto": "g"},
        "admin": {"username": "admin", "password": "pw"},
        "demo": {"workspace": "demo", "plan": "pro", "username": "demo-owner", "token": "t"},
        "settings": dict(LOCAL_SETTING_DEFAULTS),
        "log_dir": "var/log",
    }
    text = banner(summary, StackConfig.from_env({}, var_dir=tmp_path))
    assert "register 600/hour per user" in text
    assert "verify 120/minute per user" in text
    # Far above production's defaults, which a developer trying bad input would trip.
    assert int(LOCAL_SETTING_DEFAULTS["VEDOMAINS_THROTTLE_REGISTER_USER"].split("/")[0]) > 30


def test_moto_run_standalone_logs_where_its_output_goes(tmp_path: Path) -> None:
    """`./dev run` sends moto's output to var/log/moto.log (the README says so)."""
    log = tmp_path / "moto.log"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "localdev.moto_server", "--port",
                                 str(port)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b"moto: http" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=10).read()
        # werkzeug's request line for that call reaches our file, not a temporary one.
        while b"GET /moto-api/" not in log.read_bytes():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_banner_lists_the_stack_s_own_pids(tmp_path: Path) -> None:
    summary = {
        "urls": {"admin": "a", "api": "b", "api_docs": "c", "edge": "d", "origin": "e",
                 "dns": "f", "dns_control": "http://127.0.0.1:5380", "moto": "g"},
        "admin": {"username": "admin", "password": "pw"},
        "demo": {"workspace": "demo", "plan": "pro", "username": "demo-owner", "token": "t"},
        "settings": dict(LOCAL_SETTING_DEFAULTS),
        "log_dir": "var/log",
        "pids": {"web": 4101, "worker": 4102},
    }
    text = banner(summary, StackConfig.from_env({}, var_dir=tmp_path))
    assert f"supervisor {os.getpid()}; web 4101, worker 4102" in text
    assert "./dev status" in text


def test_each_checkout_has_its_own_broker_keys(tmp_path: Path) -> None:
    """Two checkouts' stacks on the default Redis took each other's tasks (each worker then
    checked the other's domain ids against its own database): every broker key of a stack
    starts with a prefix of its own, the same at every restart."""
    one = StackConfig.from_env({}, var_dir=tmp_path / "one" / "var")
    other = StackConfig.from_env({}, var_dir=tmp_path / "other" / "var")
    assert one.broker_key_prefix != other.broker_key_prefix
    assert one.broker_key_prefix == StackConfig.from_env(
        {}, var_dir=tmp_path / "one" / "var").broker_key_prefix
    chosen = StackConfig.from_env({"CELERY_BROKER_KEY_PREFIX": "mine:"}, var_dir=tmp_path)
    assert chosen.broker_key_prefix == "mine:"


def test_a_prefixed_broker_keeps_its_queue_apart(tmp_path: Path) -> None:
    """What the prefix does on a real Redis: a task sent by one stack's app lands under its
    prefix, where the other stack's worker (another prefix) never looks."""
    url = os.environ.get("VEDOMAINS_TEST_BROKER_URL", "redis://127.0.0.1:6379/10")
    redis = Redis.from_url(url)
    apps = {}
    for name in ("one", "other"):
        prefix = StackConfig.from_env({}, var_dir=tmp_path / name).broker_key_prefix
        app = Celery(name, broker=url, set_as_current=False)
        app.conf.broker_transport_options = {"global_keyprefix": prefix}
        apps[name] = (app, prefix)
    app, prefix = apps["one"]
    try:
        app.send_task(TaskName.DOMAIN_CHECK, args=[1], queue="checks")
        assert redis.llen(f"{prefix}checks") == 1
        assert redis.llen(f"{apps['other'][1]}checks") == 0
        assert redis.llen("checks") == 0
    finally:
        redis.delete(f"{prefix}checks")
        app.close()
