"""API routes under /api/ (the schema and docs pages are routed in vedomains_site/urls.py).

Every resource path ends with a slash, and each is also answered without it (or, for the
seed's two paths, with it): a client that spells it the other way gets the same view, not
a redirect (which would turn a POST into a GET) nor Django's HTML CSRF page. The second
spelling is left out of the OpenAPI schema (`schema_hooks.drop_alternate_spellings`).
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path, re_path

from api import service_views, views

app_name = "domains-api"


def both_spellings(route: str, view: type[Any], name: str, *, canonical_slash: bool = True
                   ) -> list[URLPattern]:
    """The route as documented, plus the same route with (or without) the final slash."""
    canonical = route.rstrip("/") + ("/" if canonical_slash else "")
    other = route.rstrip("/") + ("" if canonical_slash else "/")
    alternate = view.as_view()
    alternate.vedomains_alternate_spelling = True
    return [path(canonical, view.as_view(), name=name),
            path(other, alternate, name=f"{name}-alt")]


urlpatterns = [
    # The seed's paths come first: `domains/register` and `domains/verify/<domain>` would
    # otherwise be read as hostnames.
    *both_spellings("domains/register", views.LegacyRegisterView, "legacy-register",
                    canonical_slash=False),
    *both_spellings("domains/verify/<str:domain>", views.LegacyVerifyView, "legacy-verify",
                    canonical_slash=False),
    *both_spellings("domains/verify/", views.LegacyVerifyMissingView, "legacy-verify-missing"),
    *both_spellings("domains/", views.DomainListCreateView, "domain-list"),
    *both_spellings("domains/<str:hostname>/", views.DomainDetailView, "domain-detail"),
    *both_spellings("domains/<str:hostname>/verify/", views.DomainVerifyView, "domain-verify"),
    *both_spellings("domains/<str:hostname>/release/", views.DomainReleaseView,
                    "domain-release"),
    *both_spellings("workspaces/<str:slug>/", views.WorkspacePlanView, "workspace-plan"),
    # The main app's server-to-server sync (HMAC-signed, not a user API).
    path("service/import", service_views.BulkImportView.as_view(), name="service-import"),
    path("service/workspaces/<str:external_id>", service_views.WorkspaceSyncView.as_view(),
         name="service-workspace"),
    # `path`: a subject may contain `/` (sent raw or as %2F, which the server decodes).
    path("service/workspaces/<str:external_id>/members/<path:subject>",
         service_views.MemberSyncView.as_view(), name="service-member"),
    re_path(r"^", views.api_not_found, name="not-found"),
]
