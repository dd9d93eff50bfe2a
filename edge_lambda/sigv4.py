"""AWS Signature Version 4 on the standard library (hmac, hashlib), as botocore signs.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
edge_lambda/tests/test_dynamodb_client.py holds it to botocore's signer and to the
published test vectors (tests/sigv4_vectors/).
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from collections.abc import Mapping


def _canonical_path(path: str) -> str:
    """botocore's canonical URI: dot segments and repeated slashes removed, then quoted."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    normalized = "/".join(segments)
    if path.startswith("/"):
        normalized = "/" + normalized
    if path.endswith("/") and segments:
        normalized += "/"
    return urllib.parse.quote(normalized or "/", safe="/~")


def sigv4_signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    key = hmac.digest(("AWS4" + secret_key).encode(), date.encode(), "sha256")
    key = hmac.digest(key, region.encode(), "sha256")
    key = hmac.digest(key, service.encode(), "sha256")
    return hmac.digest(key, b"aws4_request", "sha256")


def sigv4_canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], payload_sha256: str
) -> tuple[str, str]:
    """(canonical request, signed header list) for a request signing every header given.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
    `query` is the canonical query string (empty for the JSON protocol).
    """
    canonical: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower().strip()
        trimmed = " ".join(value.split())
        canonical[key] = f"{canonical[key]},{trimmed}" if key in canonical else trimmed
    names = sorted(canonical)
    signed = ";".join(names)
    lines = "".join(f"{name}:{canonical[name]}\n" for name in names)
    request = "\n".join(
        (method.upper(), _canonical_path(path), query, lines, signed, payload_sha256)
    )
    return request, signed


def sigv4_string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{digest}"


def sigv4_authorization(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    payload_sha256: str,
    access_key: str,
    signing_key: bytes,
    amz_date: str,
    region: str,
    service: str,
) -> str:
    """The Authorization header value (AWS4-HMAC-SHA256) for a request made at `amz_date`."""
    request, signed = sigv4_canonical_request(method, path, query, headers, payload_sha256)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = sigv4_string_to_sign(amz_date, scope, request)
    signature = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
