"""Database credentials: the app connects as a least-privilege user that the
migration step creates, and reads a rotated password when it opens a connection, so a
rotation under a running web process and worker needs no restart.

Real PostgreSQL (a private cluster with password authentication, its own database and role:
never `postgres`'s password, never the `test` database), the real entry point (bin/run web,
bin/run worker) and a real Redis broker.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from celery import Celery
from psycopg import sql

from domains.task_names import TaskName
from tests.needs import need
from tests.polling import wait_for

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bin" / "run"
ADMIN = "i28a_admin"


@pytest.fixture(scope="module")
def private_postgresql() -> Iterator[str]:
    """A PostgreSQL cluster of this test's own, with password authentication for everyone
    but its admin: the shared server trusts loopback logins, where a wrong password would
    pass unnoticed. Its admin URL."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    need(bool(found) and shutil.which("runuser") is not None,
         "PostgreSQL server binaries (initdb, pg_ctl) and runuser")
    bindir = found[-1].parent
    home = Path(tempfile.mkdtemp(prefix="i28a-pg-"))
    data = home / "data"
    shutil.chown(home, "postgres", "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", ADMIN,
                    "--auth=trust", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True, timeout=120)
    (data / "pg_hba.conf").write_text(
        f"local all {ADMIN} trust\n"
        f"host all {ADMIN} 127.0.0.1/32 trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n")
    port = _free_port()
    subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l",
                    str(home / "log"), "-o",
                    f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start"], check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql://{ADMIN}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "-w", "stop"], capture_output=True, timeout=120, check=False)
        shutil.rmtree(home, ignore_errors=True)


class Scratch:
    """A database and an app role of this test's own, dropped afterwards."""

    def __init__(self, tmp_path: Path, admin_url: str) -> None:
        token = secrets.token_hex(4)
        self.database = f"i28a_rotation_{token}"
        self.role = f"i28a_app_{token}"
        self.password_file = tmp_path / "db-password"
        self.password_file.write_text(secrets.token_urlsafe(24))
        self.admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
        self.admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        parts = psycopg.conninfo.conninfo_to_dict(admin_url)
        self.host, self.port = str(parts["host"]), str(parts["port"])
        self.master_url = f"postgres://{ADMIN}@{self.host}:{self.port}/{self.database}"
        self.app_url = f"postgres://{self.role}@{self.host}:{self.port}/{self.database}"

    def as_app(self, password: str | None = None) -> psycopg.Connection[Any]:
        return psycopg.connect(host=self.host, port=self.port, dbname=self.database,
                               user=self.role, connect_timeout=3, autocommit=True,
                               password=password or self.password_file.read_text())

    def drop(self) -> None:
        self.admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(self.database)))
        self.admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(self.role)))
        self.admin.close()


def _env(extra: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "VEDOMAINS_", "CELERY_", "CACHE_", "DATABASE_"))}
    return {**base, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "DJANGO_DEBUG": "false",
            "DJANGO_ALLOWED_HOSTS": "domains-admin.ve.ai", "VEDOMAINS_LOG_FORMAT": "json",
            "VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID": "E2TEMPLATE0000",
            "VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID": "E2MULTITENANT1",
            "VEDOMAINS_CDN_CONNECTION_GROUP_ID": "cg_2abcdefghijklmnopqrstuvwxyz", **extra}


def _manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout


@pytest.fixture
def scratch(tmp_path: Path, clean_redis: str,
            private_postgresql: str) -> Iterator[tuple[Scratch, dict[str, str]]]:
    made = Scratch(tmp_path, private_postgresql)
    try:
        master = _env({"DATABASE_URL": made.master_url, "CELERY_BROKER_URL": clean_redis,
                       "CACHE_URL": clean_redis.rsplit("/", 1)[0] + "/3"})
        _manage(master, "migrate", "--noinput")
        out = _manage(master, "db_app_user", "--username", made.role,
                      "--password-file", str(made.password_file))
        assert f"created database user {made.role}" in out
        app = {**master, "DATABASE_URL": made.app_url,
               "DATABASE_PASSWORD_FILE": str(made.password_file),
               # Only a refused login makes it read the password again, never a timer.
               "DATABASE_PASSWORD_CACHE_SECONDS": "3600",
               # A new connection per request, so each one meets the current password.
               "DATABASE_CONN_MAX_AGE": "0"}
        yield made, app
    finally:
        made.drop()


