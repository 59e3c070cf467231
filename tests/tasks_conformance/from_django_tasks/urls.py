# Adapted from django-tasks 0.12.0, tests/urls.py (the repository at
# its tag), to run on DurableBackend with Durable's worker; see ../README.md for what changed
# and why.
# Copyright (c) Jake Howard and individual contributors. All rights reserved.
# BSD 3-Clause License: see ../LICENSE-django-tasks.
from django.urls import path

from . import views

urlpatterns = [
    path("meaning-of-life/", views.calculate_meaning_of_life, name="meaning-of-life"),
    path("result/<str:result_id>", views.get_task_result, name="result"),
    path(
        "meaning-of-life-async/",
        views.calculate_meaning_of_life_async,
        name="meaning-of-life-async",
    ),
]
