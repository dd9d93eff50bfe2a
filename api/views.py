"""The domains API: thin views over `workflow.services` and `domains.selectors`.

Status codes:
- `POST /api/domains/`: 201 with the record. `POST /api/domains/register` (seed path): 200,
  as the seed answered, with `status` and `message` in the seed's words beside the record.
- `GET /api/domains/`: 200, a page of records; `GET /api/domains/<hostname>/`: 200.
- `POST /api/domains/<hostname>/verify/`: 202 with the record (the check runs in a worker).
- `DELETE /api/domains/<hostname>/`: 200 with the final record (status `removed`), not 204:
  the client learns the removal time and that the edge sync is under way.
- `GET /api/domains/verify/<domain>` (seed path): 200 with `status` (`verified`,
  `invalid_cname`, `pending_validation`, `error`) and `message` in the seed's words, the
  record (its own status as `state`) and whether it queued a check.
Errors on the seed's paths add the seed's `"status": "error"` and `"message"` to `error`.
Errors: see `api.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import generics, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.errors import error_body
from api.parsers import PARSER_CLASSES
from api.permissions import CanWriteDomain, visible_domain, visible_workspace
from api.throttling import (
    REGISTER_WORKSPACE_SCOPE,
    VERIFY_WORKSPACE_SCOPE,
    RegisterUserThrottle,
    VerifyUserThrottle,
    throttle_user,
    throttle_workspace,
    user_throttle_allows,
    workspace_throttle_allows,
)
from domains import selectors
from domains.errors import DomainError, InvalidInput
from domains.hostnames import HostnameError, normalize_hostname, validate_custom_hostname
from domains.models import LIVE_STATUSES, CustomDomain, DomainStatus
from workflow import services

TAG = "domains"

if TYPE_CHECKING:
    class _AnsweredDomain(CustomDomain):
        """The record as the legacy verify answer sees it: with the flag its serializer
        reads (an attribute of this one response, not a column)."""

        check_requested: bool


_ERROR_DESCRIPTIONS = {
    400: "Invalid input; `error.field` names the offending field (`body` for the body). A "
    "body field the path does not accept is refused (`unknown_field`).",
    401: "Not authenticated.",
    403: "Not a member of the workspace (`not_member`) or a read-only role "
    "(`role_read_only`).",
    404: "No such domain among the caller's workspaces.",
    409: "The domain changed concurrently or is already removed.",
    413: "The body is larger than the server accepts (`body_too_large`).",
    415: "The body's Content-Type is not JSON or form-encoded.",
    429: "Rate limited; see the `Retry-After` header.",
}


def _errors(*codes: int, **overrides: str) -> dict[int, OpenApiResponse]:
    """Error responses for the schema; `overrides` are keyed `e403="..."`."""
    return {
        code: OpenApiResponse(
            s.ErrorSerializer, description=overrides.get(f"e{code}", _ERROR_DESCRIPTIONS[code])
        )
        for code in codes
    }


_REGISTER_ERRORS = _errors(
    400, 401, 403, 409, 413, 415, 429,
    e403="Not a member of the workspace, or it does not exist (`not_member`); a read-only "
    "role (`role_read_only`); no custom domains on the plan (`plan_not_entitled`); or the "
    "plan's limit reached (`domain_limit_reached`).",
    e409="The hostname is held by another workspace (`hostname_taken`; `error.details` holds "
    "the TXT record that proves ownership) or already registered here (`already_registered`).",
    e429="Rate limited per user or per workspace (`throttled`), or too many certificates "
    "pending platform-wide (`certificate_quota`) or in this workspace "
    "(`workspace_certificate_quota`); see the `Retry-After` header.",
)


def _require_object(data: object) -> Mapping[str, Any]:
    # A JSON list, number, string or null parses fine but is not a request we understand.
    if not isinstance(data, Mapping):
        raise InvalidInput(
            "The request body must be a JSON object.", code="invalid_body", field="body"
        )
    return data


def _record(domain: CustomDomain, status_code: int = status.HTTP_200_OK, **kwargs: Any) -> Response:
    return Response(s.DomainSerializer(domain).data, status=status_code, **kwargs)


def _location(domain: CustomDomain) -> dict[str, str]:
    return {"Location": reverse("domains-api:domain-detail", kwargs={"hostname": domain.hostname})}


class DomainPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


class _WriteOnPost(APIView):
    """Views whose POST is a write on a workspace the body names."""

    parser_classes = PARSER_CLASSES
    staff_action = "add"

    def get_permissions(self) -> list[BasePermission]:
        perms: list[BasePermission] = [IsAuthenticated()]
        if self.request is not None and self.request.method == "POST":
            perms.append(CanWriteDomain())
        return perms

    def _register_domain(
        self, request: Request, *, hostname: str, slug: str, ws_field: str,
        prevalidation: str = "", **redirect: Any,
    ) -> CustomDomain:
        workspace = visible_workspace(user=request.user, slug=slug, field=ws_field)
        self.check_object_permissions(request, workspace)
        # The per-user limit counts only requests that could register something: a
        # developer trying bad input gets 400s, not an hour locked out.
        try:
            host = validate_custom_hostname(hostname)
        except HostnameError as exc:
            raise InvalidInput(exc.message, code=exc.code, field="hostname") from exc
        if redirect.get("redirect_to") is not None:
            # A bad target is bad input too: refused before it counts against the limits.
            services.redirect_target_check(workspace=workspace, hostname=host,
                                           target=redirect["redirect_to"])
        throttle_user(request, self, RegisterUserThrottle)
        throttle_workspace(request, self, scope=REGISTER_WORKSPACE_SCOPE, workspace=workspace)
        return services.domain_register(
            workspace=workspace, hostname=hostname, by=request.user, source="api",
            prevalidation=prevalidation, **redirect,
        )

    def _register_pair(
        self, request: Request, *, hostname: str, slug: str, ws_field: str,
        prevalidation: str = "", redirect_code: int | None = None, redirect_to: object = None,
    ) -> services.PairRegistration:
        """`include_www`: the apex and its www name in one step (docs/redirects.md)."""
        workspace = visible_workspace(user=request.user, slug=slug, field=ws_field)
        self.check_object_permissions(request, workspace)
        _, www = services.www_pair(hostname)
        try:
            validate_custom_hostname(www)
        except HostnameError as exc:
            raise InvalidInput(exc.message, code=exc.code, field="hostname") from exc
        throttle_user(request, self, RegisterUserThrottle)
        throttle_workspace(request, self, scope=REGISTER_WORKSPACE_SCOPE, workspace=workspace)
        return services.domain_register_pair(
            workspace=workspace, hostname=hostname, by=request.user, source="api",
            prevalidation=prevalidation, redirect_code=redirect_code, redirect_to=redirect_to,
        )


# An empty filter (`?workspace=`, `?status=`) means "no filter", as in an HTML form; the
# generated parameters said minLength 1, so a conforming client could not know that.
_EMPTY_FILTER_PARAMS = [
    OpenApiParameter(
        "workspace",
        {"type": "string", "maxLength": 63,
         "pattern": "^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?$"},
        description="Only this workspace's domains (its slug); empty means all of yours.",
    ),
    OpenApiParameter(
        "status",
        str,
        enum=["", *DomainStatus.values],
        description="Only domains in this status; empty means all but removed. Removed "
        "domains are listed only when asked for with `status=removed`.",
    ),
]


@extend_schema(tags=[TAG])
class DomainListCreateView(_WriteOnPost, generics.ListAPIView):
    serializer_class = s.DomainSerializer
    pagination_class = DomainPagination

    def get_queryset(self) -> QuerySet[CustomDomain]:
        query = s.DomainListQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        qs = selectors.domains_visible_to(self.request.user).select_related(
            "redirect_to").prefetch_related(Prefetch(
                "redirects", queryset=CustomDomain.objects.filter(status__in=LIVE_STATUSES),
                to_attr="live_redirects"), selectors.removal_events_prefetch())
        slug = query.validated_data.get("workspace")
        if slug:
            qs = qs.filter(workspace=visible_workspace(user=self.request.user, slug=slug))
        wanted = query.validated_data.get("status")
        # Removed records are history: listed only when asked for by name.
        return qs.filter(status=wanted) if wanted else qs.exclude(status=DomainStatus.REMOVED)

    @extend_schema(
        summary="List custom domains",
        description="Domains of every workspace the caller belongs to (all, for staff), "
        "newest first, or of one workspace with `?workspace=<slug>`.",
        parameters=[s.DomainListQuerySerializer, *_EMPTY_FILTER_PARAMS],
        responses={
            200: s.DomainSerializer(many=True),
            **_errors(
                400, 401, 403, 404,
                e403="Not a member of the workspace, or it does not exist (`not_member`).",
                e404="No such page.",
            ),
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Register a custom domain",
        description="Validates the hostname, checks the plan and conflicts, records the "
        "domain and requests its certificate. The answer lists the DNS records to create; "
        "the certificate validation record appears once the certificate authority has "
        "published it (poll the domain).",
        request=s.DomainRegisterSerializer,
        responses={201: s.DomainRegisterAnswerSerializer, **_REGISTER_ERRORS},
        examples=[
            OpenApiExample(
                "Register",
                value={"hostname": "gallery.client.com", "workspace": "acme"},
                request_only=True,
            ),
            OpenApiExample(
                "Register the apex and www together",
                value={"hostname": "client.com", "workspace": "acme", "include_www": True},
                request_only=True,
            ),
            OpenApiExample(
                "Keep an old domain, redirecting to the new one",
                value={"hostname": "old-studio.com", "workspace": "acme",
                       "redirect_to": "www.new-studio.com", "redirect_code": 301},
                request_only=True,
            ),
        ],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.DomainRegisterSerializer(data=_require_object(request.data))
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data.get("include_www"):
            pair = self._register_pair(
                request, hostname=data["hostname"], slug=data["workspace"],
                ws_field="workspace", prevalidation=data.get("prevalidation", ""),
                redirect_code=data.get("redirect_code"), redirect_to=data.get("redirect_to"))
            return Response(
                s.DomainRegisterAnswerSerializer(pair.primary, context={"pair": pair.redirect,
                                                              "notes": pair.notes}).data,
                status=status.HTTP_201_CREATED, headers=_location(pair.primary))
        domain = self._register_domain(
            request,
            hostname=body.validated_data["hostname"],
            slug=body.validated_data["workspace"],
            ws_field="workspace",
            prevalidation=body.validated_data.get("prevalidation", ""),
            **_redirect_args(data.get("redirect_to"), data.get("redirect_code")),
        )
        # The same answer as for a pair (`pair` null, no notes), so one schema describes both.
        return Response(s.DomainRegisterAnswerSerializer(domain).data,
                        status=status.HTTP_201_CREATED, headers=_location(domain))


def _redirect_args(redirect_to: object, redirect_code: object) -> dict[str, Any]:
    if redirect_to is None:
        return {}
    return {"redirect_to": redirect_to, "redirect_code": redirect_code}


_remove_redirects_param = OpenApiParameter(
    "remove_redirects", OpenApiTypes.BOOL, OpenApiParameter.QUERY, required=False,
    description="Also remove the domains that redirect to this one. Without it, a domain "
    "other domains redirect to is not removed: 409 `has_redirects` lists them.",
)


def _remove_redirects(request: Request) -> bool:
    raw = request.query_params.get("remove_redirects")
    if raw is None and isinstance(request.data, Mapping):
        raw = request.data.get("remove_redirects")
    if raw is None or raw is False:
        return False
    if raw is True or str(raw).strip().lower() in ("true", "1", "yes"):
        return True
    if str(raw).strip().lower() in ("false", "0", "no", ""):
        return False
    raise InvalidInput("remove_redirects must be true or false.", code="invalid",
                       field="remove_redirects")


_hostname_param = OpenApiParameter(
    "hostname",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The hostname, in any case, unicode or punycode, with or without the "
    "trailing dot.",
)


@extend_schema(tags=[TAG], parameters=[_hostname_param])
class DomainDetailView(APIView):
    parser_classes = PARSER_CLASSES

    def get_permissions(self) -> list[BasePermission]:
        perms: list[BasePermission] = [IsAuthenticated()]
        if self.request is not None and self.request.method in ("DELETE", "PATCH"):
            perms.append(CanWriteDomain())
        return perms

    def _domain(self, request: Request, hostname: str) -> CustomDomain:
        domain = visible_domain(user=request.user, hostname=hostname)
        self.check_object_permissions(request, domain)
        return domain

    @extend_schema(
        summary="Show a custom domain",
        responses={200: s.DomainSerializer, **_errors(401, 404)},
    )
    def get(self, request: Request, hostname: str) -> Response:
        return _record(self._domain(request, hostname))

    @extend_schema(
        summary="Remove a custom domain",
        description="Marks the domain removed at once (the hostname is free again) and "
        "detaches it from the CDN, the edge and its certificate in the background. Answers "
        "200 with the final record.",
        parameters=[_remove_redirects_param],
        responses={200: s.DomainSerializer, **_errors(
            401, 403, 404, 409, e409="The domain changed concurrently or is already removed, "
            "or other domains redirect to it (`has_redirects`; `error.details.redirects` "
            "lists them; ask again with `remove_redirects=true`).")},
    )
    def delete(self, request: Request, hostname: str) -> Response:
        domain = self._domain(request, hostname)
        domain = services.domain_remove_target(domain=domain, by=request.user, source="api",
                                               remove_redirects=_remove_redirects(request))
        return _record(domain)

    @extend_schema(
        summary="Change a custom domain's redirect",
        description="Make the domain a redirect to another custom domain of the same "
        "workspace (`redirect_to`, `redirect_code` 301 or 308), or serve the workspace on it "
        "again (`redirect_to: null`). The target must be a live domain of this workspace, "
        "not this domain and not itself a redirect; anything else is a 400.",
        request=s.DomainUpdateSerializer,
        responses={200: s.DomainSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    def patch(self, request: Request, hostname: str) -> Response:
        domain = self._domain(request, hostname)
        body = s.DomainUpdateSerializer(data=_require_object(request.data))
        body.is_valid(raise_exception=True)
        domain = services.domain_set_redirect(
            domain=domain, redirect_to=body.validated_data["redirect_to"],
            redirect_code=body.validated_data.get("redirect_code"), by=request.user,
            source="api")
        return _record(domain)


@extend_schema(tags=[TAG], parameters=[_hostname_param])
class DomainVerifyView(APIView):
    parser_classes = PARSER_CLASSES
    permission_classes = [IsAuthenticated, CanWriteDomain]
    throttle_classes = [VerifyUserThrottle]

    @extend_schema(
        summary="Check a custom domain now",
        description="Queues a check (DNS, ownership, certificate, CDN) and switches the "
        "domain to frequent checks for a while. Rate-limited per user and per workspace.",
        request=None,
        responses={202: s.DomainSerializer, **_errors(401, 403, 404, 409, 429)},
    )
    def post(self, request: Request, hostname: str) -> Response:
        domain = visible_domain(user=request.user, hostname=hostname)
        self.check_object_permissions(request, domain)
        throttle_workspace(request, self, scope=VERIFY_WORKSPACE_SCOPE, workspace=domain.workspace)
        domain = services.domain_request_check(domain=domain, by=request.user, source="api")
        return _record(domain, status.HTTP_202_ACCEPTED)


@extend_schema(tags=[TAG], parameters=[_hostname_param])
class DomainReleaseView(APIView):
    """the explicit release that lets another workspace claim the name freely."""

    parser_classes = PARSER_CLASSES
    permission_classes = [IsAuthenticated, CanWriteDomain]
    staff_action = "delete"

    @extend_schema(
        summary="Remove a custom domain and release its hostname",
        description="Like `DELETE`, and also gives the hostname up for good: the next "
        "workspace that registers it need not prove ownership with a TXT record. Without "
        "this release, any other workspace must.",
        request=None,
        parameters=[_remove_redirects_param],
        responses={200: s.DomainSerializer, **_errors(401, 403, 404, 409)},
    )
    def post(self, request: Request, hostname: str) -> Response:
        domain = visible_domain(user=request.user, hostname=hostname)
        self.check_object_permissions(request, domain)
        return _record(services.domain_remove_target(
            domain=domain, by=request.user, source="api",
            remove_redirects=_remove_redirects(request), release=True))


# --- the seed's paths, kept for the existing frontend ---------------------------------------


class _SeedErrors(APIView):
    """Errors on the seed's paths also carry the seed's `{"status": "error", "message"}`.

    The seed frontend shows `message` when `status` is `error`; our `error` object stays
    beside them for clients that read it.
    """

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        body = response.data
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            response.data = {"status": "error", "message": _seed_message(body["error"]),
                             **body}
        return response


def _seed_message(error: Mapping[str, Any]) -> str:
    """The error's message for a frontend that shows only `message`: records the message
    refers to ("create the TXT record below") are written into it."""
    message = str(error.get("message", ""))
    details = error.get("details")
    records = details.get("dns_records") if isinstance(details, Mapping) else None
    if not isinstance(records, list) or not records:
        return message
    lines = [f"{r.get('type')} record: name {r.get('name')}, value {r.get('value')}"
             for r in records if isinstance(r, Mapping)]
    return f"{message.replace(' below', '')} " + "; ".join(lines) + "."


@extend_schema(tags=[f"{TAG} (seed paths)"])
class LegacyRegisterView(_SeedErrors, _WriteOnPost):
    @extend_schema(
        summary="Register a custom domain (seed path)",
        description="Same as `POST /api/domains/` with the seed frontend's body: the "
        "hostname is `<subdomain>.<domain>` (or `domain` when `subdomain` is empty) and "
        "`workspaceId` is the workspace slug.",
        request=s.LegacyRegisterSerializer,
        responses={200: s.LegacyRegisterAnswerSerializer, **_REGISTER_ERRORS},
        examples=[
            OpenApiExample(
                "The seed's request",
                value={"subdomain": "gallery", "domain": "client.com", "workspaceId": "acme"},
                request_only=True,
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        body = s.LegacyRegisterSerializer(data=_require_object(request.data))
        body.is_valid(raise_exception=True)
        subdomain = body.validated_data["subdomain"].strip().strip(".")
        domain = body.validated_data["domain"].strip()
        if subdomain:
            _check_subdomain(subdomain)
        hostname = f"{subdomain}.{domain}" if subdomain else domain
        data = body.validated_data
        try:
            if data.get("includeWww"):
                pair = self._register_pair(request, hostname=hostname,
                                           slug=data["workspaceId"], ws_field="workspaceId",
                                           redirect_code=data.get("redirectCode"),
                                           redirect_to=data.get("redirectTo"))
                return Response(
                    {**s.LegacyRegisterAnswerSerializer(pair.primary).data,
                     "pair": s.DomainSerializer(pair.redirect).data if pair.redirect else None,
                     "notes": pair.notes},
                    headers=_location(pair.primary))
            domain = self._register_domain(
                request, hostname=hostname, slug=body.validated_data["workspaceId"],
                ws_field="workspaceId",
                **_redirect_args(data.get("redirectTo"), data.get("redirectCode")),
            )
        except DomainError as exc:
            # The seed's form has no `hostname` input; point at the part the user typed.
            if exc.field == "hostname":
                exc.field = "domain"
            exc.field = _SEED_FIELDS.get(exc.field or "", exc.field)
            raise
        # 200, not our paths' 201: the seed answered 200 and its frontend may test for it.
        return Response(
            s.LegacyRegisterAnswerSerializer(domain).data, headers=_location(domain)
        )


# The seed path's spellings of the redirect fields, for `error.field`.
_SEED_FIELDS = {"redirect_to": "redirectTo", "redirect_code": "redirectCode",
                "include_www": "includeWww"}


def _check_subdomain(subdomain: str) -> None:
    # Validate the left part on its own (under a known-good parent) so an error in it is
    # reported against `subdomain`, not against the whole hostname.
    try:
        normalize_hostname(f"{subdomain}.example.com")
    except HostnameError as exc:
        raise InvalidInput(
            f"'{subdomain[:80]}' is not a valid subdomain: {exc.message}",
            code="invalid_subdomain",
            field="subdomain",
        ) from exc


@extend_schema(tags=[f"{TAG} (seed paths)"])
class LegacyVerifyView(_SeedErrors):
    parser_classes = PARSER_CLASSES
    @extend_schema(
        summary="Domain status, checking it if allowed (seed path)",
        description="Returns the domain's status and DNS records. When the caller may change "
        "the domain, no check is already imminent, and the verify rate limits allow it, it "
        "also queues a check, like `POST /api/domains/<hostname>/verify/`. Never answers 429: "
        "the frontend polls this path, so a rate-limited poll still gets the status.",
        parameters=[
            OpenApiParameter("domain", OpenApiTypes.STR, OpenApiParameter.PATH),
        ],
        responses={200: s.LegacyVerifySerializer, **_errors(401, 404)},
    )
    def get(self, request: Request, domain: str) -> Response:
        record = cast("_AnsweredDomain", visible_domain(user=request.user, hostname=domain))
        record.check_requested = False
        if self._should_check(request, record):
            record = cast("_AnsweredDomain", services.domain_request_check(
                domain=record, by=request.user, source="api"))
            record.check_requested = True
        return Response(s.LegacyVerifySerializer(record).data)

    def _should_check(self, request: Request, record: CustomDomain) -> bool:
        # A domain already in its fast-check window is checked every few seconds anyway;
        # queueing another check per poll would only add audit rows and load.
        if record.fast_checks_until is not None and record.fast_checks_until > timezone.now():
            return False
        try:
            services.workspace_check_write_access(user=request.user, workspace=record.workspace)
        except DomainError:
            return False
        return user_throttle_allows(request, self, VerifyUserThrottle) and (
            workspace_throttle_allows(
                request, self, scope=VERIFY_WORKSPACE_SCOPE, workspace=record.workspace
            )
            is None
        )


@extend_schema(exclude=True)
class LegacyVerifyMissingView(_SeedErrors):
    """`/api/domains/verify/` without a hostname: a 400 naming what is missing, not "No
    custom domain 'verify'" (the path would otherwise be read as the hostname `verify`)."""

    parser_classes = PARSER_CLASSES

    def get(self, request: Request) -> Response:
        raise InvalidInput(
            "The hostname to check is missing: GET /api/domains/verify/<hostname>, e.g. "
            "/api/domains/verify/gallery.client.com.", code="required", field="domain")


