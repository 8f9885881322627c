"""The router every app's API builds its own routes with; the project's api/urls.py puts them together."""

from rest_framework.routers import APIRootView, SimpleRouter


class ApiRouter(SimpleRouter):
    """No format suffixes (``.json``): one representation per URL, chosen by the Accept header; no root view."""

    include_format_suffixes = False


def api_root_view(*routers: SimpleRouter):
    """The browsable root at /api/, listing every list endpoint of the routers (as DefaultRouter's would)."""
    root = {}
    for router in routers:
        for prefix, _viewset, basename in router.registry:
            root[prefix] = router.routes[0].name.format(basename=basename)
    return APIRootView.as_view(api_root_dict=root)
