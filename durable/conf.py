"""The one settings object over `settings.DURABLE`.

Defaults apply key by key, so a project with no `DURABLE` setting works. Import strings
are resolved once and cached; the cache is cleared on `setting_changed`, so
`override_settings(DURABLE=...)` behaves in tests. Validation lives in `checks.py`:
this module never raises for a bad value, it reports what it was given.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

POSTGRES_QUEUE = "durable.queue.postgres.PostgresQueue"
DATABASE_QUEUE = "durable.queue.database.DatabaseQueue"
POSTGRES_BUS = "durable.bus.postgres.PostgresBus"
MEMORY_BUS = "durable.bus.memory.InMemoryBus"

DEFAULTS: dict[str, Any] = {
    # None picks PostgresQueue on PostgreSQL and DatabaseQueue on any other database.
    "QUEUE_ADAPTER": None,
    "QUEUE_OPTIONS": {},
    "QUEUES": {"default": {"concurrency": 10}},
    # None picks PostgresBus on PostgreSQL and InMemoryBus on any other database.
    "MESSAGE_BUS": None,
    "MESSAGE_BUS_OPTIONS": {},
    "SCHEDULER": {"ENABLED": True, "TIMEZONE": "UTC"},
    "RETENTION": {"COMPLETED_DAYS": 30, "FAILED_DAYS": 90},
    "WORKFLOW_MODULES": [],
    "LEASE_SECONDS": 30,
    # A step whose worker died this many times while running it (an OOM kill, a crash in
    # native code) fails instead of taking down worker after worker.
    "MAX_LEASE_EXPIRIES": 10,
    # Bytes (UTF-8) of captured log text kept per step attempt; the rest is counted, not kept.
    "STEP_LOG_MAX_BYTES": 64_000,
    # How often an idle worker looks for due work when no wake-up arrives.
    "POLL_INTERVAL": 1.0,
    # At most this many outcomes are checkpointed in one transaction by a worker's
    # committer (durable.engine.committer). 1 checkpoints each alone.
    "CHECKPOINT_BATCH": 256,
    # Threads a worker runs sync steps on (None: its total concurrency, at most 64). Async
    # steps need none: they run as coroutines of the worker's event loop.
    "SYNC_THREADS": None,
    # Branches of a foreach without concurrency= become ready this many at a time (the
    # next starts as one finishes); None: durable.flow.branches.DEFAULT_WINDOW (1,000).
    "FANOUT_WINDOW": None,
    # The database alias Durable stores its state in.
    "DATABASE": "default",
    # A payload codec's dotted path (durable.codecs), e.g. "durable.codecs.FernetCodec",
    # and its options ({"keys": [...]} for Fernet); None stores payloads as plain JSON.
    "CODEC": None,
    "CODEC_OPTIONS": {},
    # What a step attempt's log stores (durable.engine.logcapture): logging records, what
    # it prints, and from which level (None: what the loggers' own levels let through).
    "CAPTURE_LOGS": True,
    "CAPTURE_STDOUT": True,
    "CAPTURE_LEVEL": None,
    # A bearer token that may read the metrics view (durable.web.metrics) besides staff.
    "METRICS_TOKEN": None,
}


class DurableSettings:
    """Attribute access over DEFAULTS merged with `settings.DURABLE`.

    The annotations give each setting's type as Durable reads it (checks.py reports values
    of another type); DEFAULTS, above, is the one place their defaults are written.
    """

    QUEUE_ADAPTER: str | None
    QUEUE_OPTIONS: dict[str, Any]
    QUEUES: dict[str, dict[str, Any]]
    MESSAGE_BUS: str | None
    MESSAGE_BUS_OPTIONS: dict[str, Any]
    SCHEDULER: dict[str, Any]
    RETENTION: dict[str, Any]
    WORKFLOW_MODULES: list[str]
    LEASE_SECONDS: float
    MAX_LEASE_EXPIRIES: int
    STEP_LOG_MAX_BYTES: int
    POLL_INTERVAL: float
    CHECKPOINT_BATCH: int
    SYNC_THREADS: int | None
    FANOUT_WINDOW: int | None
    DATABASE: str
    CODEC: str | None
    CODEC_OPTIONS: dict[str, Any]
    CAPTURE_LOGS: bool
    CAPTURE_STDOUT: bool
    CAPTURE_LEVEL: str | int | None
    METRICS_TOKEN: str | None

    @cached_property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(django_settings, "DURABLE", None)
        return value if isinstance(value, dict) else {}

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"unknown Durable setting {name!r}")
        value = self.user_settings.get(name, DEFAULTS[name])
        # Cache on the instance so later reads skip __getattr__ entirely.
        setattr(self, name, value)
        return value

    @property
    def uses_postgresql(self) -> bool:
        # Read from settings, not a connection: checks run before any connection exists.
        config = django_settings.DATABASES.get(self.DATABASE, {})
        return "postgresql" in str(config.get("ENGINE", ""))

    @property
    def queue_adapter_path(self) -> str:
        path = self.QUEUE_ADAPTER
        if path:
            return str(path)
        return POSTGRES_QUEUE if self.uses_postgresql else DATABASE_QUEUE

    @cached_property
    def queue_adapter_class(self) -> type[Any]:
        return import_string(self.queue_adapter_path)  # type: ignore[no-any-return]

    @property
    def bus_path(self) -> str:
        path = self.MESSAGE_BUS
        if path:
            return str(path)
        return POSTGRES_BUS if self.uses_postgresql else MEMORY_BUS

    @cached_property
    def bus_class(self) -> type[Any]:
        return import_string(self.bus_path)  # type: ignore[no-any-return]

    @cached_property
    def codec(self) -> Any:
        """The payload codec (a durable.codecs.Codec), made once; None without CODEC."""
        if not self.CODEC:
            return None
        options = self.CODEC_OPTIONS if isinstance(self.CODEC_OPTIONS, dict) else {}
        return import_string(str(self.CODEC))(options)

    def queue_names(self) -> list[str]:
        queues = self.QUEUES
        return list(queues) if isinstance(queues, dict) else []

    def queue_concurrency(self, name: str) -> int:
        config = self.QUEUES.get(name) if isinstance(self.QUEUES, dict) else None
        if isinstance(config, dict) and isinstance(config.get("concurrency"), int):
            return int(config["concurrency"])
        return 10

    def queue_global_concurrency(self, name: str) -> int | None:
        """At most this many steps of queue `name` run at once across all workers, or None
        (no such cap); checks.py validates it."""
        config = self.QUEUES.get(name) if isinstance(self.QUEUES, dict) else None
        cap = config.get("global_concurrency") if isinstance(config, dict) else None
        return cap if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else None

    def queue_rate_limit(self, name: str) -> object:
        """The queue's `rate_limit` option as given ("100/m"), or None; checks.py validates."""
        config = self.QUEUES.get(name) if isinstance(self.QUEUES, dict) else None
        return config.get("rate_limit") if isinstance(config, dict) else None

    def reload(self) -> None:
        for key in list(self.__dict__):
            delattr(self, key)


durable_settings = DurableSettings()


@receiver(setting_changed)
def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting in ("DURABLE", "DATABASES"):
        durable_settings.reload()
