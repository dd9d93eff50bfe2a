"""Workspaces, plans and members from the main ve.ai app: the sync services.

The main app is the source of truth for these; it pushes each change with a version (its
row's version counter, or its `updated_at`). Every operation is idempotent and
compare-and-swap on that version, under a lock on the external workspace row:
- a version lower than the stored one is `stale` and changes nothing (a late retry or a
  reordered message can never overwrite a newer state);
- the stored version again is `unchanged` (a retried request);
- a higher one is applied and stored.
Deletes leave a versioned tombstone, so an update sent before the delete cannot bring the
workspace or the member back.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from domains import queueing
from domains.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from domains.models import (
    EDGE_ROUTED_STATUSES,
    LIVE_STATUSES,
    CustomDomain,
    Membership,
    Plan,
    Role,
    Workspace,
    slug_validator,
)
from domains.task_names import TaskName
from edge.config import edge_config_from_settings
from veai import plans
from veai.identity import user_for_external_subject
from veai.models import ExternalMembership, ExternalWorkspace, SlugHold
from workflow import services

log = logging.getLogger(__name__)

MAX_VERSION = 2**63 - 1
# A member sent before its workspace: when to try again.
MEMBER_RETRY_AFTER_SECONDS = 5
SUBSCRIPTION_STATUSES = {"active": "active", "cancelled": "cancelled", "canceled": "cancelled"}


@dataclass
class SyncResult:
    outcome: str  # created | updated | unchanged | stale | deleted
    version: int
    workspace: Workspace | None = None
    detail: str = ""

    @property
    def applied(self) -> bool:
        return self.outcome in {"created", "updated", "deleted"}

    def as_dict(self) -> dict[str, Any]:
        ws = self.workspace
        return {
            "applied": self.applied,
            "outcome": self.outcome,
            "version": self.version,
            "detail": self.detail,
            "workspace": None if ws is None else {
                "slug": ws.slug, "name": ws.name, "plan": ws.plan,
                "domain_limit": ws.domain_limit,
                "domain_limit_override": ws.domain_limit_override,
            },
        }


# --- input ------------------------------------------------------------------------------------


def _ascii_digits(text: str) -> bool:
    # Not str.isdigit(): it accepts "²" (int() then raises) and other scripts' digits.
    return re.fullmatch(r"[0-9]+", text) is not None


def parse_version(value: object, *, field: str = "version") -> int:
    """A version: a non-negative integer, or an ISO 8601 timestamp (as microseconds)."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int):
        version = value
    elif isinstance(value, str) and _ascii_digits(value.strip()):
        version = int(value.strip())
    elif isinstance(value, str) and value.strip():
        parsed: datetime | None = None
        try:
            parsed = parse_datetime(value.strip().replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise InvalidInput("A version is an integer or an ISO 8601 timestamp with a "
                               "timezone.", code="invalid_version", field=field)
        version = int(parsed.timestamp() * 1_000_000)
    else:
        raise InvalidInput("A version (integer, or updated_at timestamp) is required.",
                           code="invalid_version", field=field)
    if not 0 <= version <= MAX_VERSION:
        raise InvalidInput("The version is out of range.", code="invalid_version", field=field)
    return version


def version_of(data: dict[str, Any]) -> object:
    """`version`, or `updated_at` when no version is given."""
    value = data.get("version")
    return value if value is not None else data.get("updated_at")


VERSION_FIELDS = ("version", "updated_at")


def version_from(data: dict[str, Any]) -> tuple[int, str]:
    """(version, the field it came from): exactly one of `version` and `updated_at`.

    The two are different number spaces (a counter, microseconds since 1970): a request
    carrying both is refused rather than one silently chosen.
    """
    given = [name for name in VERSION_FIELDS if data.get(name) not in (None, "")]
    if len(given) > 1:
        raise InvalidInput("Send either 'version' or 'updated_at', not both: they are "
                           "different number spaces.", code="ambiguous_version",
                           field="version")
    name = given[0] if given else "version"
    value = data.get(name)
    if name == "version" and isinstance(value, str) and not _ascii_digits(value.strip()):
        raise InvalidInput("'version' is a whole number; send a timestamp as 'updated_at'.",
                           code="invalid_version", field="version")
    if name == "updated_at" and (isinstance(value, int) or (
            isinstance(value, str) and _ascii_digits(value.strip()))):
        raise InvalidInput("'updated_at' is an ISO 8601 timestamp; send a counter as "
                           "'version'.", code="invalid_version", field="updated_at")
    return parse_version(value, field=name), name


def _same_ordering(stored: str, incoming: str, *, what: str) -> None:
    if stored and stored != incoming:
        raise InvalidInput(
            f"This {what} is ordered by '{stored}'; send '{stored}', not '{incoming}' (the two "
            "cannot be compared).", code="version_field_mismatch", field=incoming)


def _text(value: object, *, field: str, max_length: int, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise InvalidInput(f"'{field}' is required.", code="required", field=field)
        return ""
    if not isinstance(value, str) or len(value) > max_length or "\x00" in value:
        raise InvalidInput(f"'{field}' must be a string of at most {max_length} characters.",
                           code="invalid", field=field)
    return value.strip()


def _slug(value: object) -> str:
    slug = _text(value, field="slug", max_length=63)
    try:
        slug_validator(slug)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], code="invalid_slug", field="slug") from exc
    return slug


