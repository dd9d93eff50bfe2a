"""Production credentials and entry points: the ElastiCache AUTH token is
wired from the template to every Redis URL, gunicorn believes X-Forwarded-* only from the
load balancer's network, and `bin/run worker` starts only on a queue the app routes to."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.core.checks import Error
from django.test import override_settings

from domains import system_checks
from tests.cfn import load_template
from tests.polling import wait_for
from vedomains_site.observability import queues

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bin" / "run"


# ---------------------------------------------------------------- bin/run worker QUEUE

@pytest.mark.parametrize("argument", ["chekcs", "checks,bogus", "*", "celery"])
def test_attack_worker_on_an_unknown_queue_exits_with_one_line(argument: str) -> None:
    """`run worker chekcs` used to start a worker that consumed nothing."""
    out = subprocess.run([str(RUN), "worker", argument], cwd=ROOT, capture_output=True,
                         text=True, timeout=30, env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "unknown queue" in out.stderr, out.stderr
    assert out.stdout == ""


@pytest.mark.parametrize("process", [["web"], ["worker", "checks"], ["beat"]])
def test_a_bad_setting_stops_each_long_running_process_before_it_starts(
        process: list[str]) -> None:
    """A value only a system check can judge (here the log format) used to run unnoticed:
    the checks run at `manage.py check`, which no container ran."""
    env = {**os.environ, "DJANGO_DEBUG": "true", "VEDOMAINS_LOG_FORMAT": "jsn"}
    out = subprocess.run([str(RUN), *process, "--version"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env=env)
    assert out.returncode != 0
    assert "vedomains.E075" in out.stderr and "VEDOMAINS_LOG_FORMAT" in out.stderr, out.stderr


def test_the_entry_point_knows_exactly_the_app_s_queues() -> None:
    (listed,) = re.findall(r'known="([^"]+)"', RUN.read_text())
    assert sorted(listed.split()) == sorted(queues.names())


# ---------------------------------------------------------------- gunicorn's proxy trust

def _gunicorn_setting(name: str, env: dict[str, str]) -> str:
    code = ("import runpy; c = runpy.run_path('vedomains_site/gunicorn.conf.py'); "
            f"print(c[{name!r}])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env=env, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_attack_gunicorn_trusted_forwarded_headers_from_any_peer() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "vedomains_site.settings"}
    env.pop("VEDOMAINS_WEB_FORWARDED_ALLOW_IPS", None)
    assert _gunicorn_setting("forwarded_allow_ips", env) == "127.0.0.1,::1"
    env["VEDOMAINS_WEB_FORWARDED_ALLOW_IPS"] = "10.0.0.0/24,10.0.1.0/24"
    assert _gunicorn_setting("forwarded_allow_ips", env) == "10.0.0.0/24,10.0.1.0/24"


@pytest.mark.parametrize("value", [["*"], ["10.0.0.0/24", "alb"], []])
def test_a_trust_everyone_or_malformed_proxy_list_is_a_system_check_error(
        value: list[str]) -> None:
    with override_settings(VEDOMAINS_WEB_FORWARDED_ALLOW_IPS=value):
        problems = system_checks.web_settings_problems()
    assert [p.id for p in problems] == ["vedomains.E070"]
    assert isinstance(problems[0], Error)
    assert "VEDOMAINS_WEB_FORWARDED_ALLOW_IPS" in problems[0].msg


def test_the_template_trusts_only_the_load_balancer_subnets() -> None:
    template = load_template(ROOT / "deploy" / "control-plane.yaml")
    web = template["Resources"]["WebTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in web["Environment"]}
    assert env["VEDOMAINS_WEB_FORWARDED_ALLOW_IPS"] == {
        "Fn::Join": [",", {"Ref": "PublicSubnetCidrs"}]}
    assert template["Parameters"]["PublicSubnetCidrs"]["Type"] == "CommaDelimitedList"


# ---------------------------------------------------------------- ElastiCache AUTH

def test_the_template_wires_the_auth_token_to_redis_and_every_task() -> None:
    template = load_template(ROOT / "deploy" / "control-plane.yaml")
    resources = template["Resources"]
    redis_props = resources["Redis"]["Properties"]
    assert redis_props["TransitEncryptionEnabled"] is True  # AUTH requires TLS
    assert redis_props["AuthToken"] == {
        "Fn::Sub": "{{resolve:secretsmanager:${RedisAuthToken}:SecretString}}"}
    assert resources["RedisAuthToken"]["Type"] == "AWS::SecretsManager::Secret"
    for name, task in resources.items():
        if task["Type"] != "AWS::ECS::TaskDefinition":
            continue
        (container,) = task["Properties"]["ContainerDefinitions"]
        secrets = {s["Name"]: s["ValueFrom"] for s in container["Secrets"] if "Name" in s}
        assert secrets["REDIS_PASSWORD"] == {"Ref": "RedisAuthToken"}, name
        urls = [e["Value"] for e in container["Environment"] if e["Name"].endswith("_URL")]
        assert not any("@" in str(u) and "redis" in str(u) for u in urls), name
    readable = resources["ExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"][0]["Resource"]
    assert {"Ref": "RedisAuthToken"} in readable


def _settings_with(env: dict[str, str], expression: str) -> str:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("VEDOMAINS_", "CELERY_", "CACHE_", "REDIS_"))}
    full.update({"DJANGO_SETTINGS_MODULE": "vedomains_site.settings", **env})
    code = f"from django.conf import settings as s; print({expression})"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env=full, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


@pytest.fixture
def redis_with_auth(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real redis-server of our own that refuses commands without the password."""
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    password = "Zx9-" * 6  # an AUTH token's alphabet, with a character URLs must quote
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1",
                             "--requirepass", password, "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up() -> bool:
        try:
            redis.Redis(port=port, password=password, socket_timeout=1).ping()
            return True
        except redis.RedisError:
            return False

    try:
        wait_for(up, 20, "redis-server with requirepass")
        yield f"127.0.0.1:{port}", password
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_every_redis_url_carries_the_auth_token_and_works(
        redis_with_auth: tuple[str, str]) -> None:
    address, password = redis_with_auth
    env = {"CELERY_BROKER_URL": f"redis://{address}/0",
           "CACHE_URL": f"redis://{address}/1", "REDIS_PASSWORD": password}
    broker, cache, limits, metrics = _settings_with(
        env, "s.CELERY_BROKER_URL, s.CACHES['default']['LOCATION'], "
             "s.VEDOMAINS_AWS_RATE_LIMIT_REDIS_URL, "
             "s.VEDOMAINS_METRICS_REDIS_URL or s.CELERY_BROKER_URL, sep='\\n'").splitlines()
    for url in (broker, cache, limits, metrics):
        assert redis.Redis.from_url(url, socket_timeout=2).ping() is True, url
    # Without the token the same server refuses: the setting is what lets the app in.
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(f"redis://{address}/0", socket_timeout=2).ping()
    # A URL that names its own password keeps it.
    kept = _settings_with({**env, "CELERY_BROKER_URL": f"redis://:other@{address}/0"},
                          "s.CELERY_BROKER_URL")
    assert kept == f"redis://:other@{address}/0"


