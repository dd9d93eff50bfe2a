"""Test helpers for the ve.ai integration: the main app's side, played for real.

- `JwksServer`: a real HTTP server on 127.0.0.1 serving a JWK Set that a test can change
  (rotate keys) while it runs, counting how often it is fetched.
- `MainAppKeys`: key pairs and tokens signed the way the main app signs them.
- `signed_request`: the main app's server calling the sync API with an HMAC signature.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from rest_framework.test import APIClient

from domains.integrations import main_app_tokens

ROOT = Path(__file__).resolve().parents[2]


def _reference_client() -> ModuleType:
    """docs/examples/veai_sync_client.py, the client the docs give the main app: the tests
    sign with it, so the documented client and the server cannot drift apart."""
    path = ROOT / "docs" / "examples" / "veai_sync_client.py"
    spec = importlib.util.spec_from_file_location("veai_sync_client", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("veai_sync_client", module)
    spec.loader.exec_module(module)
    return module


sync_client = _reference_client()
SIGNATURE_META = "HTTP_" + sync_client.HEADER.upper().replace("-", "_")

ISSUER = "https://ve.ai.test"
ISSUER_ID = "ve.ai"  # VEDOMAINS_JWT_ISSUER_ID's default: identities are stored under it
AUDIENCE = "vedomains"
SERVICE_SECRET = "svc_test_" + "k" * 40


class SigningKey:
    def __init__(self, kind: str = "RSA") -> None:
        self.kid = f"{kind.lower()}-{uuid.uuid4().hex[:8]}"
        if kind == "RSA":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.alg = "RS256"
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.alg = "ES256"
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        self.public_jwk = {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}

    def token(self, subject: str = "user-1", *, issuer: str = ISSUER, audience: str = AUDIENCE,
              expires_in: int = 300, issued_ago: int = 0, kid: str | None = None,
              **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": issuer, "aud": audience, "sub": subject, "iat": now - issued_ago,
                   "exp": now + expires_in, **claims}
        return jwt.encode(payload, self.private, algorithm=self.alg,
                          headers={"kid": kid or self.kid})


class JwksServer:
    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.raw_body: bytes | None = None  # served instead of the key set when set
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                body = server.raw_body or json.dumps({"keys": list(server.keys)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def publish(self, *keys: SigningKey) -> None:
        self.keys = [k.public_jwk for k in keys]

    def start(self) -> JwksServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks(settings: Any) -> Iterator[JwksServer]:
    """A JWKS on loopback with one RSA key published, and the app configured to use it."""
    server = JwksServer().start()
    settings.VEDOMAINS_JWT_JWKS_URL = server.url
    settings.VEDOMAINS_JWT_PUBLIC_KEY = ""
    settings.VEDOMAINS_JWT_ISSUER = ISSUER
    settings.VEDOMAINS_JWT_AUDIENCE = AUDIENCE
    settings.VEDOMAINS_JWKS_REFETCH_COOLDOWN_SECONDS = 30
    main_app_tokens.reset_clients()
    try:
        yield server
    finally:
        server.stop()
        main_app_tokens.reset_clients()


@pytest.fixture
def main_key(jwks: JwksServer) -> SigningKey:
    key = SigningKey("RSA")
    jwks.publish(key)
    return key


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def service_secret(settings: Any) -> str:
    settings.VEDOMAINS_SERVICE_SECRETS = [SERVICE_SECRET]
    return SERVICE_SECRET


def signed_request(method: str, path: str, body: dict[str, Any] | None = None, *,
                   secret: str = SERVICE_SECRET, timestamp: int | None = None,
                   client: APIClient | None = None) -> Any:
    """Call the sync API as the main app's server does: JSON body, HMAC signature header."""
    raw = json.dumps(body).encode() if body is not None else b""
    ts = int(time.time()) if timestamp is None else timestamp
    signature = sync_client.sign(secret, ts, method, path, raw)
    client = client or APIClient()
    return client.generic(method, path, raw, content_type="application/json",
                          **{SIGNATURE_META: signature})
