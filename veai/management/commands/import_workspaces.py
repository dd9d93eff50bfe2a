"""Import workspaces, plans and members in bulk from the main app's JSON or CSV export.

The same services as the sync API (`veai.workspace_sync`), so the same rules hold: each
record is versioned, and an export older than what was synced since changes nothing. The
whole file is validated before anything is written; `--dry-run` applies it in a transaction
that is rolled back, so its summary is exactly what a real run would do.

JSON: `{"workspaces": [{"id", "slug", "name", "plan", "version", "subscription_status"?,
"members": [{"subject", "email"?, "role", "version"?}]}]}` (or the bare list).
CSV: `workspace_id,slug,name,plan,version[,subscription_status][,member_subject,
member_email,member_role,member_version]`, one row per member (a workspace without members:
empty member columns).
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from domains.errors import DomainError
from domains.management.commands._progress import progress_bar
from veai import workspace_sync

CSV_REQUIRED = ("workspace_id", "slug", "name", "plan", "version")


@dataclass
class Record:
    label: str
    workspace: workspace_sync.WorkspaceInput
    members: list[workspace_sync.MemberInput] = field(default_factory=list)


class _Rollback(Exception):
    pass


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:300]


def _validate(label: str, raw: Any) -> Record:
    # The same record format, and the same validation, as the sync API's bulk endpoint.
    try:
        record = workspace_sync.record_input(raw)
    except DomainError as exc:
        where = f" {exc.field}:" if exc.field and exc.field != "body" else ""
        raise CommandError(_one_line(f"{label}:{where} {exc.message}")) from exc
    return Record(label, record.workspace, record.members)


def _from_json(text: str) -> list[Record]:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CommandError(_one_line(f"the file is not valid JSON: {exc}")) from exc
    items = data.get("workspaces") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise CommandError('expected {"workspaces": [...]} or a list of workspaces')
    return [_validate(f"workspace {i} ({str((w or {}).get('id', '?'))[:60]})"
                      if isinstance(w, dict) else f"workspace {i}", w)
            for i, w in enumerate(items, start=1)]


def _from_csv(text: str) -> list[Record]:
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in CSV_REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise CommandError(f"the CSV header has missing columns: {', '.join(missing)}")
    grouped: dict[str, dict[str, Any]] = {}
    lines: dict[str, int] = {}
    try:
        for line, row in enumerate(reader, start=2):
            wid = (row.get("workspace_id") or "").strip()
            entry = grouped.setdefault(wid, {
                "id": wid, "slug": row.get("slug"), "name": row.get("name"),
                "plan": row.get("plan"), "version": row.get("version"),
                "subscription_status": row.get("subscription_status") or "active",
                "members": []})
            lines.setdefault(wid, line)
            if (row.get("member_subject") or "").strip():
                entry["members"].append({
                    "subject": row["member_subject"].strip(),
                    "email": (row.get("member_email") or "").strip(),
                    "role": (row.get("member_role") or "").strip(),
                    "version": (row.get("member_version") or "").strip() or row.get("version"),
                })
    except csv.Error as exc:
        raise CommandError(_one_line(f"the CSV is malformed: {exc}")) from exc
    return [_validate(f"line {lines[wid]} ({wid[:60]})", entry) for wid, entry in grouped.items()]


class Command(BaseCommand):
    help = "Import workspaces, plans and members from the main app's JSON or CSV export."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="The export file (.json or .csv).")
        parser.add_argument("--format", choices=["json", "csv"],
                            help="Default: from the file name's extension.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Apply in a transaction that is rolled back; print the summary.")

    def handle(self, *args: Any, **opts: Any) -> None:
        path = Path(opts["path"])
        fmt = opts["format"] or path.suffix.lower().lstrip(".")
        if fmt not in {"json", "csv"}:
            raise CommandError(f"cannot tell the format of {path.name}: pass --format json|csv")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(_one_line(f"cannot read {path}: {exc}")) from exc
        records = _from_json(text) if fmt == "json" else _from_csv(text)
        started = time.monotonic()
        ws_counts: Counter[str] = Counter()
        member_counts: Counter[str] = Counter()
        failures: list[str] = []
        try:
            with transaction.atomic(), progress_bar(len(records), "import") as bar:
                for record in records:
                    self._apply(record, ws_counts, member_counts, failures)
                    bar.update(1)
                if opts["dry_run"]:
                    raise _Rollback
        except _Rollback:
            pass
        members = sum(len(r.members) for r in records)
        prefix = "dry run (nothing saved): " if opts["dry_run"] else ""
        self.stdout.write(
            f"{prefix}{len(records)} workspaces, {members} members read in "
            f"{time.monotonic() - started:.1f} s; workspaces: "
            + ", ".join(f"{ws_counts[k]} {k}" for k in ("created", "updated", "unchanged",
                                                         "stale", "failed"))
            + "; members: "
            + ", ".join(f"{member_counts[k]} {k}" for k in ("created", "updated", "unchanged",
                                                             "stale", "failed")))
        for line in failures:
            self.stderr.write(line)
        if failures:
            raise CommandError(f"{len(failures)} records could not be applied; first: "
                               f"{failures[0]}")

    def _apply(self, record: Record, ws_counts: Counter[str], member_counts: Counter[str],
               failures: list[str]) -> None:
        try:
            with transaction.atomic():
                result = workspace_sync.workspace_upsert(data=record.workspace,
                                                         source="command:import_workspaces")
        except DomainError as exc:
            ws_counts["failed"] += 1
            failures.append(_one_line(f"{record.label}: {exc.message}"))
            return
        ws_counts[result.outcome if result.outcome != "deleted" else "updated"] += 1
        for member in record.members:
            try:
                with transaction.atomic():
                    outcome = workspace_sync.member_upsert(
                        data=member, source="command:import_workspaces").outcome
            except DomainError as exc:
                member_counts["failed"] += 1
                failures.append(_one_line(f"{record.label} member {member.subject}: "
                                          f"{exc.message}"))
                continue
            member_counts[outcome] += 1
