"""API routes under /api/ (the schema and docs pages are routed in vedomains_site/urls.py)."""

from __future__ import annotations

from django.urls import path, re_path

from domains.api import service_views, views

app_name = "domains-api"

urlpatterns = [
    # The seed's paths come first: `domains/register` and `domains/verify/<domain>` would
    # otherwise be read as hostnames.
    path("domains/register", views.LegacyRegisterView.as_view(), name="legacy-register"),
    path("domains/verify/<str:domain>", views.LegacyVerifyView.as_view(), name="legacy-verify"),
    path("domains/", views.DomainListCreateView.as_view(), name="domain-list"),
    path("domains/<str:hostname>/", views.DomainDetailView.as_view(), name="domain-detail"),
    path("domains/<str:hostname>/verify", views.DomainVerifyView.as_view(), name="domain-verify"),
    # The main app's server-to-server sync (issue 20; HMAC-signed, not a user API).
    path("service/workspaces/<str:external_id>", service_views.WorkspaceSyncView.as_view(),
         name="service-workspace"),
    path("service/workspaces/<str:external_id>/members/<str:subject>",
         service_views.MemberSyncView.as_view(), name="service-member"),
    re_path(r"^", views.api_not_found, name="not-found"),
]
