"""The environment reader the settings share, and the Redis AUTH token.

`env` is django-environ's reader with one difference: a value it cannot parse (`abc` for a
number, `maybe` for a flag, broken JSON) stops start-up with the variable's name instead of
a bare ValueError, or instead of silently reading a flag as false, `2h` as 2.0 and
`6.048e5` as 6.0485 (numbers are read by `float` itself).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

_FLAG_WORDS = {"true", "false", "on", "off", "yes", "no", "y", "n", "ok", "1", "0", ""}
# Shown in the message: numbers and flags are never secrets; other values may be.
_SHOWN = {int: "a whole number", float: "a number", bool: "true or false"}


class _Env(environ.Env):
    def get_value(self, var: str, cast: Any = None, default: Any = environ.Env.NOTSET,
                  parse_default: bool = False) -> Any:
        raw = self.ENVIRON.get(var)
        if cast is bool and raw is not None and raw.strip().lower() not in _FLAG_WORDS:
            raise ImproperlyConfigured(f"{var} is {raw[:40]!r}, which is not true or false.")
        if cast is float and raw is not None:
            # Read here, not by django-environ, which drops every character that is not a
            # digit, "," "." or "-": "2h" would read as 2.0 and "6.048e5" as 6.0485 (a grace
            # period of seconds instead of a week). With every duration in seconds, a unit
            # typed by habit must not pass either.
            try:
                value = float(raw)
            except ValueError:
                raise ImproperlyConfigured(
                    f"{var} is {raw[:40]!r}, which is not a number.") from None
            if not math.isfinite(value):
                raise ImproperlyConfigured(f"{var} is {raw[:40]!r}, which is not a finite number.")
            return value
        try:
            return super().get_value(var, cast=cast, default=default,
                                     parse_default=parse_default)
        except ValueError as exc:
            if cast in _SHOWN:
                raise ImproperlyConfigured(
                    f"{var} is {str(raw)[:40]!r}, which is not {_SHOWN[cast]}.") from exc
            raise ImproperlyConfigured(f"{var} cannot be read: {exc}") from exc


env = _Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

# ElastiCache AUTH token (deploy/control-plane.yaml injects it from Secrets Manager). It is
# added to every redis:// or rediss:// URL that names no password of its own, so the URLs
# themselves stay free of secrets.
REDIS_PASSWORD: str = env.str("REDIS_PASSWORD", default="")


def redis_auth(url: str) -> str:
    parts = urlsplit(url)
    if (not REDIS_PASSWORD or parts.password
            or parts.scheme not in ("redis", "rediss", "rediscache")):
        return url
    netloc = f"{parts.username or ''}:{quote(REDIS_PASSWORD, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))
