"""WebSocket routes of the dashboard, for a Channels `URLRouter`:

URLRouter(durable.routing.websocket_urlpatterns)
"""

from __future__ import annotations

from django.urls import path

from durable.web.consumers import ExecutionConsumer, ExecutionListConsumer

websocket_urlpatterns = [
    path("ws/durable/executions/", ExecutionListConsumer.as_asgi()),
    path("ws/durable/executions/<str:workflow_id>/", ExecutionConsumer.as_asgi()),
]
