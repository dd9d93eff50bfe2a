"""Run due checks now, in this process (the same code the Celery tasks run)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from domains.hostnames import HostnameError, normalize_hostname
from domains.management.commands._progress import progress_bar
from domains.models import CustomDomain, DomainStatus
from workflow import checks, schedule


class Command(BaseCommand):
    help = "Check due domains (or the given ones) synchronously and print a line per domain."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hostname", action="append", default=[],
                            help="Check this hostname now, due or not (repeatable).")
        parser.add_argument("--all", action="store_true",
                            help="Check every live domain now, due or not.")
        parser.add_argument("--batch-size", type=int, default=200,
                            help="Domains per batch (DNS is resolved concurrently per batch).")
        parser.add_argument("--dry-run", action="store_true",
                            help="List what would be checked; change nothing.")

    def handle(self, *args: Any, **opts: Any) -> None:
        force = bool(opts["hostname"] or opts["all"])
        if opts["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        if opts["hostname"]:
            hosts = []
            for raw in opts["hostname"]:
                try:
                    hosts.append(normalize_hostname(raw))
                except HostnameError as exc:
                    raise CommandError(f"--hostname {raw!r}: {exc.message}") from exc
            ids = list(CustomDomain.objects.filter(hostname__in=hosts)
                       .exclude(status=DomainStatus.REMOVED, next_check_at__isnull=True)
                       .values_list("pk", flat=True))
            if not ids:
                raise CommandError(f"no domain found for {', '.join(hosts)}")
        elif opts["all"]:
            ids = list(CustomDomain.objects.exclude(status=DomainStatus.FAILED)
                       .exclude(status=DomainStatus.REMOVED, next_check_at__isnull=True)
                       .order_by("pk").values_list("pk", flat=True))
        else:
            ids = schedule.domains_due(limit=10**9, queued=True)

        if opts["dry_run"]:
            for domain in CustomDomain.objects.filter(pk__in=ids).order_by("pk"):
                self.stdout.write(f"would check {domain.hostname} ({domain.status})")
            self.stdout.write(f"{len(ids)} domains would be checked")
            return

        counts: Counter[str] = Counter()
        size = opts["batch_size"]
        with progress_bar(len(ids), "checking") as bar:
            for start in range(0, len(ids), size):
                outcomes = checks.domains_check_batch(domain_ids=ids[start:start + size],
                                                      source="command:check_domains",
                                                      force=force)
                for o in outcomes:
                    counts[o.outcome] += 1
                    detail = f" - {o.detail}" if o.detail else ""
                    self.stdout.write(f"{o.hostname}: {o.outcome} ({o.status}){detail}")
                bar.update(min(size, len(ids) - start))
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing due"
        self.stdout.write(self.style.SUCCESS(f"checked {sum(counts.values())}: {summary}"))
