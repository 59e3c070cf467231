"""Prometheus metrics from the web process, for deployments that scrape it rather than (or
as well as) the workers: the backlog gauges, read from the database (durable.telemetry).

Staff users may read it, and so may a scraper that sends
`Authorization: Bearer <DURABLE["METRICS_TOKEN"]>`. The counters of the work done live in
the workers that did it: scrape their `--metrics-port` for those.
"""

from __future__ import annotations

import hmac
import threading
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from durable.conf import durable_settings
from durable.telemetry import metrics
from durable.web.access import is_staff

_registry: Any = None
_lock = threading.Lock()


@require_GET
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    if not (_bearer_allowed(request) or is_staff(request.user)):
        response = HttpResponse("staff or the metrics bearer token only\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="durable"'
        return response
    if not metrics.available():
        return HttpResponse(f"{metrics.INSTALL_HINT}\n", status=501, content_type="text/plain")
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return HttpResponse(generate_latest(_backlog()), content_type=CONTENT_TYPE_LATEST)


def _bearer_allowed(request: HttpRequest) -> bool:
    token = durable_settings.METRICS_TOKEN
    if not token or not isinstance(token, str):
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def _backlog() -> Any:
    # One registry per process: its backlog is read at most once per BACKLOG_SECONDS,
    # however many scrapers ask.
    global _registry
    with _lock:
        if _registry is None:
            _registry = metrics.backlog_registry(
                durable_settings.queue_names, durable_settings.DATABASE
            )
        return _registry
