"""Top-level URL routes: the dashboard pages, the admin, the API and its schema, the job queue dashboard."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on their own; the pages name the icon too.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("django-rq/", include("django_rq.urls")),
    path("api/", include("cdplatform.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("", include("apps.accounts.urls")),
    path("", include("apps.pipelines.urls")),
    path("", include("apps.triggers.urls")),
    path("", include("apps.notifications.urls")),
    path("", include("apps.canary.urls")),
]

handler404 = "cdplatform.views.not_found"
