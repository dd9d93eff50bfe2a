"""Build the Lambda@Edge zip with its configuration baked in (no env vars at the edge)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from edge.config import edge_config_from_settings
from edge_lambda.build import PackageTooLargeError, build_package
from edge_lambda.config import EdgeConfigError


class Command(BaseCommand):
    help = "Write the edge function's deployment zip (fails above the 1 MB viewer-trigger limit)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", default=None,
                            help="Zip path in an existing directory (default "
                            "build/edge-lambda.zip, created if missing).")
        parser.add_argument("--dry-run", action="store_true",
                            help="Print the configuration that would be baked in; write nothing.")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            config = edge_config_from_settings()
        except EdgeConfigError as exc:
            raise CommandError(f"invalid edge configuration: {exc}") from exc
        if opts["dry_run"]:
            self.stdout.write(json.dumps(config, indent=2, sort_keys=True))
            return
        output = Path(opts["output"] or Path(settings.BASE_DIR) / "build" / "edge-lambda.zip")
        if opts["output"] and not output.parent.is_dir():
            # A typo in --output must not create directories (even /nonexistent as root).
            raise CommandError(
                f"--output: the directory {output.parent} does not exist; create it first"
            )
        try:
            path = build_package(config, output)
        except (EdgeConfigError, PackageTooLargeError) as exc:
            raise CommandError(str(exc)) from exc
        except OSError as exc:
            raise CommandError(f"--output {output}: {exc.strerror or exc}") from exc
        with zipfile.ZipFile(path) as archive:
            names = ", ".join(archive.namelist())
        self.stdout.write(self.style.SUCCESS(
            f"wrote {path} ({path.stat().st_size} bytes: {names})"))