def test_a_celery_worker_connects_to_a_redis_that_requires_auth(
        redis_with_auth: tuple[str, str], tmp_path: Path) -> None:
    """What the workers run: Celery's own connection with the settings' broker URL."""
    address, password = redis_with_auth
    env = {"CELERY_BROKER_URL": f"redis://{address}/0", "REDIS_PASSWORD": password}
    answer = _settings_with(env, "__import__('vedomains_site.celery', fromlist=['app'])"
                                 ".app.connection_for_write().ensure_connection(max_retries=1)"
                                 " and 'connected'")
    assert answer == "connected"


@pytest.mark.parametrize(("overrides", "check_id"), [
    ({"DATABASE_PASSWORD_SECRET_ARN": "vedomains-db"}, "vedomains.E072"),
    ({"DATABASE_APP_USER_SECRET_ARN": "arn:aws:s3:::bucket"}, "vedomains.E072"),
    ({"DATABASE_PASSWORD_FILE": "/run/db", "DATABASE_PASSWORD_SECRET_ARN":
      "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"}, "vedomains.E073"),
    ({"DATABASE_PASSWORD_CACHE_SECONDS": 0}, "vedomains.E074"),
    ({"REDIS_PASSWORD": "has@sign-and-more-than-16"}, "vedomains.E071"),
])
def test_credential_settings_are_checked_with_their_names(overrides: dict[str, object],
                                                          check_id: str) -> None:
    with override_settings(**overrides):
        problems = system_checks.web_settings_problems()
    assert [p.id for p in problems] == [check_id]
    assert next(iter(overrides)) in problems[0].msg
