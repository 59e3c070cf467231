from __future__ import annotations

from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("durable/", include("durable.urls")),
    path("", RedirectView.as_view(url="/durable/", permanent=False)),
    # Static files for the demo under daphne (DEBUG only; empty otherwise).
    *staticfiles_urlpatterns(),
]
