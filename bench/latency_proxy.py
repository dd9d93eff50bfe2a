"""A loopback TCP proxy that adds a fixed delay to every request's round trip.

Between the app and moto it stands in for the network to DynamoDB: a few milliseconds per
request that moto on loopback does not have, which is what batching and requests in flight
hide and a one-request-per-item loop pays in full. The same idea as tests/faults.TcpProxy
(the benchmarks do not import tests/): a thread per connection, and the response to each
request held `delay` seconds before it is passed on.
"""

from __future__ import annotations

import contextlib
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast


class LatencyProxy:
    def __init__(self, upstream: tuple[str, int], *, delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.requests = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LatencyProxy:
        self._listener.listen(256)
        self._thread = threading.Thread(target=self._accept, daemon=True, name="latency-proxy")
        self._thread.start()
        return self

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            socks, self._socks = self._socks, set()
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._socks.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        # HTTP/1.1 on one connection is request, response, request...: the first response
        # bytes after request bytes are the moment to add the round trip's delay.
        awaiting = False
        try:
            sel.register(client, selectors.EVENT_READ, upstream)
            sel.register(upstream, selectors.EVENT_READ, client)
            while True:
                for key, _ in sel.select():
                    source = cast(socket.socket, key.fileobj)
                    data = source.recv(262144)
                    if not data:
                        return
                    if source is client:
                        if not awaiting:
                            awaiting = True
                            with self._lock:
                                self.requests += 1
                    elif awaiting:
                        awaiting = False
                        time.sleep(self.delay)
                    key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            sel.close()
            with self._lock:
                self._socks.difference_update((client, upstream))
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()


@dataclass(frozen=True)
class ProxyHandle:
    url: str
    pid: int


@contextlib.contextmanager
def latency_proxy(upstream_url: str, *, delay: float) -> Iterator[ProxyHandle]:
    """A proxy to `upstream_url` (http://127.0.0.1:PORT) for the block, in its own process:
    the network is not in the app's process, so the proxy's work must not take the app's
    GIL or count as the app's CPU."""
    host_port = upstream_url.split("://", 1)[1].rstrip("/")
    proc = subprocess.Popen(
        [sys.executable, __file__, host_port, str(delay)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip() or 0)
        if not port:
            raise RuntimeError("the latency proxy did not start")
        yield ProxyHandle(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str]) -> None:
    """`python bench/latency_proxy.py HOST:PORT DELAY_SECONDS`: prints its port, then serves."""
    host, port = argv[0].rsplit(":", 1)
    proxy = LatencyProxy((host, int(port)), delay=float(argv[1])).start()
    print(proxy.port, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    finally:
        proxy.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
