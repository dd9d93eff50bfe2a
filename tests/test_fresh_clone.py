"""The README's test command from a fresh clone, as a newcomer runs it.

A copy of the checkout's files (what `git clone` gives: no var/, no .env, no .venv of its
own) runs `./dev test` on a small selection without DATABASE_URL, on SQLite, and without a
Redis to lean on: the script starts one of its own and stops it at exit. The copy borrows
this checkout's .venv (the script sees its requirements stamp and installs nothing), so the
test needs no network. Slow-ish (two runs of the script, ~20 s each).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.needs import need
from tests.polling import wait_for

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
# One real-worker test: it needs the SQLite test database in var/, Redis, moto and DNS.
SELECTION = "tests/test_worker.py"
TIMEOUT = 600


def fresh_copy(tmp_path: Path) -> Path:
    need(shutil.which("git") is not None and (ROOT / ".git").exists(),
         "needs a git checkout to know which files a clone has")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.split(b"\0")
    dest = tmp_path / "clone"
    for raw in listed:
        if not raw:
            continue
        source = ROOT / os.fsdecode(raw)
        if not source.is_file():  # deleted in the working tree
            continue
        target = dest / os.fsdecode(raw)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    venv = ROOT / ".venv"
    need(venv.is_dir(), "needs this checkout's .venv (./dev setup)")
    (dest / ".venv").symlink_to(venv)
    assert not (dest / "var").exists()
    return dest


def newcomer_env(**extra: str) -> dict[str, str]:
    drop = ("DATABASE_URL", "VEDOMAINS_", "DJANGO_", "PYTEST_", "CELERY_", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(ROOT / ".venv")))
    env["PYTHON"] = sys.executable  # the interpreter the venv was made from is fine too
    env.update(extra)
    return env


def run_dev_test(clone: Path, env: dict[str, str]) -> str:
    out = subprocess.run(["./dev", "test", SELECTION, "-q"], cwd=clone, env=env,
                         capture_output=True, text=True, timeout=TIMEOUT)
    output = out.stdout + out.stderr
    assert out.returncode == 0, output[-4000:]
    assert re.search(r"\b1 passed\b", output), output[-2000:]
    return output


def redis_answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dev_test_passes_from_a_fresh_clone_without_database_url(tmp_path: Path) -> None:
    clone = fresh_copy(tmp_path)
    output = run_dev_test(clone, newcomer_env())
    assert "database: SQLite" in output
    # Its own Redis, on a port of its own, gone once the run is over.
    match = re.search(r"starting Redis for this run on 127\.0\.0\.1:(\d+)", output)
    assert match, output[-2000:]
    assert not redis_answers(int(match.group(1)))
    assert (clone / "var").is_dir()


def test_dev_test_starts_redis_where_it_is_told_and_none_answers(tmp_path: Path) -> None:
    clone = fresh_copy(tmp_path)
    port = free_port()
    assert not redis_answers(port)
    env = newcomer_env(VEDOMAINS_TEST_BROKER_URL=f"redis://127.0.0.1:{port}/0",
                       VEDOMAINS_E2E_BROKER_URL=f"redis://127.0.0.1:{port}/1")
    output = run_dev_test(clone, env)
    assert f"starting Redis for this run on 127.0.0.1:{port}" in output
    assert not redis_answers(port)


def test_postgresql_only_tests_fail_rather_than_skip_under_ci(tmp_path: Path) -> None:
    env = newcomer_env(CI="true", VEDOMAINS_TEST_BROKER_URL=os.environ.get(
        "VEDOMAINS_TEST_BROKER_URL", "redis://127.0.0.1:6379/10"))
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "tests/test_abuse_limits.py::test_parallel_registrations_cannot_overshoot_the_cap"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )
    output = out.stdout + out.stderr
    assert out.returncode == 1, output[-3000:]
    assert "1 failed" in output and "required under CI" in output, output[-3000:]


def test_dev_run_starts_from_a_fresh_clone_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The other README command: on SQLite, with no Redis where CELERY_BROKER_URL points
    (the stack starts its own as a child), on free ports; SIGTERM stops everything."""
    import json
    import signal

    from localdev.stack import PORTS

    clone = fresh_copy(tmp_path)
    ports = {var: str(free_port()) for _, var, _, _ in PORTS}
    redis_port = free_port()
    env = newcomer_env(CELERY_BROKER_URL=f"redis://127.0.0.1:{redis_port}/0",
                       VEDOMAINS_LOCAL_ACM_WAIT="1", **ports)
    out_path = tmp_path / "run.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(["./dev", "run"], cwd=clone, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    stack_file = clone / "var" / "stack.json"
    try:
        def started() -> bool:
            assert proc.poll() is None, out_path.read_text()[-4000:]
            return stack_file.exists()

        wait_for(started, 240, "`./dev run` to start the stack",
                 on_timeout=lambda: out_path.read_text()[-4000:], step=0.5)
        described = json.loads(stack_file.read_text())
        assert described["env"]["DATABASE_URL"].startswith("sqlite:///")
        assert redis_answers(redis_port)
        banner = out_path.read_text()
        assert "Rate limits  register 600/hour per user" in banner
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert proc.returncode == 0, out_path.read_text()[-3000:]
    assert not stack_file.exists()
    assert not redis_answers(redis_port)  # the Redis it started went with it
