"""The API's routes under /api/: each app registers its viewsets on the one router."""

from rest_framework.routers import DefaultRouter


class ApiRouter(DefaultRouter):
    """No format suffixes (``.json``): one representation per URL, chosen by the Accept header."""

    include_format_suffixes = False


router = ApiRouter()

# Each app's api/urls.py registers on `router` when imported here.
from apps.accounts.api import urls as _accounts  # noqa: E402, F401
from apps.pipelines.api import urls as _pipelines  # noqa: E402, F401

urlpatterns = [*_accounts.urlpatterns, *router.urls]
