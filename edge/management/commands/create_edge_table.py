"""Create the edge's DynamoDB table (local emulator and tests; production uses deploy/)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from domains.integrations import edge_store
from domains.integrations.errors import IntegrationError


class Command(BaseCommand):
    help = "Create the domain-workspace-mappings table with the key and settings deploy/ uses."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Say what would be created.")

    def handle(self, *args: Any, **opts: Any) -> None:
        name = settings.VEDOMAINS_EDGE_TABLE
        endpoint = settings.VEDOMAINS_AWS_ENDPOINT_URL or "AWS"
        if opts["dry_run"]:
            self.stdout.write(f"would create table {name} at {endpoint}")
            return
        try:
            created = edge_store.create_table()
        except IntegrationError as exc:
            raise CommandError(f"could not create {name} at {endpoint}: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(
            f"created table {name} at {endpoint}" if created else f"table {name} already exists"))
