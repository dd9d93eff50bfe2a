"""PostgreSQL that reads a rotated password at each new connection (ENGINE
"vedomains_site.db.backend"; settings.py selects it when a password source is set).

A connection refused for its password (SQLSTATE 28P01) is retried once with the password
read again, and, for Secrets Manager, with the AWSPENDING version too: during a rotation the
new password is set in the database before it becomes AWSCURRENT.
https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda-functions.html
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.db.backends.postgresql import base

from vedomains_site.db import credentials

_AUTH_FAILED = "28P01"


class DatabaseWrapper(base.DatabaseWrapper):
    def _source(self) -> dict[str, Any]:
        return dict(self.settings_dict["OPTIONS"].get("password_source") or {})

    def get_connection_params(self) -> dict[str, Any]:
        params = dict(super().get_connection_params())
        params.pop("password_source", None)
        source = self._source()
        if source:
            params["password"] = credentials.current_password(source)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        source = self._source()
        try:
            return super().get_new_connection(conn_params)
        except psycopg.OperationalError as exc:
            if not source or not _auth_failed(exc):
                raise
            stages = ["AWSCURRENT", "AWSPENDING"] if source.get("secret_arn") else [
                "AWSCURRENT"]
            for stage in stages:
                try:
                    password = credentials.current_password(source, stage=stage, fresh=True)
                except Exception:  # noqa: BLE001 - no AWSPENDING outside a rotation
                    continue
                if password == conn_params.get("password"):
                    continue
                try:
                    return super().get_new_connection({**conn_params, "password": password})
                except psycopg.OperationalError as again:
                    if not _auth_failed(again):
                        raise
            raise


def _auth_failed(exc: psycopg.OperationalError) -> bool:
    # psycopg gives no SQLSTATE for a refused login (the error comes before a session), so
    # the server's message is what tells a wrong password from an unreachable server.
    state = getattr(getattr(exc, "diag", None), "sqlstate", None)
    text = str(exc)
    return state == _AUTH_FAILED or "password authentication failed" in text
