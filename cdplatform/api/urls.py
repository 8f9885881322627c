"""The API's routes under /api/: each app's own routes, put together, and the browsable root."""

from django.urls import path

from apps.accounts.api import urls as accounts
from apps.canary.api import urls as canary
from apps.deployments.api import urls as deployments
from apps.notifications.api import urls as notifications
from apps.pipelines.api import urls as pipelines
from apps.triggers.api import urls as triggers
from cdplatform.api.routers import api_root_view

APPS = (accounts, pipelines, deployments, triggers, notifications, canary)

urlpatterns = [
    path("", api_root_view(*(app.router for app in APPS)), name="api-root"),
    *(pattern for app in APPS for pattern in app.urlpatterns),
]
