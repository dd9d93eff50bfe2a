"""Create (or update) the application's least-privilege database user.

Run by the migration task (`bin/run migrate`), which alone connects as the RDS master user:
web, workers and beat connect as this user, which can read and write rows but cannot create,
alter or drop tables, nor create roles or databases. Idempotent: the role's password is set
to the secret's current value, and the grants are re-applied (tables created by a later
migration are covered by the default privileges as well).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from psycopg import sql

from vedomains_site.db import credentials

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Command(BaseCommand):
    help = "Create or update the app's database role (least privilege) from its secret."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--secret-arn", default="",
                            help="Secrets Manager secret with username and password "
                                 "(default: DATABASE_APP_USER_SECRET_ARN).")
        parser.add_argument("--username", default="", help="Instead of a secret: the role.")
        parser.add_argument("--password-file", default="",
                            help="Instead of a secret: a file holding the role's password.")

    def handle(self, *args: Any, **opts: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("db_app_user needs PostgreSQL (DATABASE_URL).")
        username, password = self._credentials(opts)
        if not ROLE_NAME.match(username):
            raise CommandError(f"username {username!r} is not a plain lowercase role name.")
        if len(password) < 16:
            raise CommandError("the app user's password must have 16 characters or more.")
        role = sql.Identifier(username)
        statements = [
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(connection.settings_dict["NAME"]), role),
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role),
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
                    "TO {}").format(role),
            sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}"
                    ).format(role),
            # Tables a later migration creates (as this master user) are granted too.
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, "
                    "DELETE ON TABLES TO {}").format(role),
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE "
                    "ON SEQUENCES TO {}").format(role),
        ]
        with connection.cursor() as cursor:
            raw = cursor.connection
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [username])
            verb = "ALTER" if cursor.fetchone() else "CREATE"
            # Utility statements take no bind parameters, so the value is a literal, and a
            # statement can reach the server's log: send libpq's SCRAM verifier (computed
            # here, salted), never the password itself.
            verifier = raw.pgconn.encrypt_password(
                password.encode(), username.encode(), b"scram-sha-256").decode()
            cursor.execute(sql.SQL(
                verb + " ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT "
                "PASSWORD {}").format(role, sql.Literal(verifier)).as_string(raw))
            for statement in statements:
                cursor.execute(statement.as_string(raw))
        done = "created" if verb == "CREATE" else "altered"
        self.stdout.write(f"{done} database user {username} (read/write rows only)")

    def _credentials(self, opts: dict[str, Any]) -> tuple[str, str]:
        arn = opts["secret_arn"] or settings.DATABASE_APP_USER_SECRET_ARN
        if opts["username"] or opts["password_file"]:
            if not (opts["username"] and opts["password_file"]):
                raise CommandError("--username and --password-file go together.")
            return opts["username"], Path(opts["password_file"]).read_text().strip()
        if not arn:
            raise CommandError("set DATABASE_APP_USER_SECRET_ARN or pass --username and "
                               "--password-file.")
        source = {"secret_arn": arn, "region": (arn.split(":") + [""] * 4)[3],
                  "endpoint": settings.VEDOMAINS_AWS_ENDPOINT_URL}
        value = credentials.secret_string(source)
        try:
            parsed = json.loads(value)
            return str(parsed["username"]), str(parsed["password"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CommandError("the app user's secret must be JSON with username and "
                               "password.") from exc
