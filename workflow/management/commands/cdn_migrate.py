"""Move live domains to CloudFront SaaS Manager tenants, or back, without downtime."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from domains.management.commands._progress import progress_bar
from workflow import cdn_migration


class Command(BaseCommand):
    help = ("Move active domains between CDN strategies, one resumable step per domain per "
            "pass (run again until nothing is left). See workflow/cdn_migration.py.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", required=True,
                            choices=[cdn_migration.TO_TENANTS, cdn_migration.TO_DISTRIBUTIONS])
        parser.add_argument("--dry-run", action="store_true",
                            help="List what would move; change nothing.")
        parser.add_argument("--limit", type=int, default=None,
                            help="At most this many domains in this pass.")
        parser.add_argument("--until-done", action="store_true",
                            help="Repeat passes until no domain is left or one pass changes "
                                 "nothing (waiting on CloudFront or customers).")
        parser.add_argument("--pause", type=float, default=15.0,
                            help="Seconds between passes with --until-done.")
        parser.add_argument("--timeout", type=float, default=3600.0,
                            help="Give up --until-done after this many seconds (it resumes "
                                 "where it stopped when run again).")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["limit"] is not None and opts["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        to = opts["to"]
        deadline = time.monotonic() + opts["timeout"]
        while True:
            if time.monotonic() > deadline:
                raise CommandError(f"gave up after {opts['timeout']:.0f} s; run again to resume")
            pending = cdn_migration.domains_to_migrate(to=to)
            if not pending:
                self.stdout.write(self.style.SUCCESS(f"nothing left to move to {to}"))
                return
            started = time.monotonic()
            total = min(len(pending), opts["limit"] or len(pending))
            with progress_bar(total, f"to {to}") as bar:
                report = cdn_migration.domains_migrate(to=to, dry_run=opts["dry_run"],
                                                       limit=opts["limit"], progress=bar.update)
            summary = ", ".join(f"{k}: {v}" for k, v in sorted(report.counts.items()))
            self.stdout.write(f"{total} domain(s) in {time.monotonic() - started:.1f} s: "
                              f"{summary}")
            for line in report.waiting[:20]:
                self.stdout.write(f"  {line}")
            if opts["dry_run"] or not opts["until_done"]:
                return
            if set(report.counts) <= {"waiting"} and not report.counts.get("migrated"):
                time.sleep(opts["pause"])
            if report.counts.get("error"):
                raise CommandError(f"stopped: {report.counts['error']} domain(s) failed; see "
                                   "above, fix, and run again (it resumes)")
