"""System checks (`manage.py check`): misconfiguration is reported here, not by a crash
inside a worker. Ids: durable.E0xx for errors, durable.W0xx for warnings."""

from __future__ import annotations

from typing import Any

import django
from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from durable.bus import CLIENT_EXTRAS, MessageBus
from durable.conf import DEFAULTS, durable_settings
from durable.dsl import registry
from durable.dsl.limits import parse_rate
from durable.engine.logcapture import capture_level
from durable.queue.base import QueueAdapter
from durable.scheduler import schedule_problems, stored_schedule_problems
from durable.telemetry import metrics


@register("durable")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, "DURABLE", {})
    if not isinstance(raw, dict):
        return [
            Error(
                _("DURABLE must be a dict."),
                id="durable.E001",
                hint=_("got %(type)s") % {"type": type(raw).__name__},
            )
        ]
    messages: list[CheckMessage] = []
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        messages.append(
            Warning(
                _("unknown DURABLE key(s): %(keys)s") % {"keys": ", ".join(unknown)},
                hint=_("known keys: %(keys)s") % {"keys": ", ".join(sorted(DEFAULTS))},
                id="durable.W001",
            )
        )
    messages += _check_database()
    messages += _check_queues()
    messages += _check_numbers()
    messages += _check_dicts()
    messages += _check_retention()
    messages += _check_adapter()
    messages += _check_codec()
    messages += _check_telemetry()
    return messages


def _check_telemetry() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for key in ("CAPTURE_LOGS", "CAPTURE_STDOUT"):
        value = getattr(durable_settings, key)
        if not isinstance(value, bool):
            message = _("DURABLE[%(key)r] must be True or False, got %(value)r.")
            messages.append(Error(message % {"key": key, "value": value}, id="durable.E050"))
    try:
        capture_level(durable_settings.CAPTURE_LEVEL)
    except ValueError:
        messages.append(
            Error(
                _("DURABLE['CAPTURE_LEVEL'] = %(value)r is not a logging level.")
                % {"value": durable_settings.CAPTURE_LEVEL},
                hint=_("None, a level name such as 'DEBUG', or a number."),
                id="durable.E051",
            )
        )
    token = durable_settings.METRICS_TOKEN
    if token is not None and (not isinstance(token, str) or not token.strip()):
        message = _("DURABLE['METRICS_TOKEN'] must be a non-empty string or None.")
        messages.append(Error(message, id="durable.E052"))
    elif token is not None and not metrics.available():
        messages.append(
            Error(
                _("DURABLE['METRICS_TOKEN'] is set but prometheus-client is not installed."),
                hint=_("pip install 'durable[prometheus]'"),
                id="durable.E053",
            )
        )
    return messages


def _check_codec() -> list[CheckMessage]:
    """DURABLE["CODEC"] must load and accept DURABLE["CODEC_OPTIONS"]: a worker that could
    not encode would fail every step, one that could not decode every read."""
    if not durable_settings.CODEC:
        return []
    try:
        durable_settings.codec  # noqa: B018 (made here: the check is that it can be)
    except ImportError as exc:
        problem = f"cannot be imported: {exc}"
    except (TypeError, ValueError) as exc:
        problem = f"refused its CODEC_OPTIONS: {exc}"
    else:
        return []
    return [
        Error(
            f"DURABLE['CODEC'] ({durable_settings.CODEC!r}) {problem}",
            hint="e.g. 'durable.codecs.FernetCodec' with CODEC_OPTIONS {'keys': [key, ...]}",
            id="durable.E030",
        )
    ]


def _check_database() -> list[CheckMessage]:
    alias = durable_settings.DATABASE
    if alias not in settings.DATABASES:
        message = _("DURABLE['DATABASE'] = %(alias)r is not in DATABASES.") % {"alias": alias}
        return [Error(message, id="durable.E008")]
    config = settings.DATABASES[alias]
    if "sqlite3" in config.get("ENGINE", "") and (
        config.get("OPTIONS", {}).get("transaction_mode") != "IMMEDIATE"
    ):
        return [
            Warning(
                _("Durable on SQLite needs OPTIONS['transaction_mode'] = 'IMMEDIATE'."),
                hint=_(
                    "Without it, a worker and a web process writing at once can fail with "
                    "'database is locked'. Add {'transaction_mode': 'IMMEDIATE', 'timeout': 20} "
                    "to the database OPTIONS."
                ),
                id="durable.W002",
            )
        ]
    return []


