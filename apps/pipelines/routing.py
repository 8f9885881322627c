"""WebSocket URLs of live updates (see apps/pipelines/consumers.py for the protocol)."""

from django.urls import path, re_path

from apps.pipelines.consumers import ApplicationConsumer, ExecutionConsumer, UnknownSubscriptionConsumer

websocket_urlpatterns = [
    path("ws/executions/<uuid:execution_id>/", ExecutionConsumer.as_asgi()),
    path("ws/applications/<slug:application_name>/", ApplicationConsumer.as_asgi()),
    # Deny by default: any other path is refused with a close code, not an unrouted-path error.
    re_path(r"", UnknownSubscriptionConsumer.as_asgi()),
]
