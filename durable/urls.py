"""The dashboard, for staff and operators: `path("durable/", include("durable.urls"))`."""

from __future__ import annotations

from django.urls import path

from durable.web import bulk_views, prometheus, queue_views, restart, signin, views

app_name = "durable"

urlpatterns = [
    path("", views.execution_list, name="execution-list"),
    path("login/", signin.sign_in, name="login"),
    path("logout/", signin.sign_out, name="logout"),
    path("start/", views.start_workflow, name="start-workflow"),
    path("metrics/", views.metrics, name="metrics"),
    path("metrics/prometheus/", prometheus.prometheus_metrics, name="prometheus-metrics"),
    path("queues/", queue_views.queue_list, name="queues"),
    path("queues/<str:name>/<str:action>/", queue_views.queue_control, name="queue-control"),
    path("bulk/dismiss/", bulk_views.bulk_dismiss, name="bulk-dismiss"),
    path("bulk/<str:action>/", bulk_views.bulk_confirm, name="bulk-confirm"),
    path("bulk/<str:action>/perform/", bulk_views.bulk_perform, name="bulk-perform"),
    path("executions/<str:workflow_id>/", views.execution_detail, name="execution-detail"),
    path(
        "executions/<str:workflow_id>/regions/<str:region>/",
        views.execution_region,
        name="execution-region",
    ),
    path("executions/<str:workflow_id>/cancel/", views.cancel_execution, name="cancel"),
    path("executions/<str:workflow_id>/retry/", restart.retry_execution, name="retry"),
    path("executions/<str:workflow_id>/resume/", restart.resume_execution, name="resume"),
    path("executions/<str:workflow_id>/events/", views.send_event, name="send-event"),
    path(
        "executions/<str:workflow_id>/inputs/<int:input_pk>/respond/",
        views.respond,
        name="respond",
    ),
]
