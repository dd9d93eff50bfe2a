"""The sync API for the main ve.ai app's server: thin views over
`veai.workspace_sync`.

Authenticated only by `ServiceSignatureAuthentication` (an HMAC over each request with a
shared secret); user tokens and sessions are not accepted here, and the service credential
is not accepted on the user API. In the OpenAPI schema under the `sync` tag, with its
security scheme; docs/veai-integration.md documents it.

    GET    /api/service/workspaces/<id>  (read back: versions stored, workspace, members)
    PUT    /api/service/workspaces/<id>  {slug, name, plan, domain_limit?, subscription_status?,
                                          version | updated_at}
    DELETE /api/service/workspaces/<id>?version=N
    PUT    /api/service/workspaces/<id>/members/<subject> {role, email?, version}
    DELETE /api/service/workspaces/<id>/members/<subject>?version=N
    POST   /api/service/import  (NDJSON, one workspace per line; streamed NDJSON answer)

Every answer is 200 `{"applied", "outcome", "version", "workspace"}`: `outcome` is
`created`, `updated`, `deleted`, `unchanged` (a retry) or `stale` (an older version than the
one stored; nothing changed). Errors use the API's JSON error shape.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import IO, Any, cast

from django.db import transaction
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.authentication import (
    ServicePrincipal,
    ServiceSignatureAuthentication,
    SpooledRequest,
    StreamedServiceSignatureAuthentication,
)
from api.parsers import JSONParser
from domains.errors import DomainError, InvalidInput
from veai import workspace_sync


class IsMainAppService(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, ServicePrincipal)


def _body(request: Request) -> Mapping[str, Any]:
    data = request.data
    if not isinstance(data, Mapping):
        raise InvalidInput("The request body must be a JSON object.", code="invalid_body",
                           field="body")
    return data


def _delete_body(request: Request) -> dict[str, Any]:
    # Some HTTP clients drop DELETE bodies: the version may come as a query parameter.
    data = dict(_body(request)) if request.body else {}
    for key in ("version", "updated_at"):
        if key in request.query_params and key not in data:
            data[key] = request.query_params[key]
    return data


_SYNC = "sync"
_SYNC_ERRORS = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="Invalid input; `error.field` "
                         "names the field."),
    401: OpenApiResponse(OpenApiTypes.OBJECT, description="`invalid_signature`, "
                         "`signature_expired`, `service_disabled`, "
                         "`unsupported_signature_version`."),
    409: OpenApiResponse(OpenApiTypes.OBJECT, description="`slug_taken`, or "
                         "`workspace_not_synced` with Retry-After."),
}
# A subject is any string without a line break: a path carrying one matches no route.
_MEMBER_ERRORS = {
    **_SYNC_ERRORS,
    404: OpenApiResponse(OpenApiTypes.OBJECT, description="`not_found`: the path matches no "
                         "route (a subject may not contain a line break)."),
}
_RESULT = OpenApiResponse(OpenApiTypes.OBJECT, description="`{applied, outcome, version, "
                          "detail, workspace}`; outcome created, updated, deleted, unchanged "
                          "or stale.")


class _ServiceView(APIView):
    authentication_classes = [ServiceSignatureAuthentication]
    permission_classes = [IsMainAppService]
    parser_classes = [JSONParser]
    throttle_classes: list[Any] = []


class WorkspaceSyncView(_ServiceView):
    @extend_schema(tags=[_SYNC], summary="Read back a synced workspace",
                   description="The versions stored, the workspace and its members: "
                   "compare with the main app's rows to find drift.",
                   responses={200: OpenApiTypes.OBJECT, 401: _SYNC_ERRORS[401],
                              404: OpenApiResponse(OpenApiTypes.OBJECT,
                                                   description="`workspace_not_synced`")})
    def get(self, request: Request, external_id: str) -> Response:
        return Response(workspace_sync.workspace_state(external_id=external_id))

    @extend_schema(tags=[_SYNC], summary="Create or update a workspace and its plan",
                   request=OpenApiTypes.OBJECT, responses={200: _RESULT, **_SYNC_ERRORS})
    def put(self, request: Request, external_id: str) -> Response:
        data = workspace_sync.workspace_input(external_id=external_id, data=dict(_body(request)))
        return Response(workspace_sync.workspace_upsert(data=data).as_dict())

    @extend_schema(tags=[_SYNC], summary="Delete a workspace (versioned tombstone)",
                   parameters=[OpenApiParameter("version", int, required=False),
                               OpenApiParameter("updated_at", str, required=False)],
                   responses={200: _RESULT, **_SYNC_ERRORS})
    def delete(self, request: Request, external_id: str) -> Response:
        version, field = workspace_sync.version_from(_delete_body(request))
        return Response(workspace_sync.workspace_delete(external_id=external_id,
                                                        version=version,
                                                        version_field=field).as_dict())


class MemberSyncView(_ServiceView):
    @extend_schema(tags=[_SYNC], summary="Add a member or change their role",
                   request=OpenApiTypes.OBJECT, responses={200: _RESULT, **_MEMBER_ERRORS})
    def put(self, request: Request, external_id: str, subject: str) -> Response:
        data = workspace_sync.member_input(external_id=external_id, subject=subject,
                                           data=dict(_body(request)))
        return Response(workspace_sync.member_upsert(data=data).as_dict())

    @extend_schema(tags=[_SYNC], summary="Remove a member",
                   parameters=[OpenApiParameter("version", int, required=False),
                               OpenApiParameter("updated_at", str, required=False)],
                   responses={200: _RESULT, **_MEMBER_ERRORS})
    def delete(self, request: Request, external_id: str, subject: str) -> Response:
        data = workspace_sync.member_input(external_id=external_id, subject=subject,
                                           data=_delete_body(request), removal=True)
        return Response(workspace_sync.member_remove(data=data).as_dict())


class BulkImportView(_ServiceView):
    """`POST /api/service/import`: NDJSON in, NDJSON out, one line per record."""

    authentication_classes = [StreamedServiceSignatureAuthentication]

    @extend_schema(
        tags=[_SYNC], summary="Bulk upsert of workspaces and members (NDJSON, streamed)",
        description="One workspace per line in the `import_workspaces` JSON format. The "
        "answer streams one JSON line per record (`{line, id, outcome, version, members}` or "
        "`{line, error}`), then `{summary}`. Idempotent: every record is version-checked, "
        "so the same file can be sent again. `?dry_run=true` rolls every record back.",
        request={"application/x-ndjson": OpenApiTypes.STR},
        parameters=[OpenApiParameter("dry_run", bool, required=False)],
        responses={200: OpenApiResponse(OpenApiTypes.STR, description="NDJSON lines."),
                   401: _SYNC_ERRORS[401],
                   413: OpenApiResponse(OpenApiTypes.OBJECT, description="`body_too_large`")},
    )
    def post(self, request: Request) -> StreamingHttpResponse:
        dry_run = str(request.query_params.get("dry_run", "")).lower() in {"1", "true", "yes"}
        spooled = cast(SpooledRequest, request._request).spooled_body
        response = StreamingHttpResponse(_bulk_lines(spooled, dry_run=dry_run),
                                         content_type="application/x-ndjson")
        response["Cache-Control"] = "no-store"
        return response


class _DryRun(Exception):
    pass


def _bulk_lines(spooled: IO[bytes], *, dry_run: bool) -> Iterator[bytes]:
    counts: Counter[str] = Counter()
    members: Counter[str] = Counter()
    source = "service:bulk" + (":dry-run" if dry_run else "")
    try:
        for number, raw in enumerate(spooled, start=1):
            if not raw.strip():
                continue
            answer: dict[str, Any] = {"line": number}
            try:
                parsed = json.loads(raw)
            except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
                counts["failed"] += 1
                answer["error"] = {"code": "invalid_json", "message": str(exc)[:200],
                                   "field": "body"}
                yield json.dumps(answer).encode() + b"\n"
                continue
            try:
                if isinstance(parsed, dict) and isinstance(parsed.get("id"), str):
                    answer["id"] = parsed["id"][:200]
                record = workspace_sync.record_input(parsed)
                if dry_run:
                    try:
                        with transaction.atomic():
                            answer.update(workspace_sync.record_apply(record, source=source))
                            raise _DryRun
                    except _DryRun:
                        pass
                else:
                    answer.update(workspace_sync.record_apply(record, source=source))
                counts[answer["outcome"]] += 1
                for member in answer["members"]:
                    members[member.get("outcome", "failed")] += 1
            except DomainError as exc:
                counts["failed"] += 1
                answer["error"] = {"code": exc.code, "message": exc.message, "field": exc.field}
            yield json.dumps(answer).encode() + b"\n"
        yield json.dumps({"summary": {"workspaces": dict(counts), "members": dict(members),
                                      "dry_run": dry_run}}).encode() + b"\n"
    finally:
        spooled.close()
