"""A local stand-in for CloudFront + Lambda@Edge in front of the demo origin.

Each HTTP request becomes a CloudFront origin-request (or viewer-request) event in the
documented shape, the REAL `edge_lambda.handler.handler` runs on it in this process
(boto3 reading DynamoDB from moto via `AWS_ENDPOINT_URL`), and then, as CloudFront would:

* a generated response (the edge's 404 for unknown hosts, 503 when DynamoDB is down, a
  redirect domain's 301/308 with its Location) is returned to the viewer as is and the
  origin is never contacted;
* otherwise the request the function returned (headers possibly changed: `workspace-id`
  set, any viewer-sent one stripped, Host maybe rewritten) is forwarded to the origin;
* a function that raises is a 503 and an unusable result a 502, CloudFront's answers:
  https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/http-503-lambda-execution-error.html
  https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/http-502-lambda-validation-error.html

Not emulated: CloudFront's HTTP cache (so every request is a "miss" and runs the
origin-request trigger), TLS, and request bodies inside the event (forwarded unchanged).

The configuration is the edge function's own (`edge_config.json` as `build_edge_lambda`
would bake it), read from `--config`. Run standalone (with AWS_ENDPOINT_URL and
credentials pointing at moto) with

    python -m localdev.edge_proxy --port 8080 --origin http://127.0.0.1:8081 \
        --config var/edge_config.json
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from edge_lambda import handler as edge_handler
from edge_lambda.config import validate_config

ORIGIN_TIMEOUT: Final = 30.0  # CloudFront's default origin response timeout
DISTRIBUTION_ID: Final = "ELOCALEDGE0001"
DISTRIBUTION_DOMAIN: Final = "local-edge.cloudfront.net"
VIA: Final = "1.1 local-edge (vedomains edge proxy)"
TOKEN_PATH_PREFIX: Final = "/.well-known/pki-validation/"
# Hop-by-hop headers (RFC 9110 section 7.6.1) belong to one connection, not the request.
HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    }
)


def cf_headers(pairs: list[tuple[str, str]]) -> dict[str, list[dict[str, str]]]:
    """HTTP headers in CloudFront's event form: lowercase name -> [{key, value}, ...].

    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-event-structure.html
    """
    headers: dict[str, list[dict[str, str]]] = {}
    for key, value in pairs:
        if key.lower() in HOP_BY_HOP or key.lower() == "content-length":
            continue
        headers.setdefault(key.lower(), []).append({"key": key, "value": value})
    return headers


def build_event(
    *,
    method: str,
    target: str,
    header_pairs: list[tuple[str, str]],
    client_ip: str,
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """The CloudFront event for one viewer request (`target` is the request-target)."""
    url = urlsplit(target)
    mode = config.get("mode", edge_handler.ORIGIN_REQUEST)
    pairs = list(header_pairs)
    request: dict[str, Any] = {
        "clientIp": client_ip,
        "method": method,
        "querystring": url.query,
        "uri": url.path or "/",
    }
    if mode == edge_handler.ORIGIN_REQUEST:
        # By origin-request time CloudFront has added these, and it names the origin.
        pairs += [("X-Forwarded-For", client_ip), ("Via", VIA)]
        request["origin"] = {
            "custom": {
                "customHeaders": {},
                "domainName": config.get("origin_domain") or "origin.local",
                "keepaliveTimeout": 5,
                "path": "",
                "port": 443,
                "protocol": "https",
                "readTimeout": 30,
                "sslProtocols": ["TLSv1.2"],
            }
        }
    request["headers"] = cf_headers(pairs)
    return {
        "Records": [
            {
                "cf": {
                    "config": {
                        "distributionDomainName": DISTRIBUTION_DOMAIN,
                        "distributionId": DISTRIBUTION_ID,
                        "eventType": mode,
                        "requestId": uuid.uuid4().hex,
                    },
                    "request": request,
                }
            }
        ]
    }


class EdgeProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, origin: str, config: Mapping[str, Any]) -> None:
        origin_url = urlsplit(origin)
        if origin_url.scheme != "http" or not origin_url.hostname:
            raise ValueError(f"origin must be an http:// URL, got {origin!r}")
        self.origin_host = origin_url.hostname
        self.origin_port = origin_url.port or 80
        self.config = dict(config)
        # Install the config the way the deployed function reads its baked-in JSON; this
        # also gives the function a fresh per-container cache and boto3 client.
        edge_handler.configure(self.config)
        # One Lambda container handles one request at a time, and the function's cache is
        # plain module state: run it under a lock (the origin fetch runs outside it).
        self.function_lock = threading.Lock()
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self.function_lock:
            return edge_handler.handler(event, None)


class _Handler(BaseHTTPRequestHandler):
    server: EdgeProxyServer
    protocol_version = "HTTP/1.1"
    server_version = "CloudFront-local"

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is written by _serve, with the routing decision

    def _serve(self) -> None:
        started = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if (self.command == "GET" and self.path.startswith(TOKEN_PATH_PREFIX)
                and self._validation_token(started)):
            return
        event = build_event(
            method=self.command,
            target=self.path,
            header_pairs=list(self.headers.items()),
            client_ip=self.client_address[0],
            config=self.server.config,
        )
        host = self.headers.get("Host", "")
        try:
            result = self.server.invoke(event)
        except Exception as exc:  # noqa: BLE001 - any function error is CloudFront's 503
            self._log(host, "-", f"function error: {exc!r}", 503, started)
            self._plain(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "503 LambdaExecutionError: the edge function raised.\n",
            )
            return
        if not isinstance(result, dict):
            self._log(host, "-", "function returned no object", 502, started)
            self._plain(HTTPStatus.BAD_GATEWAY, "502 LambdaValidationError.\n")
            return
        if "status" in result:
            self._generated(result, host, started)
        elif "headers" in result and "uri" in result:
            self._forward(result, body, host, started)
        else:
            self._log(host, "-", "function returned neither request nor response", 502, started)
            self._plain(HTTPStatus.BAD_GATEWAY, "502 LambdaValidationError.\n")

    def _validation_token(self, started: float) -> bool:
        """Answer a managed certificate's HTTP validation as CloudFront does, before any function.

        CloudFront serves the token of a tenant whose certificate it validates
        (ValidationTokenHost `cloudfront`); here the SaaS Manager emulator on the AWS
        endpoint knows the tokens. Any other path under the prefix goes to the origin.
        https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/managed-cloudfront-certificates.html
        """
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        host = self.headers.get("Host", "").split(":")[0].lower()
        if not endpoint:
            return False
        query = urlencode({"domain": host, "path": self.path})
        try:
            with urllib.request.urlopen(
                f"{endpoint}/_localdev/cloudfront/validation-token?{query}", timeout=5
            ) as answer:
                location = json.loads(answer.read())["location"]
        except (OSError, ValueError, KeyError):
            return False
        self.send_response(HTTPStatus.FOUND)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self._log(host, "-", "managed certificate validation token", 302, started)
        return True

    def _generated(self, response: dict[str, Any], host: str, started: float) -> None:
        status = int(response["status"])
        raw = response.get("body", "")
        data = (
            base64.b64decode(raw)
            if response.get("bodyEncoding") == "base64"
            else str(raw).encode("utf-8")
        )
        self.send_response(status, response.get("statusDescription"))
        for values in (response.get("headers") or {}).values():
            for header in values:
                if header["key"].lower() not in HOP_BY_HOP | {"content-length"}:
                    self.send_header(header["key"], header["value"])
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Cache", "LambdaGeneratedResponse from local-edge")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self._log(host, "-", "answered by the edge", status, started)

    def _forward(self, request: dict[str, Any], body: bytes, host: str, started: float) -> None:
        tagged = request["headers"].get(edge_handler.WORKSPACE_HEADER) or [{}]
        workspace = tagged[0].get("value")
        query = request.get("querystring")
        target = request["uri"] + (f"?{query}" if query else "")
        conn = http.client.HTTPConnection(
            self.server.origin_host, self.server.origin_port, timeout=ORIGIN_TIMEOUT
        )
        try:
            conn.putrequest(request["method"], target, skip_host=True, skip_accept_encoding=True)
            for values in request["headers"].values():
                for header in values:
                    conn.putheader(header["key"], header["value"])
            if body:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            response = conn.getresponse()
            data = response.read()
        except OSError as exc:
            # CloudFront's answer when it cannot reach the origin.
            self._log(host, workspace, f"origin unreachable: {exc}", 502, started)
            self._plain(HTTPStatus.BAD_GATEWAY, f"502 Bad Gateway: origin unreachable ({exc}).\n")
            return
        finally:
            conn.close()
        # The origin's own Server and Date pass through, as CloudFront relays them.
        self.send_response_only(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP | {"content-length"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Via", VIA)
        self.send_header("X-Cache", "Miss from local-edge")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self._log(host, workspace, "forwarded to origin", response.status, started)

    def _plain(self, status: HTTPStatus, text: str) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _log(
        self, host: str, workspace: str | None, what: str, status: int, started: float
    ) -> None:
        elapsed = (time.monotonic() - started) * 1000
        sys.stderr.write(
            f"edge: {self.command} {host}{self.path} workspace={workspace or '-'} "
            f"{what} -> {status} ({elapsed:.0f} ms)\n"
        )


def load_config(path: Path) -> dict[str, Any]:
    """Read and validate an edge config file (the same JSON the deployed zip carries)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return validate_config(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localdev.edge_proxy", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--origin", default="http://127.0.0.1:8081", help="origin base URL")
    parser.add_argument("--config", type=Path, required=True, help="edge config JSON file")
    args = parser.parse_args(argv)
    if not os.environ.get("AWS_ENDPOINT_URL"):
        print(
            "edge proxy: AWS_ENDPOINT_URL is not set; it would read the real DynamoDB. "
            "Point it at moto (see localdev.moto_server.aws_env).",
            file=sys.stderr,
        )
        return 1
    try:
        config = load_config(args.config)
        server = EdgeProxyServer((args.host, args.port), origin=args.origin, config=config)
    except (OSError, ValueError) as exc:
        print(f"edge proxy failed to start: {exc}", file=sys.stderr)
        return 1

    def on_signal(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(
        f"edge proxy: http://{args.host}:{server.port}/ -> {args.origin} "
        f"({config['mode']}, table {config['table_name']})",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
