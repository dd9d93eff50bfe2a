"""Push every active mapping to the edge table (BatchWriteItem, in parallel)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from domains.integrations.errors import IntegrationError
from domains.management.commands._progress import progress_bar
from domains.models import EDGE_ROUTED_STATUSES, CustomDomain
from edge import sync as edge_sync


class Command(BaseCommand):
    help = "Write every active domain's mapping to DynamoDB; re-sync any that change meanwhile."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true",
                            help="Count what would be written; write nothing.")

    def handle(self, *args: Any, **opts: Any) -> None:
        total = CustomDomain.objects.filter(status__in=EDGE_ROUTED_STATUSES).count()
        started = time.monotonic()
        try:
            with progress_bar(total, "backfill") as bar:
                counts = edge_sync.edge_backfill(dry_run=opts["dry_run"], progress=bar.update)
        except IntegrationError as exc:
            raise CommandError(f"backfill stopped: {exc}") from exc
        elapsed = time.monotonic() - started
        verb = "would write" if opts["dry_run"] else "wrote"
        self.stdout.write(self.style.SUCCESS(
            f"{verb} {counts['written'] if not opts['dry_run'] else counts['active']} of "
            f"{counts['active']} active mappings, re-synced {counts['resynced']} "
            f"that changed meanwhile, in {elapsed:.1f} s"))
