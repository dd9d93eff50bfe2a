"""`manage.py worker_health`: exit 0 if this container's Celery worker answers a ping.

For the orchestrator's container health check (ECS `healthCheck`, Kubernetes exec probe):
a worker whose main process is alive but no longer consumes (lost broker connection, a
wedged pool) answers no ping, gets marked unhealthy and replaced. Any failure exits
non-zero with one line saying why.
"""

from __future__ import annotations

import socket
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from kombu.exceptions import OperationalError

from vedomains_site.celery import app


class Command(BaseCommand):
    help = "Ping the Celery worker(s) on this host; exit non-zero with the reason if none answer."
    # A container health probe: it must answer with one line and stay cheap, so the
    # settings checks (run by migrate, the release step) are not repeated on every probe.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=5.0,
                            help="seconds to wait for replies (default 5)")
        parser.add_argument("--node", action="append", default=[],
                            help="a worker node name (celery@host); default: any worker on "
                                 "this host. Repeat for several.")
        parser.add_argument("--any-host", action="store_true",
                            help="accept a reply from any worker (a broker-level check)")

    def handle(self, *args: Any, **options: Any) -> None:
        timeout: float = options["timeout"]
        if timeout <= 0:
            raise CommandError("--timeout must be a positive number of seconds")
        host = socket.gethostname()
        try:
            replies = app.control.ping(destination=options["node"] or None, timeout=timeout)
        except (OperationalError, OSError) as exc:
            raise CommandError(f"broker unreachable: {str(exc).splitlines()[0][:200]}") from exc
        # The stubs allow None (broadcast without reply=True); ping always asks for replies.
        nodes = sorted(name for reply in replies for name in reply)  # type: ignore[union-attr]
        if not options["any_host"] and not options["node"]:
            nodes = [n for n in nodes if n.partition("@")[2] == host]
        if not nodes:
            where = "any host" if options["any_host"] else f"host {host}"
            raise CommandError(f"no Celery worker on {where} answered a ping within {timeout:g} s")
        self.stdout.write(f"ok: {', '.join(nodes)}")
