"""The run command's checks that happen before anything starts (the whole run: tests/e2e)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from localdev.stack import PORTS, StackConfig, StackError, check_ports_free

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