def test_the_app_user_reads_and_writes_rows_but_cannot_change_the_schema(
        scratch: tuple[Scratch, dict[str, str]]) -> None:
    made, _ = scratch
    with made.as_app() as conn:
        conn.execute("INSERT INTO django_content_type (app_label, model) VALUES ('x', 'y')")
        assert conn.execute("SELECT count(*) FROM django_content_type").fetchone()[0] > 0
        for ddl in ("CREATE TABLE stolen (x int)", "DROP TABLE domains_customdomain",
                    "ALTER TABLE domains_customdomain ADD COLUMN x int",
                    "TRUNCATE domains_domainevent", "CREATE ROLE sneaky"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(ddl)
    flags = made.admin.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                               "WHERE rolname = %s", [made.role]).fetchone()
    assert flags == (False, False, False)
    # Re-running (every release's migrate task) keeps the role and sets the current password.
    made.password_file.write_text(secrets.token_urlsafe(24))
    master = {**scratch[1], "DATABASE_URL": made.master_url}
    master.pop("DATABASE_PASSWORD_FILE")
    out = _manage(master, "db_app_user", "--username", made.role,
                  "--password-file", str(made.password_file))
    assert f"altered database user {made.role}" in out
    made.as_app().close()


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.handle = log.open("w")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.handle,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.handle.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(port: int) -> tuple[int, dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError:
        return None


@pytest.mark.slow
@pytest.mark.worker
def test_attack_password_rotated_under_a_running_web_and_worker(
        scratch: tuple[Scratch, dict[str, str]], tmp_path: Path, clean_redis: str) -> None:
    """Tasks read DATABASE_PASSWORD once at start: after RDS rotated it, every new
    connection failed until the services restarted. Now the same processes carry on."""
    made, env = scratch
    port = _free_port()
    web = Proc([str(RUN), "web", "--bind", f"127.0.0.1:{port}", "--workers", "1"], env,
               tmp_path / "web.log")
    worker = Proc([str(RUN), "worker", "checks", "--concurrency", "1"], env,
                  tmp_path / "worker.log")
    # Not the current app: lifecycle.task_send queues through celery.current_app, and
    # later tests in this process must keep the project's app (its queues and routes).
    sender = Celery(broker=clean_redis, set_as_current=False)
    try:
        wait_for(lambda: (_ready(port) or (0,))[0] == 200, 90, "web ready on the database")
        wait_for(lambda: "ready." in worker.text(), 90, "worker ready")

        def task_done(n: int) -> bool:
            return worker.text().count("succeeded") >= n

        sender.send_task(TaskName.DOMAINS_DISPATCH, queue="checks")
        wait_for(lambda: task_done(1), 60, "a task that reads the database")

        # The rotation: the database takes the new password first, the secret follows (as
        # Secrets Manager's setSecret then finishSecret steps do).
        new = secrets.token_urlsafe(24)
        made.admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(made.role), sql.Literal(new)))
        with pytest.raises(psycopg.OperationalError):
            made.as_app(password=made.password_file.read_text()).close()
        made.password_file.write_text(new)

        status, body = _ready(port) or (0, {})
        assert status == 200, body
        sender.send_task(TaskName.DOMAINS_DISPATCH, queue="checks")
        wait_for(lambda: task_done(2), 60, "the same task after the rotation")
        assert "password authentication failed" not in worker.text().split("succeeded")[-1]
        # Still the processes started before the rotation.
        assert web.proc.poll() is None and worker.proc.poll() is None
    finally:
        web.stop()
        worker.stop()


def _connects(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = ("import django; django.setup(); from django.db import connection; "
            "connection.ensure_connection(); print(connection.settings_dict['ENGINE'])")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**env, "DJANGO_SETTINGS_MODULE": "vedomains_site.settings"})


def test_a_secret_mid_rotation_connects_with_its_pending_version(
        scratch: tuple[Scratch, dict[str, str]], moto_server: Any) -> None:
    """Secrets Manager's rotation sets the new password in the database (setSecret) before
    it becomes AWSCURRENT (finishSecret): in between, AWSCURRENT is refused and the pending
    version is the one that works. Real Secrets Manager API (moto server)."""
    import boto3

    made, env = scratch
    client = boto3.client("secretsmanager", region_name="us-east-1",
                          endpoint_url=moto_server.endpoint_url)
    old = made.password_file.read_text()
    arn = client.create_secret(Name=f"{made.role}-db", SecretString=json.dumps(
        {"username": made.role, "password": old}))["ARN"]
    app = {k: v for k, v in env.items() if k != "DATABASE_PASSWORD_FILE"}
    app.update({"DATABASE_PASSWORD_SECRET_ARN": arn,
                "VEDOMAINS_AWS_ENDPOINT_URL": moto_server.endpoint_url,
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    first = _connects(app)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.strip() == "vedomains_site.db.backend"

    new = secrets.token_urlsafe(24)
    client.put_secret_value(SecretId=arn, SecretString=json.dumps(
        {"username": made.role, "password": new}), VersionStages=["AWSPENDING"])
    made.admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(made.role), sql.Literal(new)))
    during = _connects(app)
    assert during.returncode == 0, during.stderr[-2000:]

    # A password nobody holds is refused, with the server's own error.
    made.admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(made.role), sql.Literal(secrets.token_urlsafe(24))))
    refused = _connects(app)
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr


@pytest.mark.django_db
def test_db_app_user_never_sends_the_plaintext_password(tmp_path: Path) -> None:
    """The statement reaches the server log (log_statement, errors): it carries a SCRAM
    verifier computed here, never the password itself."""
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("db_app_user needs PostgreSQL")
    role = f"app_{secrets.token_hex(6)}"
    password = secrets.token_urlsafe(24)
    path = tmp_path / "pw"
    path.write_text(password)
    # Inside the test's transaction: the role is rolled back with it (the scratch database
    # test above logs in with the verifier the command sets).
    with CaptureQueriesContext(connection) as queries:
        call_command("db_app_user", "--username", role, "--password-file", str(path))
    sent = [q["sql"] for q in queries.captured_queries]
    assert any("ROLE" in q for q in sent), sent
    assert not any(password in q for q in sent), sent
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [role])
        (stored,) = cursor.fetchone()
    assert stored.startswith("SCRAM-SHA-256$")
