"""The sync API for the main ve.ai app's server: thin views over
`domains.workspace_sync`.

Authenticated only by `ServiceSignatureAuthentication` (an HMAC over each request with a
shared secret); user tokens and sessions are not accepted here, and the service credential
is not accepted on the user API. Left out of the public OpenAPI schema (the frontend's):
docs/veai-integration.md documents it.

    PUT    /api/service/workspaces/<id>  {slug, name, plan, subscription_status?, version}
    DELETE /api/service/workspaces/<id>?version=N
    PUT    /api/service/workspaces/<id>/members/<subject> {role, email?, version}
    DELETE /api/service/workspaces/<id>/members/<subject>?version=N

Every answer is 200 `{"applied", "outcome", "version", "workspace"}`: `outcome` is
`created`, `updated`, `deleted`, `unchanged` (a retry) or `stale` (an older version than the
one stored; nothing changed). Errors use the API's JSON error shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from domains import workspace_sync
from domains.api.authentication import ServicePrincipal, ServiceSignatureAuthentication
from domains.api.parsers import JSONParser
from domains.errors import InvalidInput


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


@extend_schema(exclude=True)
class _ServiceView(APIView):
    authentication_classes = [ServiceSignatureAuthentication]
    permission_classes = [IsMainAppService]
    parser_classes = [JSONParser]
    throttle_classes: list[Any] = []


class WorkspaceSyncView(_ServiceView):
    def put(self, request: Request, external_id: str) -> Response:
        data = workspace_sync.workspace_input(external_id=external_id, data=dict(_body(request)))
        return Response(workspace_sync.workspace_upsert(data=data).as_dict())

    def delete(self, request: Request, external_id: str) -> Response:
        version, field = workspace_sync.version_from(_delete_body(request))
        return Response(workspace_sync.workspace_delete(external_id=external_id,
                                                        version=version,
                                                        version_field=field).as_dict())


class MemberSyncView(_ServiceView):
    def put(self, request: Request, external_id: str, subject: str) -> Response:
        data = workspace_sync.member_input(external_id=external_id, subject=subject,
                                           data=dict(_body(request)))
        return Response(workspace_sync.member_upsert(data=data).as_dict())

    def delete(self, request: Request, external_id: str, subject: str) -> Response:
        data = workspace_sync.member_input(external_id=external_id, subject=subject,
                                           data=_delete_body(request), removal=True)
        return Response(workspace_sync.member_remove(data=data).as_dict())
