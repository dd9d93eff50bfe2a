"""The database password, read when a connection is opened rather than once at start.

RDS and Secrets Manager rotate passwords under running tasks; a password read from the
environment at start would make every new connection fail after a rotation until the tasks
restart. The current value is cached briefly (one fetch per process every
DATABASE_PASSWORD_CACHE_SECONDS), and dropped when the server refuses it, so the next
attempt reads it again.

Sources, by setting: DATABASE_PASSWORD_SECRET_ARN (Secrets Manager: a JSON secret with a
`password` key, as RDS and the rotation functions write it, or a plain string),
DATABASE_PASSWORD_FILE (a file holding only the password), else the fixed
DATABASE_PASSWORD / URL password.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

_lock = threading.Lock()


@dataclass
class _Cached:
    password: str
    read_at: float


_cache: dict[tuple[str, str], _Cached] = {}


def secret_string(source: dict[str, Any], stage: str = "AWSCURRENT") -> str:
    client = boto3.session.Session().client(
        "secretsmanager", region_name=source.get("region") or "us-east-1",
        endpoint_url=source.get("endpoint") or None,
        config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 3}))
    return str(client.get_secret_value(SecretId=source["secret_arn"],
                                       VersionStage=stage)["SecretString"])


def _from_secret(source: dict[str, Any], stage: str) -> str:
    value = secret_string(source, stage)
    try:
        parsed = json.loads(value)
    except ValueError:
        return str(value)
    return str(parsed["password"]) if isinstance(parsed, dict) else str(value)


def _read(source: dict[str, Any], stage: str) -> str:
    if source.get("secret_arn"):
        return _from_secret(source, stage)
    return Path(source["file"]).read_text().strip()


def current_password(source: dict[str, Any], *, stage: str = "AWSCURRENT",
                     fresh: bool = False) -> str:
    """The password `source` holds now (cached for source["cache_seconds"])."""
    key = (source.get("secret_arn") or source.get("file") or "", stage)
    with _lock:
        found = _cache.get(key)
        if (not fresh and found is not None
                and time.monotonic() - found.read_at < float(source["cache_seconds"])):
            return found.password
    password = _read(source, stage)
    with _lock:
        _cache[key] = _Cached(password, time.monotonic())
    return password


def forget() -> None:
    with _lock:
        _cache.clear()
