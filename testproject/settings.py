"""Settings for the demo and the test suite.

SQLite by default (the embedded demo); PostgreSQL when DATABASE_URL is set, e.g.
DATABASE_URL=postgres://postgres@127.0.0.1:5432/durable.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from testproject import dburl

BASE_DIR = Path(__file__).resolve().parent.parent
# Runs side by side (scripts/matrix.sh) each give their own, for the SQLite files.
VAR_DIR = Path(os.environ.get("DURABLE_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "durable-demo-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

# The dashboard's live updates need durable[web]; a worker-only install (durable[worker])
# runs this project without it.
HAS_CHANNELS = importlib.util.find_spec("channels") is not None

# daphne is not an app here: its app only turns `runserver` into an ASGI server (the demo
# and the browser tests run the daphne command), and importing it installs Twisted, whose
# pickling hooks (twisted.persisted.styles) break pickling of Django 6.1's Task.
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    *(["channels"] if HAS_CHANNELS else []),
    "django_htmx",
    "durable",
    "testproject.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "testproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "testproject.wsgi.application"
ASGI_APPLICATION = "testproject.asgi.application"

# The dashboard's live updates go over Channels; one process needs no broker.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ["REDIS_URL"]]},
    }
    if os.environ.get("REDIS_URL")
    else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
}

DATABASES = {
    "default": dburl.parse(os.environ["DATABASE_URL"], BASE_DIR)
    if os.environ.get("DATABASE_URL")
    else dburl.sqlite(VAR_DIR / "demo.sqlite3")
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
LOGIN_URL = "admin:login"

DURABLE = {
    "QUEUES": {
        "default": {"concurrency": 8},
        "payments": {"concurrency": 2},
        "high_priority": {"concurrency": 4},
        # Tests add queues of their own for worker processes, e.g.
        # DURABLE_EXTRA_QUEUES='{"capped": {"concurrency": 4, "global_concurrency": 2}}'.
        **json.loads(os.environ.get("DURABLE_EXTRA_QUEUES") or "{}"),
    },
    "LEASE_SECONDS": float(os.environ.get("DURABLE_LEASE_SECONDS", "30")),
    "MAX_LEASE_EXPIRIES": int(os.environ.get("DURABLE_MAX_LEASE_EXPIRIES", "10")),
    "POLL_INTERVAL": float(os.environ.get("DURABLE_POLL_INTERVAL", "0.5")),
    # Tests hand worker processes their own workflow modules through the environment.
    "WORKFLOW_MODULES": [m for m in os.environ.get("DURABLE_WORKFLOW_MODULES", "").split(",") if m],
    # A broker queue adapter for tests and the benchmark, e.g. DURABLE_QUEUE_ADAPTER=
    # durable.queue.redis.RedisQueue DURABLE_QUEUE_OPTIONS='{"prefix": "bench"}'.
    "QUEUE_ADAPTER": os.environ.get("DURABLE_QUEUE_ADAPTER") or None,
    "QUEUE_OPTIONS": json.loads(os.environ.get("DURABLE_QUEUE_OPTIONS") or "{}"),
    # A payload codec for worker processes of the codec tests, e.g. DURABLE_CODEC=
    # durable.codecs.FernetCodec DURABLE_CODEC_OPTIONS='{"keys": ["..."]}'.
    "CODEC": os.environ.get("DURABLE_CODEC") or None,
    "CODEC_OPTIONS": json.loads(os.environ.get("DURABLE_CODEC_OPTIONS") or "{}"),
}

# Django's Tasks API (django-tasks) on Durable workers; used by tests/tasks.
TASKS = {
    "default": {"BACKEND": "durable.tasks.DurableBackend"},
    "retrying": {
        "BACKEND": "durable.tasks.DurableBackend",
        "OPTIONS": {"max_attempts": 3, "backoff": "constant", "base": 0},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"durable": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}

# Tests and the benchmark turn OpenTelemetry on through the environment (testproject/telemetry.py).
from testproject.telemetry import configure_from_environment  # noqa: E402

configure_from_environment()