def _check_queues() -> list[CheckMessage]:
    queues = durable_settings.QUEUES
    if not isinstance(queues, dict) or not queues:
        return [
            Error(
                _("DURABLE['QUEUES'] must be a non-empty dict of queue name -> options."),
                hint=_('e.g. {"default": {"concurrency": 10}}'),
                id="durable.E003",
            )
        ]
    messages: list[CheckMessage] = []
    for name, config in queues.items():
        concurrency = config.get("concurrency", 10) if isinstance(config, dict) else None
        if (
            not isinstance(name, str)
            or not isinstance(config, dict)
            or not isinstance(concurrency, int)
            or isinstance(concurrency, bool)
            or concurrency < 1
        ):
            messages.append(
                Error(
                    _("DURABLE['QUEUES'][%(name)r] must be a dict with an int 'concurrency' >= 1.")
                    % {"name": name},
                    id="durable.E003",
                )
            )
        cap = config.get("global_concurrency") if isinstance(config, dict) else None
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            messages.append(
                Error(
                    f"DURABLE['QUEUES'][{name!r}]['global_concurrency'] must be an int >= 1 "
                    f"(at most that many steps of the queue at once, across all workers), "
                    f"got {cap!r}.",
                    id="durable.E022",
                )
            )
        rate = config.get("rate_limit") if isinstance(config, dict) else None
        if rate is not None:
            try:
                parse_rate(rate)
            except ValueError as exc:
                messages.append(
                    Error(
                        _("DURABLE['QUEUES'][%(name)r]['rate_limit']: %(problem)s")
                        % {"name": name, "problem": exc},
                        id="durable.E021",
                    )
                )
    configured = set(queues)
    for definition in registry.all_definitions():
        for queue in sorted(definition.queues() - configured):
            messages.append(
                Error(
                    _(
                        "workflow %(workflow)r uses queue %(queue)r, which is not in "
                        "DURABLE['QUEUES']; no worker would ever run those steps."
                    )
                    % {"workflow": definition.name, "queue": queue},
                    hint=_("add %(queue)r to DURABLE['QUEUES'].") % {"queue": queue},
                    id="durable.E004",
                )
            )
    for problem in registry.import_errors:
        message = _("invalid workflow module: %(problem)s") % {"problem": problem}
        messages.append(Error(message, id="durable.E005"))
    return messages


def _check_numbers() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for key in ("LEASE_SECONDS", "POLL_INTERVAL", "MAX_LEASE_EXPIRIES", "CHECKPOINT_BATCH"):
        value = getattr(durable_settings, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            messages.append(
                Error(
                    _("DURABLE[%(key)r] must be a positive number, got %(value)r.")
                    % {"key": key, "value": value},
                    id="durable.E006",
                )
            )
    modules = durable_settings.WORKFLOW_MODULES
    if not isinstance(modules, list | tuple) or not all(isinstance(m, str) for m in modules):
        messages.append(
            Error(
                _("DURABLE['WORKFLOW_MODULES'] must be a list of dotted module paths."),
                id="durable.E007",
            )
        )
    return messages


def _check_dicts() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for key in ("QUEUE_OPTIONS", "MESSAGE_BUS_OPTIONS", "SCHEDULER", "RETENTION"):
        if not isinstance(getattr(durable_settings, key), dict):
            message = _("DURABLE[%(key)r] must be a dict.") % {"key": key}
            messages.append(Error(message, id="durable.E009"))
    return messages


def _check_retention() -> list[CheckMessage]:
    config = durable_settings.RETENTION
    if not isinstance(config, dict):
        return []  # reported as E009
    messages: list[CheckMessage] = []
    for key in ("COMPLETED_DAYS", "FAILED_DAYS"):
        value = config.get(key, 0)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value < 0
        ):
            messages.append(
                Error(
                    _(
                        "DURABLE['RETENTION'][%(key)r] must be a number of days >= 0, or None "
                        "to keep forever; got %(value)r."
                    )
                    % {"key": key, "value": value},
                    id="durable.E015",
                )
            )
    interval = config.get("INTERVAL_SECONDS", 3600)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        messages.append(
            Error(
                _(
                    "DURABLE['RETENTION']['INTERVAL_SECONDS'] must be a positive number of "
                    "seconds; got %(value)r."
                )
                % {"value": interval},
                id="durable.E015",
            )
        )
    return messages