def _choice(value: object, *, field: str, choices: list[str], code: str) -> str:
    text = _text(value, field=field, max_length=40).lower()
    if text not in choices:
        raise InvalidInput(f"'{text[:40]}' is not a valid {field}; expected one of "
                           f"{', '.join(choices)}.", code=code, field=field)
    return text


@dataclass(frozen=True)
class WorkspaceInput:
    external_id: str
    slug: str
    name: str
    plan: str
    subscription_status: str
    version: int
    version_field: str = "version"
    # The main app's domain limit for this workspace; None: the local default table's.
    domain_limit: int | None = None


MAX_DOMAIN_LIMIT = 1_000_000


def _domain_limit(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not (
            0 <= value <= MAX_DOMAIN_LIMIT):
        raise InvalidInput(f"'domain_limit' must be a whole number from 0 to {MAX_DOMAIN_LIMIT}"
                           " (or absent for the plan's default).", code="invalid",
                           field="domain_limit")
    return value


def workspace_input(*, external_id: object, data: dict[str, Any]) -> WorkspaceInput:
    status = _choice(data.get("subscription_status") or "active", field="subscription_status",
                     choices=list(SUBSCRIPTION_STATUSES), code="invalid_subscription_status")
    version, version_field = version_from(data)
    result = WorkspaceInput(
        external_id=_text(external_id, field="id", max_length=200),
        slug=_slug(data.get("slug")),
        name=_text(data.get("name"), field="name", max_length=200),
        # Any plan name (the main app owns plans); veai.plans checks its form and that a
        # limit is known for it (its domain_limit here, or the default table).
        plan=_text(data.get("plan"), field="plan", max_length=40).lower(),
        subscription_status=SUBSCRIPTION_STATUSES[status],
        version=version,
        version_field=version_field,
        domain_limit=_domain_limit(data.get("domain_limit")),
    )
    plans.plan_validate(plan=result.plan, domain_limit=result.domain_limit)
    return result


@dataclass(frozen=True)
class MemberInput:
    external_id: str
    subject: str
    role: str
    email: str
    version: int
    version_field: str = "version"


def member_input(*, external_id: object, subject: object, data: dict[str, Any],
                 removal: bool = False) -> MemberInput:
    email = _text(data.get("email"), field="email", max_length=254, required=False)
    if email and "@" not in email:
        raise InvalidInput("'email' is not an email address.", code="invalid", field="email")
    version, version_field = version_from(data)
    return MemberInput(
        external_id=_text(external_id, field="id", max_length=200),
        subject=_text(subject, field="subject", max_length=255),
        role="" if removal else _choice(data.get("role"), field="role",
                                        choices=list(Role.values), code="invalid_role"),
        email=email,
        version=version,
        version_field=version_field,
    )


# --- the lock and the version check ----------------------------------------------------------


def _locked_external(external_id: str) -> ExternalWorkspace:
    """The external workspace row, created if new, locked for this transaction."""
    ExternalWorkspace.objects.get_or_create(external_id=external_id)
    return ExternalWorkspace.objects.select_for_update().get(external_id=external_id)


def _compare(stored: int, incoming: int, *, exists: bool) -> str | None:
    if incoming < stored:
        return "stale"
    if incoming == stored and exists:
        return "unchanged"
    return None


# --- workspaces --------------------------------------------------------------------------------


def workspace_upsert(*, data: WorkspaceInput, source: str = "service:sync") -> SyncResult:
    """Create or update the workspace and apply its plan (see `veai.plans`)."""
    try:
        return _workspace_upsert(data, source)
    except IntegrityError as exc:
        # Two first upserts of one slug under different ids, racing: one wins.
        raise Conflict(f"The slug '{data.slug}' was just taken.", code="slug_taken",
                       field="slug") from exc


def _workspace_upsert(data: WorkspaceInput, source: str) -> SyncResult:
    with transaction.atomic():
        ext = _locked_external(data.external_id)
        _same_ordering(ext.version_field, data.version_field, what="workspace")
        verdict = _compare(ext.version, data.version,
                           exists=ext.workspace_id is not None or ext.deleted_at is not None)
        if verdict:
            return SyncResult(verdict, ext.version, ext.workspace)
        workspace = ext.workspace
        active = data.subscription_status == "active"
        effective_plan = data.plan if active else Plan.FREE
        effective_limit = data.domain_limit if active else None
        if workspace is None or workspace.slug != data.slug:
            _refuse_held_slug(data.slug, workspace)
        holders = Workspace.objects.filter(slug=data.slug)
        if workspace is not None:
            holders = holders.exclude(pk=workspace.pk)
        taken = holders.first()
        if taken is not None:
            linked = ExternalWorkspace.objects.filter(workspace=taken).exists()
            if linked or workspace is not None:
                raise Conflict(f"The slug '{data.slug}' belongs to another workspace.",
                               code="slug_taken", field="slug")
        outcome = "updated"
        if workspace is None:
            if taken is not None:
                # A workspace made here before the sync existed (by staff, or adopted from
                # the seed's table, where the slug is the workspaceId): link it, keep it.
                workspace = taken
            else:
                workspace = Workspace.objects.create(slug=data.slug, name=data.name,
                                                     plan=Plan.FREE)
                outcome = "created"
            ext.workspace = workspace
        elif ext.deleted_at is not None:
            outcome = "created"
        if workspace.slug != data.slug:
            _rename(workspace, data.slug)
        if workspace.name != data.name:
            Workspace.objects.filter(pk=workspace.pk).update(name=data.name)
            workspace.name = data.name
        ext.version = data.version
        ext.version_field = data.version_field
        ext.plan = data.plan
        ext.subscription_status = data.subscription_status
        ext.deleted_at = None
        ext.save()
        plans.workspace_plan_change(workspace=workspace, plan=effective_plan, source=source,
                                    domain_limit=effective_limit)
    workspace.refresh_from_db()
    return SyncResult(outcome, data.version, workspace)


def slug_hold_seconds() -> int:
    """How long an edge may still route to a slug after its workspace was renamed: the
    longest cache time, plus the stale window it serves for while DynamoDB is unreachable."""
    config = edge_config_from_settings()
    return int(config["positive_ttl_seconds"]) + int(config["max_stale_seconds"])


def slug_held_for_another(*, slug: str, workspace: Workspace | None) -> SlugHold | None:
    """The hold that keeps `slug` from `workspace` (None: a new workspace), if any."""
    hold = SlugHold.objects.filter(slug=slug, held_until__gt=timezone.now()).first()
    if hold is not None and (workspace is None or hold.workspace_id != workspace.pk):
        return hold
    return None


def _refuse_held_slug(slug: str, workspace: Workspace | None) -> None:
    hold = slug_held_for_another(slug=slug, workspace=workspace)
    if hold is not None:
        raise Conflict(
            f"The slug '{slug}' was released by a rename and is held until "
            f"{hold.held_until:%Y-%m-%d %H:%M:%S} UTC, while edges may still route to it; "
            "try again after that.", code="slug_held", field="slug")


def _rename(workspace: Workspace, slug: str) -> None:
    """A new slug is a new workspaceId at the edge: re-push every routed mapping, and hold
    the old slug for this workspace until no edge can route to it any more."""
    SlugHold.objects.update_or_create(
        slug=workspace.slug, defaults={
            "workspace": workspace,
            "held_until": timezone.now() + timedelta(seconds=slug_hold_seconds())})
    Workspace.objects.filter(pk=workspace.pk).update(slug=slug)
    workspace.slug = slug
    routed = CustomDomain.objects.filter(workspace=workspace, status__in=EDGE_ROUTED_STATUSES)
    hostnames = list(routed.values_list("hostname", flat=True))
    routed.update(edge_version=F("edge_version") + 1, updated_at=timezone.now())
    for hostname in hostnames:
        queueing.enqueue_after_commit(TaskName.EDGE_SYNC_HOSTNAME, hostname)


def workspace_delete(*, external_id: str, version: int, source: str = "service:sync",
                     version_field: str = "version") -> SyncResult:
    """Remove the workspace's domains and members; keep a versioned tombstone."""
    with transaction.atomic():
        ext = _locked_external(external_id)
        _same_ordering(ext.version_field, version_field, what="workspace")
        verdict = _compare(ext.version, version, exists=ext.deleted_at is not None)
        if verdict:
            return SyncResult(verdict, ext.version, ext.workspace)
        workspace = ext.workspace
        if workspace is not None:
            for domain in CustomDomain.objects.filter(workspace=workspace,
                                                      status__in=LIVE_STATUSES):
                try:
                    services.domain_remove(domain=domain, by=None, source=source,
                                           reason="The workspace was deleted in ve.ai.")
                except InvalidTransition:
                    continue  # removed meanwhile
            Membership.objects.filter(workspace=workspace).delete()
            plans.workspace_plan_change(workspace=workspace, plan=Plan.FREE, source=source,
                                        domain_limit=None)
        ext.version = version
        ext.version_field = version_field
        ext.deleted_at = timezone.now()
        ext.save()
    return SyncResult("deleted", version, workspace)


# --- members -----------------------------------------------------------------------------------


def _member_target(ext: ExternalWorkspace) -> Workspace:
    if ext.workspace is None or ext.deleted_at is not None:
        # The workspace's own upsert has not arrived yet (or it is deleted): a 409 with
        # Retry-After, which queues retry as they retry any conflict, rather than a 404
        # that reads as "wrong URL".
        error = Conflict(f"No workspace '{ext.external_id}' has been synced (or it was "
                         "deleted); send the workspace first, then retry this.",
                         code="workspace_not_synced", field="id",
                         details={"retry_after": MEMBER_RETRY_AFTER_SECONDS})
        error.retry_after = MEMBER_RETRY_AFTER_SECONDS
        raise error
    return ext.workspace


def _locked_member(data: MemberInput) -> tuple[Workspace, ExternalMembership]:
    """Inside the caller's transaction: the member's workspace (its external row locked) and
    the member's own row, whose ordering field must be the one this change uses."""
    ext = _locked_external(data.external_id)
    workspace = _member_target(ext)
    row, _ = ExternalMembership.objects.get_or_create(external_workspace=ext,
                                                      subject=data.subject)
    _same_ordering(row.version_field, data.version_field, what="member")
    return workspace, row


def member_upsert(*, data: MemberInput, source: str = "service:sync") -> SyncResult:
    with transaction.atomic():
        workspace, row = _locked_member(data)
        verdict = _compare(row.version, data.version, exists=row.version > 0 or bool(row.role))
        if verdict:
            return SyncResult(verdict, row.version, workspace)
        user = user_for_external_subject(issuer=settings.VEDOMAINS_JWT_ISSUER_ID,
                                         subject=data.subject, email=data.email, seen=False)
        _, created = Membership.objects.update_or_create(workspace=workspace, user=user,
                                                         defaults={"role": data.role})
        ExternalMembership.objects.filter(pk=row.pk).update(
            version=data.version, version_field=data.version_field, role=data.role,
            removed_at=None)
    return SyncResult("created" if created else "updated", data.version, workspace)


def member_remove(*, data: MemberInput, source: str = "service:sync") -> SyncResult:
    with transaction.atomic():
        workspace, row = _locked_member(data)
        verdict = _compare(row.version, data.version, exists=row.removed_at is not None)
        if verdict:
            return SyncResult(verdict, row.version, workspace)
        Membership.objects.filter(
            workspace=workspace,
            user__external_identity__issuer=settings.VEDOMAINS_JWT_ISSUER_ID,
            user__external_identity__subject=data.subject,
        ).delete()
        ExternalMembership.objects.filter(pk=row.pk).update(
            version=data.version, version_field=data.version_field, role="",
            removed_at=timezone.now())
    return SyncResult("deleted", data.version, workspace)


# --- read-back and bulk -------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def workspace_state(*, external_id: str) -> dict[str, Any]:
    """What vedomains holds for a main-app workspace: the versions stored, the workspace,
    its members. For the main app to compare with its own rows and repair drift."""
    ext = (ExternalWorkspace.objects.select_related("workspace")
           .filter(external_id=external_id).first())
    if ext is None or (ext.workspace_id is None and ext.deleted_at is None):
        raise NotFound(f"No workspace '{external_id[:200]}' has been synced.",
                       code="workspace_not_synced", field="id")
    ws = ext.workspace
    members = [
        {"subject": row.subject, "role": row.role or None, "version": row.version,
         "version_field": row.version_field or "version", "removed": row.removed_at is not None,
         "removed_at": _iso(row.removed_at)}
        for row in ext.member_versions.order_by("subject")
    ]
    return {
        "id": ext.external_id,
        "version": ext.version,
        "version_field": ext.version_field or "version",
        "deleted": ext.deleted_at is not None,
        "deleted_at": _iso(ext.deleted_at),
        "plan": ext.plan,
        "subscription_status": ext.subscription_status,
        "workspace": None if ws is None else {
            "slug": ws.slug, "name": ws.name, "plan": ws.plan,
            "domain_limit": ws.domain_limit, "domain_limit_override": ws.domain_limit_override,
        },
        "members": members,
    }


@dataclass(frozen=True)
class Record:
    """One workspace of an export (the `import_workspaces` JSON format) and its members."""

    workspace: WorkspaceInput
    members: list[MemberInput]


def record_input(raw: object) -> Record:
    """A workspace object of the export format: `{id, slug, name, plan, domain_limit?,
    subscription_status?, version | updated_at, members?: [{subject, role, email?,
    version | updated_at (default: the workspace's own field and value)}]}`."""
    if not isinstance(raw, dict):
        raise InvalidInput("Each record is a JSON object.", code="invalid_body", field="body")
    ws = workspace_input(external_id=raw.get("id"), data=raw)
    members_raw = raw.get("members") or []
    if not isinstance(members_raw, list):
        raise InvalidInput("'members' must be a list.", code="invalid", field="members")
    members = []
    for m in members_raw:
        if not isinstance(m, dict):
            raise InvalidInput("Each member is a JSON object.", code="invalid", field="members")
        data = dict(m)
        if data.get("version") in (None, "") and data.get("updated_at") in (None, ""):
            # A member without its own: the workspace's field and value, so later member
            # updates compare in the same number space as the workspace's.
            data[ws.version_field] = raw.get(ws.version_field)
        members.append(member_input(external_id=ws.external_id, subject=m.get("subject"),
                                    data=data))
    return Record(ws, members)


def record_apply(record: Record, *, source: str) -> dict[str, Any]:
    """Apply one record through the same services as the API: idempotent, version-checked.

    The workspace and each member in their own transaction, so a failing member does not
    undo the workspace (a retry of the whole file applies only what is missing).
    """
    with transaction.atomic():
        result = workspace_upsert(data=record.workspace, source=source)
    members: list[dict[str, Any]] = []
    for member in record.members:
        try:
            with transaction.atomic():
                outcome = member_upsert(data=member, source=source).outcome
            members.append({"subject": member.subject, "outcome": outcome})
        except (InvalidInput, Conflict) as exc:
            members.append({"subject": member.subject,
                            "error": {"code": exc.code, "message": exc.message,
                                      "field": exc.field}})
    return {"id": record.workspace.external_id, "outcome": result.outcome,
            "version": result.version, "members": members}
