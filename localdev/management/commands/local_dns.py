"""Program the local DNS server (`./dev run`) so a customer's DNS change can be played locally.

    python manage.py local_dns set gallery.example.com CNAME domain.ve.ai
    python manage.py local_dns add _vedomains-challenge.gallery.example.com TXT "token"
    python manage.py local_dns delete gallery.example.com [CNAME]
    python manage.py local_dns list
    python manage.py local_dns clear
    python manage.py local_dns fault servfail [--name gallery.example.com]   # "off" clears

It talks to the server's HTTP control API at VEDOMAINS_LOCAL_DNS_CONTROL_URL (an
environment variable the local stack sets; default http://127.0.0.1:5380) or --url. Only the
local DNS server is ever changed; there is no way to reach a real provider here. A command of
the `localdev` app, which settings.py installs in development and tests only.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from localdev.dns_control import DNSControl, DNSControlError
from localdev.dns_server import FAULT_MODES, SUPPORTED_TYPES

FAULT_OFF = "off"
DEFAULT_CONTROL_URL = "http://127.0.0.1:5380"


def control_url() -> str:
    # A test may point the setting at its own server; otherwise the stack's environment.
    return getattr(settings, "VEDOMAINS_LOCAL_DNS_CONTROL_URL", None) or os.environ.get(
        "VEDOMAINS_LOCAL_DNS_CONTROL_URL", DEFAULT_CONTROL_URL)


def _ttl(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise CommandError(f"--ttl must be a whole number of seconds, got {raw!r}") from None
    if not 0 <= value <= 2**31 - 1:
        raise CommandError(f"--ttl must be between 0 and {2**31 - 1}, got {value}")
    return value


def _rtype(raw: str) -> str:
    rtype = raw.upper()
    if rtype not in SUPPORTED_TYPES:
        raise CommandError(
            f"record type {raw!r} is not supported; use one of {', '.join(sorted(SUPPORTED_TYPES))}"
        )
    return rtype


class Command(BaseCommand):
    help = "Set, list or delete records (and inject faults) on the local DNS server."
    # It changes only the local DNS server, so the product's settings checks (a CDN
    # template not created yet, say) must not stop it.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url",
            help="control API base URL (default: VEDOMAINS_LOCAL_DNS_CONTROL_URL, "
            f"now {control_url()})",
        )
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        for action, text in (
            ("set", "replace the NAME/TYPE records with this one"),
            ("add", "add one record to the NAME/TYPE set"),
        ):
            p = sub.add_parser(action, help=text)
            p.add_argument("name")
            p.add_argument("type", metavar="TYPE")
            p.add_argument("value")
            p.add_argument("--ttl", default="60", help="seconds (default 60)")
        p = sub.add_parser("delete", help="delete the records at NAME (only TYPE if given)")
        p.add_argument("name")
        p.add_argument("type", nargs="?", metavar="TYPE")
        sub.add_parser("list", help="show every record")
        sub.add_parser("clear", help="delete every record")
        p = sub.add_parser("fault", help="make queries fail: timeout, servfail, refused, off")
        p.add_argument("mode", metavar="MODE")
        # Its own dest: the other actions' positional `name` would clash in call_command.
        p.add_argument("--name", dest="fault_name", help="only for this name (default: every name)")

    def handle(self, *args: Any, **options: Any) -> None:
        url = options.get("url") or control_url()
        control = DNSControl(url, timeout=5.0)
        action = options["action"]
        try:
            if action in ("set", "add"):
                rtype = _rtype(options["type"])
                call = control.set if action == "set" else control.add
                rrset = call(options["name"], rtype, options["value"], _ttl(options["ttl"]))
                for record in rrset:
                    self.stdout.write(_line(record))
            elif action == "delete":
                rtype = _rtype(options["type"]) if options.get("type") else None
                deleted = control.delete(options["name"], rtype)
                what = f"{options['name']} {rtype}" if rtype else options["name"]
                self.stdout.write(f"deleted {deleted} record(s) at {what}")
            elif action == "list":
                records = control.records()
                for record in records:
                    self.stdout.write(_line(record))
                if not records:
                    self.stdout.write("no records")
            elif action == "clear":
                self.stdout.write(f"deleted {control.clear()} record(s)")
            else:
                self._fault(control, options["mode"], options.get("fault_name"))
        except DNSControlError as exc:
            if exc.status is None:
                raise CommandError(
                    f"the local DNS server is not answering at {url}: start it with `./dev run` "
                    "(or point VEDOMAINS_LOCAL_DNS_CONTROL_URL / --url at it)"
                ) from None
            raise CommandError(str(exc)) from None

    def _fault(self, control: DNSControl, mode: str, name: str | None) -> None:
        mode = mode.lower()
        if mode not in FAULT_MODES | {FAULT_OFF}:
            choices = ", ".join([*sorted(FAULT_MODES), FAULT_OFF])
            raise CommandError(f"fault mode {mode!r} is not one of {choices}")
        faults = control.fault(None if mode == FAULT_OFF else mode, name=name)
        names = faults.get("names") or {}
        summary = ", ".join(f"{n}={m}" for n, m in names.items()) or "none"
        self.stdout.write(
            f"faults: every name={faults.get('global') or 'none'}; per name: {summary}"
        )


def _line(record: dict[str, Any]) -> str:
    return f"{record['name']}  {record['ttl']}  {record['type']}  {record['value']}"
