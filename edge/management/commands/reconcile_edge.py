"""Diff Django against the edge table; repair missing, extra and stale items."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from domains.integrations.errors import IntegrationError
from domains.management.commands._progress import progress_bar
from edge import sync as edge_sync


class Command(BaseCommand):
    help = "Compare the edge table with Django and repair the differences."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true",
                            help="Print the differences; repair nothing.")

    def handle(self, *args: Any, **opts: Any) -> None:
        repair = not opts["dry_run"]
        try:
            with progress_bar(None, "reconcile") as bar:
                report = edge_sync.edge_reconcile(repair=repair, progress=bar.update)
        except IntegrationError as exc:
            raise CommandError(f"reconcile stopped: {exc}") from exc
        counts = report.counts()
        for kind in ("missing", "stale", "extra"):
            for hostname in getattr(report, kind):
                self.stdout.write(f"{kind}: {hostname}")
            hidden = counts[kind] - len(getattr(report, kind))
            if hidden > 0:
                self.stdout.write(f"{kind}: ... and {hidden} more")
        self.stdout.write(self.style.SUCCESS(
            f"scanned {counts['scanned']} items, checked {counts['checked']} domains: "
            f"{counts['missing']} missing, {counts['stale']} stale, {counts['extra']} extra; "
            + (f"repaired {counts['repaired']}" if repair else "dry run, nothing repaired")))