class WorkspacePlanView(APIView):
    """A workspace's plan state: limit, usage, grace deadline and the domains at risk."""

    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["workspaces"], responses={200: s.WorkspacePlanSerializer,
                                                   **_errors(401, 403)})
    def get(self, request: Request, slug: str) -> Response:
        workspace = visible_workspace(user=request.user, slug=slug, field="slug")
        state = selectors.workspace_plan_state(workspace)
        return Response(s.WorkspacePlanSerializer(state).data)


@csrf_exempt  # token clients send no CSRF token; without this they got Django's HTML 403
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any other path under /api/: a JSON 404 in the API's error shape, not Django's page.

    This catch-all also stops CommonMiddleware's APPEND_SLASH redirect, so do it here: a
    GET for `/api/domains` goes to `/api/domains/`; other methods are told the right path
    (a redirect would turn a POST into a GET).
    """
    with_slash = request.path + "/"
    if not request.path.endswith("/") and _resolves_to_a_view(with_slash):
        if request.method in ("GET", "HEAD"):
            query = request.META.get("QUERY_STRING", "")
            return HttpResponsePermanentRedirect(with_slash + (f"?{query}" if query else ""))
        message = f"No such API endpoint; did you mean {with_slash}?"
    else:
        message = "No such API endpoint."
    return JsonResponse(
        error_body(code="not_found", message=message), status=status.HTTP_404_NOT_FOUND
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: JSON under /api/, Django's own page elsewhere (the admin)."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body(code="csrf_failed",
                       message=f"CSRF verification failed: {reason or 'no reason given'}. "
                       "Session clients send the csrftoken cookie's value in X-CSRFToken; "
                       "token clients send Authorization: Token ..."),
            status=status.HTTP_403_FORBIDDEN,
        )
    return django_csrf_failure(request, reason=reason)


def _resolves_to_a_view(path: str) -> bool:
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.func is not api_not_found
