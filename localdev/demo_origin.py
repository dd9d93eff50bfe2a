"""A tiny origin for the local stack: it shows which workspace the edge asked it for.

The edge function tags every request it lets through with a `workspace-id` header; this
server answers with a page (or JSON, for `Accept: application/json` or `?format=json`)
naming that workspace and the host the viewer asked for. A request without the header
did not come through the edge and gets a 400 saying so, as a real ve.ai origin would
refuse to guess a workspace.

It also remembers the last requests it received, readable at `GET /__origin/requests`
(only without a `workspace-id` header, i.e. asked directly, not through the edge), so
tests can prove that a request the edge refused never reached the origin.

Run standalone with `python -m localdev.demo_origin --port 8081`.
"""

from __future__ import annotations

import argparse
import html
import json
import signal
import sys
import threading
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

WORKSPACE_HEADER: Final = "workspace-id"
REQUEST_LOG_PATH: Final = "/__origin/requests"
REQUEST_LOG_SIZE: Final = 500


class DemoOriginServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self._lock = threading.Lock()
        self._requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def remember(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(entry)

    def requests_seen(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)


class _Handler(BaseHTTPRequestHandler):
    server: DemoOriginServer
    protocol_version = "HTTP/1.1"
    server_version = "vedomains-demo-origin"

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"demo-origin: {self.address_string()} {format % args}\n")

    def _answer(self, *, head: bool = False) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # drained so the connection can be reused
        url = urlsplit(self.path)
        workspace = self.headers.get(WORKSPACE_HEADER)
        if url.path == REQUEST_LOG_PATH and workspace is None:
            self._send(
                HTTPStatus.OK,
                "application/json",
                json.dumps({"requests": self.server.requests_seen()}),
                head=head,
            )
            return
        info = {
            "workspace": workspace,
            # The viewer's host: the edge sends the origin its own name as Host.
            "host": self.headers.get("X-Forwarded-Host") or self.headers.get("Host", ""),
            "forwarded_host": self.headers.get("X-Forwarded-Host"),
            "method": self.command,
            "path": url.path,
            "query": url.query,
            "via": self.headers.get("Via"),
        }
        self.server.remember(info)
        status = HTTPStatus.OK if workspace else HTTPStatus.BAD_REQUEST
        wants_json = "json" in parse_qs(url.query).get("format", []) or (
            "application/json" in (self.headers.get("Accept") or "")
        )
        if wants_json:
            body = json.dumps(info, indent=2) + "\n"
            self._send(status, "application/json", body, head=head)
        else:
            self._send(status, "text/html; charset=utf-8", _page(info), head=head)

    def _send(self, status: HTTPStatus, content_type: str, body: str, *, head: bool) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        # Pages differ per workspace: never let a cache in front share them.
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(data)


def _page(info: dict[str, Any]) -> str:
    esc = {k: html.escape(str(v)) for k, v in info.items() if v is not None}
    if not info["workspace"]:
        headline = "No workspace-id header: this request did not come through the edge."
    else:
        headline = f"Workspace <strong>{esc['workspace']}</strong>"
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td><code>{v}</code></td></tr>" for k, v in esc.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>ve.ai demo origin</title>"
        "</head><body style='font-family: sans-serif'>"
        f"<h1>{headline}</h1><p>asked for host <code>{esc.get('host', '')}</code></p>"
        f"<table>{rows}</table></body></html>\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localdev.demo_origin", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    try:
        server = DemoOriginServer((args.host, args.port))
    except OSError as exc:
        print(f"demo origin failed to start on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # shutdown() blocks until serve_forever returns, so it cannot run on this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"demo origin: http://{args.host}:{server.port}/", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
