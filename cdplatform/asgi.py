"""ASGI entry point: HTTP through Django, WebSockets through Channels, each app's WebSocket routes put together."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdplatform.settings")
django_asgi_app = get_asgi_application()

# /static/ is served by WhiteNoise's middleware: from the app directories with DEBUG, from STATIC_ROOT without.

# These need Django set up first.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402

from apps.pipelines import routing as pipelines  # noqa: E402
from cdplatform.live import UnknownSubscriptionConsumer  # noqa: E402

websocket_urlpatterns = [
    *pipelines.websocket_urlpatterns,
    # Deny by default: any other path is refused with a close code, not an unrouted-path error.
    re_path(r"", UnknownSubscriptionConsumer.as_asgi()),
]

from cdplatform.startup import freeze_start_up_objects  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Origin check against ALLOWED_HOSTS: a session cookie alone must not let another site's page subscribe.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

freeze_start_up_objects()
