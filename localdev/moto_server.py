"""Start moto in server mode (a real HTTP endpoint boto3 talks to) in a subprocess.

    with start_moto() as moto:
        client = boto3.client("acm", endpoint_url=moto.endpoint_url, ...)
        # or: os.environ.update(aws_env(moto.endpoint_url))

A subprocess rather than moto's in-process ThreadedMotoServer, so tests can stop and
restart the endpoint (a real outage: connections refused) and the app's own boto3
clients see exactly what they would see against AWS: HTTP on a port.

How the port is held: the parent binds and listens on the port itself and hands the
socket to the child through werkzeug's own socket-inheritance mechanism
(WERKZEUG_RUN_MAIN / WERKZEUG_SERVER_FD, what its reloader uses). "Bind to 0, release,
let the child bind" would leave a window in which another process (e.g. a parallel
xdist worker starting its own moto) takes the port, and our readiness probe would then
be answered by the wrong server. Passing the bound socket closes that window.

Run standalone with `python -m localdev.moto_server --port 5000`.
"""

from __future__ import annotations

import argparse
import atexit
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType, TracebackType
from typing import Final, Self

STARTUP_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 10.0
_PROBE_PATH: Final = "/moto-api/"
_RESET_PATH: Final = "/moto-api/reset"


class MotoStartError(RuntimeError):
    pass


def aws_env(endpoint_url: str) -> dict[str, str]:
    """Environment variables that point boto3 (>= 1.28, AWS_ENDPOINT_URL) at moto."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Lets restart() rebind the same port while old connections sit in TIME_WAIT;
        # Linux still refuses a second listener on it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


class MotoHandle:
    """A running moto server subprocess. Stop it with `stop()` or a `with` block."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        acm_validation_wait: int,
        extra_env: dict[str, str] | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
        inherit_output: bool = False,
    ) -> None:
        self.host = host
        self.inherit_output = inherit_output
        self.port = port
        self.acm_validation_wait = acm_validation_wait
        self.startup_timeout = startup_timeout
        self._extra_env = dict(extra_env or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path | None:
        """moto's stdout/stderr, kept while it runs (for debugging a failing test)."""
        return self._log_path

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        with self._lock:
            if self.is_running():
                raise RuntimeError(f"moto is already running on {self.endpoint_url}")
            try:
                sock = _listen(self.host, self.port)
            except OSError as exc:
                raise MotoStartError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
            self.port = sock.getsockname()[1]
            try:
                self._spawn(sock)
            finally:
                # The child has its own copy; ours must go, or a stopped moto would
                # leave connections queueing on our socket instead of being refused.
                sock.close()
            self._wait_until_ready()
            atexit.register(self.stop)
            return self

    def _spawn(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        env = os.environ.copy()
        env.update(self._extra_env)
        env.update(
            {
                # moto reads this with int(): fractional seconds would crash it.
                "MOTO_ACM_VALIDATION_WAIT": str(self.acm_validation_wait),
                # moto builds some URLs from MOTO_PORT; an inherited value would be wrong.
                "MOTO_PORT": str(self.port),
                "WERKZEUG_RUN_MAIN": "true",
                "WERKZEUG_SERVER_FD": str(fd),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.inherit_output:
            # Standalone (`./dev run`): moto's requests and errors go where ours go, i.e.
            # var/log/moto.log, not to a temporary file deleted at exit.
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
                env=env, pass_fds=(fd,), stdin=subprocess.DEVNULL,
            )
            return
        log_fd, log_name = tempfile.mkstemp(prefix=f"moto-{self.port}-", suffix=".log")
        self._log_path = Path(log_name)
        with os.fdopen(log_fd, "wb") as log_file:
            self._process = subprocess.Popen(
                # moto plus the CloudFront SaaS Manager emulation (localdev.saas_manager).
                [sys.executable, "-m", "localdev.aws_endpoint", "-H", self.host, "-p",
                 str(self.port)],
                env=env,
                # `-m localdev.aws_endpoint` must find the repository whatever our cwd.
                cwd=Path(__file__).resolve().parent.parent,
                pass_fds=(fd,),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                self._fail("moto exited during start-up")
            try:
                with urllib.request.urlopen(self.endpoint_url + _PROBE_PATH, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self._fail(f"moto did not answer within {self.startup_timeout:.0f}s")

    def _fail(self, reason: str) -> None:
        log_tail = ""
        if self._log_path is not None and self._log_path.exists():
            log_tail = self._log_path.read_text(errors="replace")[-2000:]
        self._terminate()
        raise MotoStartError(f"{reason} on {self.endpoint_url}. Output:\n{log_tail}")

    def stop(self) -> None:
        """Stop moto and wait until the port refuses connections. Idempotent."""
        with self._lock:
            self._terminate()
            atexit.unregister(self.stop)

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()  # moto's server exits cleanly on SIGTERM
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def restart(self) -> Self:
        """Stop and start again on the same port, with empty state (moto keeps none)."""
        self.stop()
        return self.start()

    def saas_configure(self, **changes: object) -> dict[str, object]:
        """Change the SaaS Manager emulator's knobs (deploy delay, quotas, DNS, edge)."""
        request = urllib.request.Request(
            self.endpoint_url + "/_localdev/cloudfront/config", method="POST",
            data=json.dumps(changes).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read()))

    def saas_calls(self) -> dict[str, int]:
        """SaaS Manager operations served since the last reset, by name."""
        with urllib.request.urlopen(self.endpoint_url + "/_localdev/cloudfront/calls",
                                    timeout=10) as response:
            return dict(json.loads(response.read()))

    def reset(self) -> None:
        """Drop every resource in every moto backend (POST /moto-api/reset)."""
        request = urllib.request.Request(self.endpoint_url + _RESET_PATH, data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 200:
                raise RuntimeError(f"moto reset failed: HTTP {response.status}")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_moto(
    port: int = 0,
    host: str = "127.0.0.1",
    acm_validation_wait: int = 1,
    *,
    extra_env: dict[str, str] | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
    inherit_output: bool = False,
) -> MotoHandle:
    """Start moto server on `host:port` (0 = a free port) and wait until it answers.

    `acm_validation_wait`: whole seconds before a requested ACM certificate turns from
    PENDING_VALIDATION to ISSUED (moto checks `elapsed > wait` when it is described).
    """
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"host {host!r} must be a loopback IP address such as 127.0.0.1")
    if isinstance(acm_validation_wait, bool) or not isinstance(acm_validation_wait, int):
        raise TypeError("acm_validation_wait must be whole seconds (moto parses it with int())")
    if acm_validation_wait < 0:
        raise ValueError("acm_validation_wait must not be negative")
    handle = MotoHandle(
        host=host,
        port=port,
        acm_validation_wait=acm_validation_wait,
        extra_env=extra_env,
        startup_timeout=startup_timeout,
        inherit_output=inherit_output,
    )
    return handle.start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localdev.moto_server", description="Run moto server for local use."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 = pick a free port")
    parser.add_argument("--acm-validation-wait", type=int, default=5, help="seconds")
    args = parser.parse_args(argv)
    try:
        moto = start_moto(args.port, args.host, args.acm_validation_wait, inherit_output=True)
    except (MotoStartError, ValueError, TypeError) as exc:
        print(f"moto failed to start: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"moto: {moto.endpoint_url} (pid {moto.pid}; its log follows)", flush=True)
    try:
        while not stop.wait(0.5):
            if not moto.is_running():
                print("moto exited unexpectedly", file=sys.stderr)
                return 1
    finally:
        moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