def _check_adapter() -> list[CheckMessage]:
    return _check_plugin(
        "QUEUE_ADAPTER",
        durable_settings.queue_adapter_path,
        QueueAdapter,
        durable_settings.QUEUE_OPTIONS,
        import_id="durable.E002",
        extra_id="durable.E014",
    )


@register("durable")
def check_message_bus(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return _check_plugin(
        "MESSAGE_BUS",
        durable_settings.bus_path,
        MessageBus,
        durable_settings.MESSAGE_BUS_OPTIONS,
        import_id="durable.E011",
        extra_id="durable.E012",
    )


def _check_plugin(
    setting: str, path: str, base: type[Any], options: Any, *, import_id: str, extra_id: str
) -> list[CheckMessage]:
    """An adapter named by an import string: importable, of the right kind, with its client
    library installed (naming the extra that installs it), and its own checks."""
    try:
        cls = import_string(path)
    except ImportError as exc:
        missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
        extra = CLIENT_EXTRAS.get((missing or "").partition(".")[0])
        if extra is not None:
            return [
                Error(
                    _(
                        "DURABLE[%(setting)r] = %(path)r needs the %(package)r package, "
                        "which is not installed."
                    )
                    % {"setting": setting, "path": path, "package": missing},
                    hint=_("pip install durable[%(extra)s]") % {"extra": extra},
                    id=extra_id,
                )
            ]
        message = _("DURABLE[%(setting)r] = %(path)r cannot be imported: %(problem)s")
        return [Error(message % {"setting": setting, "path": path, "problem": exc}, id=import_id)]
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return [
            Error(
                _("DURABLE[%(setting)r] = %(path)r is not a %(base)s subclass.")
                % {"setting": setting, "path": path, "base": base.__name__},
                id=import_id,
            )
        ]
    plugin: Any = cls  # a QueueAdapter or MessageBus subclass: both have `check`
    return list(plugin.check(options if isinstance(options, dict) else {}))


@register("durable")
def check_schedules(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Scheduler options and class schedules (E010); never the database."""
    return [Error(p, id="durable.E010") for p in schedule_problems()]


@register(Tags.database)
def check_stored_schedules(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """The schedules stored in the database (E010), only when asked for its alias.

    Tagged `database` alone, so Django runs it only for `check --database` and `migrate`.
    Since Django 6.1 every check is handed every alias, so being handed Durable's alias is not
    enough: the tag is what keeps a plain `manage.py check` (and `check --tag durable`) off
    the database.
    """
    if not databases or durable_settings.DATABASE not in databases:
        return []
    return [Error(p, id="durable.E010") for p in stored_schedule_problems()]


@register("durable")
def check_tasks_framework(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """On Django 6, the django-tasks backport beside Django's own Tasks framework (W044)."""
    if django.VERSION < (6, 0) or not apps.is_installed("django_tasks"):
        return []
    return [
        Warning(
            _(
                "'django_tasks' is in INSTALLED_APPS, but this Django has its own Tasks "
                "framework, which DurableBackend serves."
            ),
            hint=_(
                "Remove 'django_tasks' from INSTALLED_APPS and import task from django.tasks: "
                "the backport checks every TASKS backend a second time, and its tasks are not "
                "Django's."
            ),
            id="durable.W044",
        )
    ]
