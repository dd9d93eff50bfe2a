"""`./dev manage` acts on the running stack's local AWS and DNS, and with
no stack running refuses to reach real AWS unless asked to.

`localdev.dev_manage` runs as `./dev manage` runs it, in a subprocess, against real servers
(moto, the loopback DNS server, the test database). The "running stack" is the stack file
`./dev run` writes, naming those servers and a live supervisor pid (this test process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from domains.models import CustomDomain, DomainStatus
from localdev.moto_server import aws_env
from tests.factories import CustomDomainFactory
from tests.infra import database_url_for_subprocess

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parent.parent
HOST = "gallery.client.com"


def shell_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """A developer's second shell: no AWS or DNS settings of its own."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "VEDOMAINS_", "DATABASE_URL", "CELERY_"))}
    env.update({"DJANGO_DEBUG": "true", "VEDOMAINS_LOCAL_VAR_DIR": str(var_dir),
                "PYTHONUNBUFFERED": "1", **extra})
    return env


def dev_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "localdev.dev_manage", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def write_stack_file(var_dir: Path, *, pid: int, moto_url: str, env: dict[str, str]) -> None:
    var_dir.mkdir(parents=True, exist_ok=True)
    (var_dir / "stack.json").write_text(json.dumps({"pid": pid, "moto": moto_url, "env": env}))


@pytest.mark.django_db(transaction=True)
def test_commands_use_the_running_stack_s_aws_and_dns(
    tmp_path: Path, aws_stack: dict[str, str], dns_server: Any, settings: Any,
) -> None:
    domain = CustomDomainFactory(hostname=HOST, status=DomainStatus.ACTIVE)
    dns_server.store.set_record(HOST, "CNAME", "domain.ve.ai")
    var_dir = tmp_path / "var"
    write_stack_file(var_dir, pid=os.getpid(), moto_url=aws_stack["endpoint_url"], env={
        **aws_env(aws_stack["endpoint_url"]),
        "VEDOMAINS_AWS_ENDPOINT_URL": aws_stack["endpoint_url"],
        "VEDOMAINS_DNS_NAMESERVERS": dns_server.nameserver,
        "VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID": aws_stack["template_id"],
        "DATABASE_URL": database_url_for_subprocess(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    })
    env = shell_env(var_dir)

    done = dev_manage("check_domains", "--hostname", HOST, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    # The stack's DNS server answered: still active, no false alarm.
    domain = CustomDomain.objects.get(pk=domain.pk)
    assert domain.status == DomainStatus.ACTIVE, domain.checks
    assert domain.checks["dns"]["ok"] is True

    done = dev_manage("reconcile_edge", "--dry-run", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "credentials" not in (done.stdout + done.stderr).lower()


@pytest.mark.parametrize("command", [["check_domains", "--all"], ["reconcile_edge", "--dry-run"],
                                     ["backfill_edge"], ["shell", "-c", "print(1)"]])
def test_without_a_stack_commands_that_reach_aws_are_refused(
    tmp_path: Path, command: list[str]
) -> None:
    done = dev_manage(*command, env=shell_env(tmp_path / "var"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dev: no local stack is running"), done.stderr
    assert "VEDOMAINS_ALLOW_REAL_AWS=1" in lines[0]


def test_a_stack_file_left_by_a_dead_stack_counts_as_no_stack(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    write_stack_file(tmp_path / "var", pid=int(dead.stdout), moto_url="http://127.0.0.1:9",
                     env={"VEDOMAINS_AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    done = dev_manage("reconcile_edge", "--dry-run", env=shell_env(tmp_path / "var"))
    assert done.returncode == 2 and "no local stack is running" in done.stderr


def test_offline_commands_and_explicit_requests_run_without_a_stack(tmp_path: Path) -> None:
    env = shell_env(tmp_path / "var")
    done = dev_manage("check", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    # Asked for on purpose: it runs (and here fails on its own, with no AWS to reach).
    env = shell_env(tmp_path / "var", VEDOMAINS_ALLOW_REAL_AWS="1",
                    VEDOMAINS_AWS_ENDPOINT_URL="http://127.0.0.1:9",
                    VEDOMAINS_AWS_CONNECT_TIMEOUT_SECONDS="0.5")
    done = dev_manage("reconcile_edge", "--dry-run", env=env)
    assert "no local stack is running" not in done.stderr


def test_worker_health_runs_without_a_stack(tmp_path: Path) -> None:
    # It only pings Celery over the broker; with no worker (and no broker) answering it
    # fails on its own, with its own one-line reason, not the "real AWS" refusal.
    env = shell_env(tmp_path / "var", CELERY_BROKER_URL="redis://127.0.0.1:9/0")
    done = dev_manage("worker_health", "--timeout", "1", env=env)
    assert "no local stack is running" not in done.stderr
    assert done.returncode != 0 and done.returncode != 2, done.stderr[-2000:]


def test_status_lists_the_running_stack_s_processes_by_pid(tmp_path: Path,
                                                           aws_stack: dict[str, str]) -> None:
    var_dir = tmp_path / "var"
    env = shell_env(var_dir)
    done = dev_manage("--status", env=env)
    assert done.returncode == 1 and "no local stack is running" in done.stderr
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_stack_file(var_dir, pid=os.getpid(), moto_url=aws_stack["endpoint_url"], env={})
        content = json.loads((var_dir / "stack.json").read_text())
        content["pids"] = {"web": child.pid, "worker": 2 ** 22 + 1}
        (var_dir / "stack.json").write_text(json.dumps(content))
        done = dev_manage("--status", env=env)
    finally:
        child.kill()
        child.wait()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"stack supervisor  pid {os.getpid()}")
    assert f"pid {child.pid}  running" in lines[1] and lines[1].startswith("web")
    assert lines[2].startswith("worker") and lines[2].endswith("gone")
