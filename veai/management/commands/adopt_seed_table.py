"""Adopt the seed's `domain-workspace-mappings` items into Django (see veai/adoption.py).

Run with --dry-run first: it reads the table, DNS and ACM and prints what each item would
become, writing nothing. A real run may stop anywhere (Ctrl-C, --limit, an AWS outage) and
be run again: adopted items are skipped, waiting ones resume.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from domains.integrations.errors import IntegrationError
from domains.management.commands._progress import progress_bar
from veai import adoption


class Command(BaseCommand):
    help = "Adopt the seed's domain-workspace-mappings items into Django without a gap."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true",
                            help="Read and report what would change; write nothing.")
        parser.add_argument("--limit", type=int, default=None,
                            help="Stop after this many items (the next run continues).")
        parser.add_argument("--report", help="Also write the full report to this JSON file.")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["limit"] is not None and opts["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        dry_run = opts["dry_run"]
        verbose = opts["verbosity"] >= 1

        with progress_bar(None, "adopt") as bar:
            def progress(item: adoption.ItemReport) -> None:
                bar.update(1)
                if verbose:
                    why = f" [{item.reason}]" if item.reason else ""
                    self.stdout.write(f"{item.hostname} ({item.workspace}, {item.seed_status})"
                                      f": {item.outcome}{why} {item.detail}".rstrip())

            try:
                summary = adoption.seed_table_adopt(dry_run=dry_run, limit=opts["limit"],
                                                    progress=progress)
            except IntegrationError as exc:
                raise CommandError(f"adoption stopped (run again to continue): {exc}") from exc
        counts = summary.counts()
        prefix = "dry run (nothing changed): " if dry_run else ""
        self.stdout.write(prefix + f"{len(summary.items)} items: " + (
            ", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing to do"))
        for line in summary.over_limit:
            self.stdout.write(f"over the plan's limit, grace period started: {line}")
        if opts["report"]:
            payload = {"dry_run": dry_run, "counts": counts, "over_limit": summary.over_limit,
                       "items": [i.as_dict() for i in summary.items]}
            try:
                Path(opts["report"]).write_text(json.dumps(payload, indent=2))
            except OSError as exc:
                raise CommandError(f"cannot write the report: {exc}") from exc
