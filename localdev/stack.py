"""The whole system on one machine: `python -m localdev.stack` (what `./dev run` execs).

On 127.0.0.1 only, it starts and supervises (default ports, each overridable by env):

    moto          local AWS: ACM, CloudFront, DynamoDB        VEDOMAINS_LOCAL_MOTO_PORT=5000
    dns           local DNS server (UDP+TCP)                  VEDOMAINS_LOCAL_DNS_PORT=5353
                  and its HTTP control API                    VEDOMAINS_LOCAL_DNS_CONTROL_PORT=5380
    web           Django admin + API on gunicorn              VEDOMAINS_LOCAL_WEB_PORT=8000
    worker, beat  Celery, on Redis at CELERY_BROKER_URL
    origin        demo origin naming the workspace asked for  VEDOMAINS_LOCAL_ORIGIN_PORT=8081
    edge          CloudFront + the real Lambda@Edge handler   VEDOMAINS_LOCAL_EDGE_PORT=8080
    redis         only if none answers at a local CELERY_BROKER_URL and redis-server exists

Before the long-running processes it runs `localdev.bootstrap setup` (migrations, the
DynamoDB table and template distribution in moto, demo logins, the edge config).

Every child runs in its own process group and session, so a Ctrl-C in the terminal
reaches only this supervisor, which then stops the children in order: SIGTERM to each
leader, a bounded wait, then SIGKILL to whatever is left in the group (gunicorn workers,
Celery pool processes). On Linux each child also gets SIGTERM if the supervisor dies
without cleaning up (PR_SET_PDEATHSIG). SIGINT, SIGTERM and SIGHUP all mean "stop".

Gunicorn rather than runserver: it is what production runs and serves requests on
several threads (the admin and API stay responsive while a slow request runs); the
static files runserver would serve come from `localdev.wsgi` (Django's own handler).

State and logs live under `var/` (gitignored): a rerun keeps the SQLite database, the
DNS records and the admin password. moto keeps its state in memory, so each start
recreates the AWS resources and backfills the edge table from Django.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final, TextIO
from urllib.parse import urlsplit

from localdev.dns_control import DNSControl
from localdev.moto_server import aws_env

ROOT: Final = Path(__file__).resolve().parent.parent
HOST: Final = "127.0.0.1"
READY_TIMEOUT: Final = 90.0  # generous: two cores shared with other test runs
BOOTSTRAP_TIMEOUT: Final = 180.0
STOP_TIMEOUT: Final = 15.0
KILL_TIMEOUT: Final = 5.0
POLL: Final = 0.1
LOG_TAIL: Final = 3000
# CloudFront's deployment, locally: a few seconds so the "deploying" step is seen (the
# emulator's own default, localdev.saas_manager.DEFAULT_DEPLOY_SECONDS, not imported here to
# keep moto out of this process). VEDOMAINS_LOCAL_DEPLOY_SECONDS changes it.
DEFAULT_DEPLOY_SECONDS: Final = 3.0

# (setting name, env var, default) for each listening service.
PORTS: Final = (
    ("web", "VEDOMAINS_LOCAL_WEB_PORT", 8000, "web server"),
    ("edge", "VEDOMAINS_LOCAL_EDGE_PORT", 8080, "edge proxy"),
    ("origin", "VEDOMAINS_LOCAL_ORIGIN_PORT", 8081, "demo origin"),
    ("dns", "VEDOMAINS_LOCAL_DNS_PORT", 5353, "DNS server"),
    ("dns_control", "VEDOMAINS_LOCAL_DNS_CONTROL_PORT", 5380, "DNS control API"),
    ("moto", "VEDOMAINS_LOCAL_MOTO_PORT", 5000, "moto (local AWS)"),
)

# Settings the children get unless the environment already sets them: checks run and
# dispatch every few seconds so a domain turns active in well under a minute, and the
# edge forgets a removed domain within half a minute.
LOCAL_SETTING_DEFAULTS: Final[Mapping[str, str]] = {
    "VEDOMAINS_DISPATCH_INTERVAL_SECONDS": "5",
    "VEDOMAINS_FAST_CHECK_SECONDS": "3",
    "VEDOMAINS_DNS_TIMEOUT_SECONDS": "2",
    "VEDOMAINS_EDGE_POSITIVE_TTL_SECONDS": "30",
    "VEDOMAINS_EDGE_NEGATIVE_TTL_SECONDS": "5",
    # Production's limits (30 registrations an hour per user) would lock out a developer
    # trying things; these still show a 429 to whoever loops on the API.
    "VEDOMAINS_THROTTLE_REGISTER_USER": "600/hour",
    "VEDOMAINS_THROTTLE_REGISTER_WORKSPACE": "1200/hour",
    "VEDOMAINS_THROTTLE_VERIFY_USER": "120/minute",
    "VEDOMAINS_THROTTLE_VERIFY_WORKSPACE": "240/minute",
    # A domain CloudFront is deploying (status "deploying") is looked at every 3 s.
    "VEDOMAINS_CDN_DEPLOY_CHECK_SECONDS": "3",
}


# Written under var/ once the stack is ready, removed when it stops: what `./dev manage`
# (localdev.dev_manage) needs to reach this stack's local AWS, DNS, database and broker.
STACK_FILE_NAME: Final = "stack.json"
# The settings a management command needs to act on the running stack, not on real AWS
# or the system resolver.
MANAGE_ENV_KEYS: Final = (
    "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
    "VEDOMAINS_AWS_ENDPOINT_URL", "VEDOMAINS_DNS_NAMESERVERS", "VEDOMAINS_LOCAL_DNS_CONTROL_URL",
    "VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID", "CELERY_BROKER_URL", "CELERY_BROKER_KEY_PREFIX",
    "DATABASE_URL", *LOCAL_SETTING_DEFAULTS,
)


class StackError(RuntimeError):
    """Start-up failed; the message is one line meant for the person at the terminal."""


class Interrupted(StackError):
    pass


# --- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class StackConfig:
    ports: Mapping[str, int]
    var_dir: Path
    broker_url: str
    database_url: str | None
    acm_wait: int
    summary_file: Path | None = None
    worker_concurrency: int = 2
    web_threads: int = 4
    extra_env: Mapping[str, str] = field(default_factory=dict)
    # Every broker key of this stack starts with it: two checkouts' stacks on one Redis (the
    # default redis://127.0.0.1:6379/0) would otherwise take each other's tasks, each worker
    # checking the other's domain ids against its own database.
    broker_key_prefix: str = ""

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] = os.environ,
        *,
        var_dir: Path | None = None,
        summary_file: Path | None = None,
    ) -> StackConfig:
        ports: dict[str, int] = {}
        for key, var, default, what in PORTS:
            ports[key] = _int_env(env, var, default, low=1, high=65535, what=f"{what} port")
        seen: dict[int, str] = {}
        for key, port in ports.items():
            if port in seen:
                raise StackError(f"{key} and {seen[port]} are both set to port {port}")
            seen[port] = key
        resolved_var = (var_dir or Path(env.get("VEDOMAINS_LOCAL_VAR_DIR") or ROOT / "var")
                        ).resolve()
        return cls(
            ports=ports,
            var_dir=resolved_var,
            broker_url=env.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/0",
            database_url=env.get("DATABASE_URL") or None,
            # moto parses MOTO_ACM_VALIDATION_WAIT with int(): whole seconds only.
            acm_wait=_int_env(
                env,
                "VEDOMAINS_LOCAL_ACM_WAIT",
                10,
                low=0,
                high=3600,
                what="ACM validation wait (seconds)",
            ),
            summary_file=summary_file,
            broker_key_prefix=(env.get("CELERY_BROKER_KEY_PREFIX")
                               or checkout_broker_prefix(resolved_var)),
        )

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def stack_file(self) -> Path:
        return self.var_dir / STACK_FILE_NAME

    def url(self, key: str, path: str = "/") -> str:
        return f"http://{HOST}:{self.ports[key]}{path}"


def checkout_broker_prefix(var_dir: Path) -> str:
    """The broker key prefix of the stack whose state lives in `var_dir`: stable across
    restarts (queued tasks survive one), different for every checkout."""
    return f"vedomains-{hashlib.sha256(str(var_dir).encode()).hexdigest()[:10]}:"


def _int_env(
    env: Mapping[str, str], name: str, default: int, *, low: int, high: int, what: str
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise StackError(f"{name}={raw!r} is not a whole number ({what})") from None
    if not low <= value <= high:
        raise StackError(f"{name}={value} is out of range {low}..{high} ({what})")
    return value


def check_ports_free(config: StackConfig) -> None:
    """Fail with one clear line naming every taken port, before anything is started."""
    env_names = {key: (var, what) for key, var, _, what in PORTS}
    taken: list[str] = []
    for key, port in config.ports.items():
        kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if key == "dns" else [])
        for kind in kinds:
            with socket.socket(socket.AF_INET, kind) as sock:
                # What the servers themselves set; it lets a port whose old connections
                # sit in TIME_WAIT count as free, as it is for them.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((HOST, port))
                except OSError:
                    var, what = env_names[key]
                    proto = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
                    taken.append(f"{proto} port {port} ({what}; set {var})")
    if taken:
        # All of them in one go: fixing one and restarting to meet the next is tedious.
        raise StackError(
            f"already in use on {HOST}: " + ", ".join(taken)
            + "; stop what holds them (is another `./dev run` running?) or move them"
        )


# --- processes ------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the supervisor dies (Linux only)."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # Resolved here, in the parent: the child must not load libraries between fork
        # and exec.
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL: Final = _load_prctl()


class ManagedProcess:
    """One child in its own session (process group), its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        ready: Callable[[], bool] | None = None,
        stdout_path: Path | None = None,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_path
        self.stdout_path = stdout_path
        self.ready = ready
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._terminated = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_path.exists():
            # One previous run is kept; a fresh file also means readiness checks that
            # look for a line in the log cannot match the last run's output.
            self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))
        with open(self.log_path, "wb") as log:
            log.write(
                f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(self.argv)}\n".encode()
            )
            log.flush()
            out = open(self.stdout_path, "wb") if self.stdout_path else log  # noqa: SIM115
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    cwd=ROOT,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=log,
                    start_new_session=True,
                    preexec_fn=_die_with_parent if _PRCTL is not None else None,
                )
            finally:
                if out is not log:
                    out.close()
        return self

    def exited(self) -> int | None:
        """The leader's exit code once it has exited (and been reaped), else None."""
        return self.proc.poll() if self.proc is not None else None

    def group_alive(self) -> bool:
        if self.proc is None:
            return False
        self.proc.poll()  # reap the leader, or its zombie would keep the group "alive"
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-LOG_TAIL:]
        except OSError:
            return ""

    def signal_group(self, sig: int) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def terminate(self) -> None:
        """SIGTERM the leader once: its own graceful shutdown. (A second SIGTERM could turn
        a Celery warm shutdown into a cold one.)"""
        if self.proc is not None and self.proc.poll() is None and not self._terminated:
            self._terminated = True
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """Terminate the leader, wait, then clear whatever is left in its group."""
        if self.proc is None:
            return
        self.terminate()
        if not _wait_until(
            lambda: self.proc is None or self.proc.poll() is not None, self.stop_timeout
        ):
            self.signal_group(signal.SIGKILL)
        # Children that outlived their leader (pool processes, workers): TERM, then KILL.
        if self.group_alive():
            self.signal_group(signal.SIGTERM)
            if not _wait_until(lambda: not self.group_alive(), KILL_TIMEOUT):
                self.signal_group(signal.SIGKILL)
                _wait_until(lambda: not self.group_alive(), KILL_TIMEOUT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=KILL_TIMEOUT)


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def log_contains(path: Path, needle: bytes) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return needle in path.read_bytes()
        except OSError:
            return False

    return check


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


