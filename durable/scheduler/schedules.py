"""Writing schedules: by hand (`schedule`, `unschedule`) and from workflow classes
(`schedule_all_crons`), plus the problems `manage.py check` reports (durable.E010)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone as django_timezone
from django.utils.translation import gettext as _

from durable.api import _check_queue, resolve_workflow
from durable.conf import durable_settings
from durable.dsl import registry
from durable.dsl.cron import (
    ALLOW,
    SKIP,
    Cron,
    check_catch_up,
    check_overlap,
    class_schedule,
    get_zone,
    parse_expression,
)
from durable.exceptions import WorkflowNotFound
from durable.models import ScheduledWorkflow
from durable.serialization import normalize

logger = logging.getLogger("durable.scheduler")

Source = ScheduledWorkflow.Source

# Keys of DURABLE["SCHEDULER"]; a project may set only some of them.
OPTION_DEFAULTS: dict[str, Any] = {
    "ENABLED": True,  # run a scheduler thread inside every durable_worker
    "TIMEZONE": "UTC",  # the zone of schedules that name none
    "INTERVAL": 5.0,  # longest sleep between looks for changed schedules (seconds)
    "GRACE_SECONDS": 60.0,  # a tick seen later than this after its time counts as missed
}


def option(key: str) -> Any:
    config = durable_settings.SCHEDULER
    return (config if isinstance(config, dict) else {}).get(key, OPTION_DEFAULTS[key])


def using() -> str:
    return str(durable_settings.DATABASE)


def schedule(
    name: str,
    workflow: Any,
    cron: str,
    *,
    input: Mapping[str, Any] | None = None,
    queue: str | None = None,
    timezone: str | None = None,
    enabled: bool = True,
    catch_up: str = SKIP,
    overlap: str = ALLOW,
) -> ScheduledWorkflow:
    """Create or replace the schedule `name`. Everything is validated before anything is
    written: ValueError for a bad name, expression, zone, queue or policy, TypeError for
    non-JSON input, WorkflowNotFound for an unknown workflow."""
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise ValueError(f"schedule name must be a string of 1 to 200 characters, got {name!r}")
    definition = resolve_workflow(workflow)
    expression = parse_expression(cron)
    zone = timezone if timezone is not None else str(option("TIMEZONE"))
    get_zone(zone)
    if input is None:
        input = {}
    if not isinstance(input, Mapping):
        raise TypeError(f"input must be a dict (a JSON object), got {type(input).__name__}")
    data = normalize(dict(input), "input")
    queue = queue if queue is not None else definition.queue
    _check_queue(queue)
    policy = check_catch_up(catch_up)
    overlap = check_overlap(overlap)
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, got {enabled!r}")
    db = using()
    with transaction.atomic(using=db):
        row = ScheduledWorkflow.objects.using(db).select_for_update().filter(name=name).first()
        if row is not None and row.source == Source.CODE:
            raise ValueError(
                f"schedule {name!r} comes from the cron attribute of workflow "
                f"{row.workflow_name!r}; change the class, or use another name"
            )
        timing_changed = row is None or (row.cron_expression, row.timezone, row.enabled) != (
            expression,
            zone,
            enabled,
        )
        row = row or ScheduledWorkflow(name=name, source=Source.MANUAL)
        row.workflow_name = definition.name
        row.cron_expression = expression
        row.timezone = zone
        row.input = data
        row.queue = queue
        row.catch_up = policy
        row.overlap = overlap
        row.enabled = enabled
        if timing_changed:
            # A new or re-enabled schedule starts from now: earlier ticks were never missed.
            row.next_run_at = _first_tick(row) if enabled else None
        row.save(using=db)
    return row


def unschedule(name: str) -> None:
    """Delete the schedule `name` and its run history; LookupError if there is none.

    A schedule that comes from a class attribute is recreated by the next
    `schedule_all_crons()`: remove the attribute to stop it for good."""
    deleted = ScheduledWorkflow.objects.using(using()).filter(name=name).delete()[0]
    if not deleted:
        raise LookupError(f"no schedule named {name!r}")


@dataclass
class SyncResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    # Class schedules whose name a manual schedule already uses; they are left alone.
    conflicts: list[str] = field(default_factory=list)


def schedule_all_crons() -> SyncResult:
    """Make the code schedules in the database match the workflow classes of this process.

    A class with `cron` gets (or updates) a schedule named after the workflow; a code
    schedule whose class no longer declares one is disabled (kept, with its history, and
    re-enabled if the attribute comes back). Enabling/disabling a code schedule by hand is
    left as it is."""
    db = using()
    wanted = _class_schedules()
    result = SyncResult()
    rows = ScheduledWorkflow.objects.using(db).filter(name__in=list(wanted)) | (
        ScheduledWorkflow.objects.using(db).filter(source=Source.CODE)
    )
    existing = {row.name: row for row in rows}
    for name, fields in sorted(wanted.items()):
        row = existing.get(name)
        if row is None:
            _create_code_schedule(name, fields, result)
        elif row.source != Source.CODE:
            logger.warning(
                "workflow %r declares a cron schedule, but a manual schedule already uses the "
                "name %r; the class schedule is not registered",
                fields["workflow_name"],
                name,
            )
            result.conflicts.append(name)
        else:
            _update_code_schedule(row, fields, result)
    for name, row in sorted(existing.items()):
        if row.source == Source.CODE and name not in wanted and row.removed_from_code_at is None:
            ScheduledWorkflow.objects.using(db).filter(pk=row.pk).update(
                enabled=False,
                next_run_at=None,
                removed_from_code_at=django_timezone.now(),
                updated_at=django_timezone.now(),
            )
            result.disabled.append(name)
    if result.created or result.updated or result.disabled:
        logger.info(
            "cron schedules from code: created %s, updated %s, disabled %s",
            result.created or "none",
            result.updated or "none",
            result.disabled or "none",
        )
    return result


def _class_schedules() -> dict[str, dict[str, Any]]:
    wanted: dict[str, dict[str, Any]] = {}
    for definition in registry.all_definitions():
        spec = class_schedule(definition.workflow_class)
        if spec is None:
            continue
        wanted[definition.name] = {
            "workflow_name": definition.name,
            "cron_expression": spec.expression,
            "timezone": spec.timezone or str(option("TIMEZONE")),
            "input": spec.input,
            "queue": spec.queue or definition.queue,
            "catch_up": spec.catch_up,
            "overlap": spec.overlap,
        }
    return wanted


def _create_code_schedule(name: str, fields: dict[str, Any], result: SyncResult) -> None:
    row = ScheduledWorkflow(name=name, source=Source.CODE, enabled=True, **fields)
    row.next_run_at = _first_tick(row)
    try:
        with transaction.atomic(using=using()):
            row.save(using=using())
    except IntegrityError:
        return  # another worker starting at the same time registered it
    result.created.append(name)


def _update_code_schedule(
    row: ScheduledWorkflow, fields: dict[str, Any], result: SyncResult
) -> None:
    changes = {key: value for key, value in fields.items() if getattr(row, key) != value}
    timing_changed = "cron_expression" in changes or "timezone" in changes
    if row.removed_from_code_at is not None:
        changes.update(enabled=True, removed_from_code_at=None)
        timing_changed = True
    if not changes:
        return
    for key, value in changes.items():
        setattr(row, key, value)
    if timing_changed:
        changes["next_run_at"] = _first_tick(row) if row.enabled else None
    changes["updated_at"] = django_timezone.now()
    ScheduledWorkflow.objects.using(using()).filter(pk=row.pk).update(**changes)
    result.updated.append(row.name)


def _first_tick(row: ScheduledWorkflow) -> datetime:
    return Cron(row.cron_expression, row.timezone).next_after(django_timezone.now())


def schedule_problems() -> list[str]:
    """What `manage.py check` reports as durable.E010 without the database: scheduler
    options and class schedules."""
    problems = _option_problems()
    queues = set(durable_settings.queue_names())
    for definition in registry.all_definitions():
        queue = getattr(definition.workflow_class, "cron_queue", None)
        if getattr(definition.workflow_class, "cron", None) and queue and queue not in queues:
            problems.append(
                _(
                    "workflow %(workflow)r: cron_queue %(queue)r is not in DURABLE['QUEUES']; "
                    "no worker would run the scheduled runs"
                )
                % {"workflow": definition.name, "queue": queue}
            )
    return problems


def stored_schedule_problems() -> list[str]:
    """What `manage.py check --database` adds to durable.E010: the schedules stored in the
    database."""
    queues = set(durable_settings.queue_names())
    try:
        rows = list(ScheduledWorkflow.objects.using(using()).order_by("name"))
    except DatabaseError:
        rows = []  # not migrated yet: nothing stored to check
    problems: list[str] = []
    for row in rows:
        problems += [
            _("schedule %(name)r: %(problem)s") % {"name": row.name, "problem": p}
            for p in _row_problems(row, queues)
        ]
    return problems


def _option_problems() -> list[str]:
    problems: list[str] = []
    if not isinstance(option("ENABLED"), bool):
        problems.append(_("DURABLE['SCHEDULER']['ENABLED'] must be True or False"))
    try:
        get_zone(option("TIMEZONE"))
    except ValueError as exc:
        problems.append(_("DURABLE['SCHEDULER']['TIMEZONE']: %(problem)s") % {"problem": exc})
    interval, grace = option("INTERVAL"), option("GRACE_SECONDS")
    if not _is_number(interval) or not interval > 0:
        problems.append(_("DURABLE['SCHEDULER']['INTERVAL'] must be a positive number of seconds"))
    if not _is_number(grace) or not grace >= 0:
        problems.append(
            _("DURABLE['SCHEDULER']['GRACE_SECONDS'] must be a non-negative number of seconds")
        )
    return problems


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _row_problems(row: ScheduledWorkflow, queues: set[str]) -> list[str]:
    problems: list[str] = []
    try:
        parse_expression(row.cron_expression)
    except ValueError as exc:
        problems.append(str(exc))
    try:
        get_zone(row.timezone)
    except ValueError as exc:
        problems.append(str(exc))
    try:
        check_catch_up(row.catch_up)
    except ValueError as exc:
        problems.append(str(exc))
    try:
        check_overlap(row.overlap)
    except ValueError as exc:
        problems.append(str(exc))
    if row.enabled:
        try:
            registry.get(row.workflow_name)
        except WorkflowNotFound:
            problems.append(
                _("workflow %(workflow)r is not registered") % {"workflow": row.workflow_name}
            )
        if row.queue not in queues:
            problems.append(_("queue %(queue)r is not in DURABLE['QUEUES']") % {"queue": row.queue})
    return problems
