"""WebSocket URLs of live execution updates (see apps/pipelines/consumers.py for the protocol)."""

from django.urls import path

from apps.pipelines.consumers import ApplicationConsumer, ExecutionConsumer

websocket_urlpatterns = [
    path("ws/executions/<uuid:execution_id>/", ExecutionConsumer.as_asgi()),
    path("ws/applications/<slug:application_name>/", ApplicationConsumer.as_asgi()),
]