# --- the stack ------------------------------------------------------------------------------


class Stack:
    def __init__(self, config: StackConfig, *, out: TextIO = sys.stdout) -> None:
        self.config = config
        self.out = out
        self.processes: list[ManagedProcess] = []
        self.summary: dict[str, Any] = {}
        self._stopping = False

    # Start-up.

    def request_stop(self) -> None:
        self._stopping = True

    def say(self, message: str) -> None:
        print(f"==> {message}", file=self.out, flush=True)

    def start(self) -> dict[str, Any]:
        cfg = self.config
        check_ports_free(cfg)
        keep_previous_logs(cfg.log_dir)
        cfg.log_dir.mkdir(parents=True, exist_ok=True)
        self._ensure_redis()

        self.say(f"starting moto and the local DNS server (logs in {cfg.log_dir})")
        moto_url = cfg.url("moto", "").rstrip("/")
        base_env = self._base_env(moto_url)
        moto = self._spawn(
            "moto",
            [
                sys.executable,
                "-m",
                "localdev.moto_server",
                "--host",
                HOST,
                "--port",
                str(cfg.ports["moto"]),
                "--acm-validation-wait",
                str(cfg.acm_wait),
            ],
            base_env,
            ready=lambda: http_ok(f"{moto_url}/moto-api/"),
        )
        dns = self._spawn(
            "dns",
            [
                sys.executable,
                "-m",
                "localdev.dns_server",
                "--host",
                HOST,
                "--port",
                str(cfg.ports["dns"]),
                "--control-port",
                str(cfg.ports["dns_control"]),
                "--state-file",
                str(cfg.var_dir / "dns-records.json"),
            ],
            base_env,
            ready=lambda: http_ok(cfg.url("dns_control", "/health")),
        )
        self._wait_ready([moto, dns])

        self.say("migrating the database and creating the local AWS resources")
        setup = self._bootstrap(base_env)
        env = {
            **base_env,
            "VEDOMAINS_CDN_TEMPLATE_DISTRIBUTION_ID": setup["template_distribution_id"],
            "VEDOMAINS_CDN_MULTI_TENANT_DISTRIBUTION_ID": setup["multi_tenant_distribution_id"],
            "VEDOMAINS_CDN_CONNECTION_GROUP_ID": setup["connection_group_id"],
        }
        self._wire_saas_manager(setup, base_env)

        self.say("starting the web server, Celery worker and beat, demo origin and edge proxy")
        py = sys.executable
        web = self._spawn(
            "web",
            [
                py,
                "-m",
                "gunicorn",
                "localdev.wsgi:application",
                "--bind",
                f"{HOST}:{cfg.ports['web']}",
                "--workers",
                "1",
                "--worker-class",
                "gthread",
                "--threads",
                str(cfg.web_threads),
                "--graceful-timeout",
                "5",
                "--timeout",
                "120",
                "--access-logfile",
                "-",
                "--error-logfile",
                "-",
            ],
            env,
            ready=lambda: http_ok(cfg.url("web", "/admin/login/")),
        )
        worker_log = cfg.log_dir / "worker.log"
        worker = self._spawn(
            "worker",
            [
                py,
                "-m",
                "celery",
                "-A",
                "vedomains_site",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={cfg.worker_concurrency}",
                "--pool=prefork",
                "--without-gossip",
                "--without-mingle",
                "--hostname=vedomains-local@%h",
            ],
            env,
            ready=log_contains(worker_log, b" ready."),
        )
        beat_log = cfg.log_dir / "beat.log"
        beat = self._spawn(
            "beat",
            [
                py,
                "-m",
                "celery",
                "-A",
                "vedomains_site",
                "beat",
                "--loglevel=INFO",
                "--schedule",
                str(cfg.var_dir / "celerybeat-schedule"),
            ],
            env,
            ready=log_contains(beat_log, b"beat: Starting"),
        )
        origin = self._spawn(
            "origin",
            [
                py,
                "-m",
                "localdev.demo_origin",
                "--host",
                HOST,
                "--port",
                str(cfg.ports["origin"]),
            ],
            env,
            ready=lambda: http_ok(cfg.url("origin", "/__origin/requests")),
        )
        edge_env = {
            **env,
            # The function maps AWS_REGION to its nearest replica; moto has no
            # global tables, so "run" in the table's home region.
            "AWS_REGION": env.get("VEDOMAINS_AWS_REGION", "us-east-1"),
        }
        edge = self._spawn(
            "edge",
            [
                py,
                "-m",
                "localdev.edge_proxy",
                "--host",
                HOST,
                "--port",
                str(cfg.ports["edge"]),
                "--origin",
                cfg.url("origin", "").rstrip("/"),
                "--config",
                setup["edge_config"],
            ],
            edge_env,
            ready=lambda: tcp_open(cfg.ports["edge"]),
        )
        self._wait_ready([web, worker, beat, origin, edge])

        self.summary = self._summarize(setup, env)
        if cfg.summary_file is not None:
            _write_private(cfg.summary_file, self.summary)
        # For `./dev manage` in another shell: the same local AWS, DNS and database.
        _write_private(cfg.stack_file, stack_file_content(env, self.summary))
        return self.summary

    def _base_env(self, moto_url: str) -> dict[str, str]:
        cfg = self.config
        env = dict(os.environ)
        # Never let a developer's real AWS profile or session reach a child.
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.pop(key, None)
        for key, value in LOCAL_SETTING_DEFAULTS.items():
            env.setdefault(key, value)
        env.update(aws_env(moto_url))
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "vedomains_site.settings",
                # The insecure development secret key is accepted only with DEBUG.
                "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG", "true"),
                "PYTHONUNBUFFERED": "1",
                "CELERY_BROKER_URL": cfg.broker_url,
                "CELERY_BROKER_KEY_PREFIX": cfg.broker_key_prefix,
                "VEDOMAINS_AWS_ENDPOINT_URL": moto_url,
                "VEDOMAINS_DNS_NAMESERVERS": f"{HOST}:{cfg.ports['dns']}",
                "VEDOMAINS_LOCAL_DNS_CONTROL_URL": cfg.url("dns_control", "").rstrip("/"),
            }
        )
        if cfg.database_url:
            env["DATABASE_URL"] = cfg.database_url
        env.update(cfg.extra_env)
        return env

    def _spawn(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        *,
        ready: Callable[[], bool] | None = None,
        stdout_path: Path | None = None,
    ) -> ManagedProcess:
        if self._stopping:
            raise Interrupted("stopped during start-up")
        process = ManagedProcess(
            name,
            argv,
            env=env,
            log_path=self.config.log_dir / f"{name}.log",
            ready=ready,
            stdout_path=stdout_path,
        )
        self.processes.append(process)
        return process.start()

    def _wait_ready(self, processes: list[ManagedProcess]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        pending = list(processes)
        while pending:
            if self._stopping:
                raise Interrupted("stopped during start-up")
            for process in list(pending):
                code = process.exited()
                if code is not None:
                    raise StackError(
                        f"{process.name} exited during start-up (code {code}); see "
                        f"{process.log_path}:\n{process.log_tail()}"
                    )
                if process.ready is None or process.ready():
                    pending.remove(process)
            if pending and time.monotonic() > deadline:
                names = ", ".join(p.name for p in pending)
                raise StackError(
                    f"not ready within {READY_TIMEOUT:.0f}s: {names}; see "
                    f"{self.config.log_dir}:\n{pending[0].log_tail()}"
                )
            time.sleep(POLL)

    def _ensure_redis(self) -> None:
        cfg = self.config
        if redis_answers(cfg.broker_url):
            return
        url = urlsplit(cfg.broker_url)
        local = url.scheme == "redis" and url.hostname in ("127.0.0.1", "localhost")
        server = shutil.which("redis-server")
        if not (local and server):
            raise StackError(
                f"Redis does not answer at {cfg.broker_url} (CELERY_BROKER_URL)"
                + ("" if local else "; it is not local, so it cannot be started here")
                + (
                    ""
                    if server or not local
                    else "; install redis-server (apt-get install redis-server) or run ./dev run"
                )
            )
        port = url.port or 6379
        self.say(f"starting Redis on {HOST}:{port} (none answered at {cfg.broker_url})")
        redis_proc = self._spawn(
            "redis",
            [
                server,
                "--bind",
                HOST,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(cfg.var_dir),
            ],
            os.environ,
            ready=lambda: redis_answers(cfg.broker_url),
        )
        self._wait_ready([redis_proc])

    def _bootstrap(self, env: Mapping[str, str]) -> dict[str, Any]:
        result_path = self.config.log_dir / "bootstrap.json"
        result_path.unlink(missing_ok=True)
        process = self._spawn(
            "bootstrap",
            [
                sys.executable,
                "-m",
                "localdev.bootstrap",
                "setup",
                "--var-dir",
                str(self.config.var_dir),
            ],
            env,
            stdout_path=result_path,
        )
        try:
            if not _wait_until(
                lambda: self._stopping or process.exited() is not None, BOOTSTRAP_TIMEOUT
            ):
                raise StackError(
                    f"set-up took over {BOOTSTRAP_TIMEOUT:.0f}s; see {process.log_path}"
                )
            if self._stopping:
                raise Interrupted("stopped during start-up")
            if process.exited() != 0:
                raise StackError(
                    f"set-up failed (migrations or local AWS); see "
                    f"{process.log_path}:\n{process.log_tail()}"
                )
            return dict(json.loads(result_path.read_text(encoding="utf-8").splitlines()[-1]))
        finally:
            process.stop()
            self.processes.remove(process)

    def _wire_saas_manager(self, setup: dict[str, Any], env: Mapping[str, str]) -> None:
        """Point the CNAME target at the connection group, and the emulator at DNS and edge.

        As deploy/saas-manager.yaml does in Route 53: domain.ve.ai -> the routing endpoint,
        whose address stands for CloudFront's edge (the edge proxy). The emulator then
        validates managed certificates through this DNS server and the edge proxy.
        """
        cfg = self.config
        control = DNSControl(cfg.url("dns_control", "").rstrip("/"))
        control.set(setup["routing_endpoint"], "A", HOST)
        control.set(env.get("VEDOMAINS_CNAME_TARGET", "domain.ve.ai"), "CNAME",
                    setup["routing_endpoint"])
        body = json.dumps({
            "dns_server": f"{HOST}:{cfg.ports['dns']}",
            "edge_proxy": f"{HOST}:{cfg.ports['edge']}",
            "edge_ips": [HOST],
            "deploy_seconds": float(env.get("VEDOMAINS_LOCAL_DEPLOY_SECONDS", "")
                                    or DEFAULT_DEPLOY_SECONDS),
        }).encode()
        request = urllib.request.Request(
            cfg.url("moto", "/_localdev/cloudfront/config"), data=body, method="POST",
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def _summarize(self, setup: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
        cfg = self.config
        return {
            "urls": {
                "admin": cfg.url("web", "/admin/"),
                "api": cfg.url("web", "/api/domains/"),
                "api_docs": cfg.url("web", "/api/docs/"),
                "edge": cfg.url("edge"),
                "origin": cfg.url("origin"),
                "dns": f"{HOST}:{cfg.ports['dns']}",
                "dns_control": cfg.url("dns_control", "").rstrip("/"),
                "moto": cfg.url("moto", "").rstrip("/"),
            },
            "ports": dict(cfg.ports),
            "admin": setup["admin"],
            "demo": setup["demo"],
            "template_distribution_id": setup["template_distribution_id"],
            "multi_tenant_distribution_id": setup["multi_tenant_distribution_id"],
            "connection_group_id": setup["connection_group_id"],
            "routing_endpoint": setup["routing_endpoint"],
            "edge_config": setup["edge_config"],
            "settings": {k: env[k] for k in LOCAL_SETTING_DEFAULTS},
            "database": env.get("DATABASE_URL") or f"sqlite:///{ROOT / 'var' / 'db.sqlite3'}",
            "broker": cfg.broker_url,
            "log_dir": str(cfg.log_dir),
            "pids": {p.name: p.pid for p in self.processes},
        }

    # Running and stopping.

    def supervise(self) -> int:
        """Block until asked to stop (0) or until a child dies (1)."""
        while not self._stopping:
            for process in self.processes:
                code = process.exited()
                if code is not None:
                    print(
                        f"localdev: {process.name} exited unexpectedly (code {code}); "
                        f"stopping everything. Last lines of {process.log_path}:\n"
                        f"{process.log_tail()}",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
            time.sleep(0.5)
        return 0

    def stop(self) -> None:
        """Stop every child, last started first. Idempotent; safe after a failed start."""
        self._stopping = True
        if self.summary:
            # Only a stack that wrote the file removes it (a failed start must not delete
            # the file of another stack running on the same var/).
            self.config.stack_file.unlink(missing_ok=True)
        # Ask every leader first so they shut down in parallel, then collect them in order.
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


def keep_previous_logs(log_dir: Path) -> None:
    """The last run's logs move to log.prev/ (replacing the run before): a crash is still
    there to read after the restart that followed it."""
    if not log_dir.is_dir() or not any(log_dir.iterdir()):
        return
    previous = log_dir.with_name(log_dir.name + ".prev")
    if previous.exists():
        shutil.rmtree(previous)
    log_dir.rename(previous)


def stack_file_content(env: Mapping[str, str], summary: Mapping[str, Any]) -> dict[str, Any]:
    values = {key: env[key] for key in MANAGE_ENV_KEYS if env.get(key)}
    # Spelled out even for the SQLite default, so a DATABASE_URL in the reader's shell
    # cannot point the command at another database than the stack's.
    values["DATABASE_URL"] = summary["database"]
    # The children's pids (each the leader of its process group), for `./dev status`.
    return {"pid": os.getpid(), "moto": summary["urls"]["moto"], "env": values,
            "pids": dict(summary.get("pids") or {})}


def _write_private(path: Path, content: Mapping[str, Any]) -> None:
    # Readable by this user only (it names the database and the broker), and replaced in
    # one step so a reader never sees half a file.
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=2)
    tmp.replace(path)


def banner(summary: Mapping[str, Any], config: StackConfig) -> str:
    urls, admin, demo = summary["urls"], summary["admin"], summary["demo"]
    limits = summary["settings"]
    rate_limits = (
        f"register {limits['VEDOMAINS_THROTTLE_REGISTER_USER']} per user, "
        f"{limits['VEDOMAINS_THROTTLE_REGISTER_WORKSPACE']} per workspace; "
        f"verify {limits['VEDOMAINS_THROTTLE_VERIFY_USER']} per user, "
        f"{limits['VEDOMAINS_THROTTLE_VERIFY_WORKSPACE']} per workspace"
    )
    if admin.get("password"):
        login = f"user {admin['username']}, password {admin['password']}"
        if admin.get("created"):
            login += f"  (new; kept in {admin['file']})"
    else:
        login = (
            f"user {admin['username']}; password not known here: set one with "
            "`python manage.py changepassword admin`"
        )
    control_hint = ""
    if urls["dns_control"] != "http://127.0.0.1:5380":
        control_hint = (
            f"\n               (in other shells: export "
            f"VEDOMAINS_LOCAL_DNS_CONTROL_URL={urls['dns_control']})"
        )
    register = (
        f"curl -s -H 'Authorization: Token {demo['token']}' -H 'Content-Type: application/json' "
        f'-d \'{{"hostname": "gallery.example.com", "workspace": "{demo["workspace"]}"}}\' '
        f"{urls['api']}"
    )
    # manage.py needs DJANGO_DEBUG for the development secret key, in a shell of its own.
    add_cname = (
        "./dev manage local_dns set gallery.example.com "
        "CNAME domain.ve.ai"
    )
    pids = ", ".join(f"{name} {pid}" for name, pid in dict(summary.get("pids") or {}).items()
                     if pid is not None)
    return f"""
vedomains is running on this machine. Ctrl-C stops everything.

  Admin        {urls["admin"]}   {login}
  API          {urls["api"]}
  API docs     {urls["api_docs"]}
  Edge proxy   {urls["edge"]}   (curl -H 'Host: gallery.example.com' {urls["edge"]})
  Demo origin  {urls["origin"]}
  DNS          {urls["dns"]} (UDP+TCP), control API {urls["dns_control"]}{control_hint}
  Local AWS    {urls["moto"]} (moto, and the CloudFront SaaS Manager emulation)

  Demo workspace "{demo["workspace"]}" (plan {demo["plan"]}), owner {demo["username"]},
  API token {demo["token"]}

  Rate limits  {rate_limits}
               (development values; production's defaults are in .env.example)

  Register a domain:  {register}
  Add its CNAME:      {add_cname}
  Logs:               {summary["log_dir"]}/
  Processes:          supervisor {os.getpid()}; {pids}  (`./dev status` lists them)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localdev.stack", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--var-dir", type=Path, help="state and logs (default var/, or VEDOMAINS_LOCAL_VAR_DIR)"
    )
    parser.add_argument(
        "--summary-file", type=Path, help="write URLs, credentials and pids here as JSON once ready"
    )
    args = parser.parse_args(argv)

    try:
        config = StackConfig.from_env(var_dir=args.var_dir, summary_file=args.summary_file)
    except StackError as exc:
        print(f"localdev: {exc}", file=sys.stderr)
        return 1
    stack = Stack(config)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stack.request_stop()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    code = 0
    try:
        summary = stack.start()
        print(banner(summary, config), flush=True)
        code = stack.supervise()
    except Interrupted:
        code = 0
    except StackError as exc:
        print(f"localdev: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        print("==> stopping", flush=True)
        stack.stop()
        print("==> stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
