from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from staff.dashboard import dashboard_view

urlpatterns = [
    # Before "admin/" so the admin's catch-all does not answer it; admin_view = staff login.
    path("admin/domains/dashboard/", admin.site.admin_view(dashboard_view),
         name="domains_dashboard"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("api.urls")),
]
