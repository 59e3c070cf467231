"""What the operator commands share: argument parsing, API errors as CommandErrors, output.

The commands stay thin: they parse their arguments with these helpers, call `durable.api`
and print what comes back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from durable.exceptions import DurableError
from durable.models import StepExecution, WorkflowExecution
from durable.serialization import MAX_DEPTH

# Execution fields printed by `durable_list --json`; `durable_status --json` adds the data.
SUMMARY_FIELDS = (
    "workflow_id",
    "workflow_name",
    "status",
    "queue",
    "priority",
    "current_step",
    "error",
    "scheduled_at",
    "started_at",
    "completed_at",
    "created_at",
    "updated_at",
    "duration_ms",
)
DATA_FIELDS = ("workflow_module", "input", "context", "result")
STEP_FIELDS = (
    "step",
    "scope_key",
    "kind",
    "attempt",
    "status",
    "started_at",
    "completed_at",
    "duration_ms",
    "error",
    "worker_id",
)


@contextmanager
def api_errors() -> Iterator[None]:
    """Turn the errors of a refused API call into a CommandError (exit status 1)."""
    try:
        yield
    except ValidationError as exc:
        raise CommandError(f"invalid value:\n{validation_text(exc)}") from exc
    except (DurableError, LookupError, TypeError, ValueError) as exc:
        raise CommandError(str(exc)) from exc


def validation_text(exc: ValidationError) -> str:
    """One line per field error (`  field: message`), or per message for non-field errors."""
    if hasattr(exc, "error_dict"):
        return "\n".join(
            f"  {field}: {'; '.join(messages)}" for field, messages in exc.message_dict.items()
        )
    return "\n".join(f"  {message}" for message in exc.messages)


def parse_json(value: str, option: str) -> Any:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{option} is not valid JSON: {exc}") from exc
    except RecursionError:
        # Python 3.11's parser recurses; 3.12 and later parse any depth (checked below).
        raise CommandError(f"{option} nests too deeply") from None
    if _depth(parsed) > MAX_DEPTH:
        raise CommandError(f"{option} nests too deeply (more than {MAX_DEPTH} levels)")
    return parsed


def _depth(value: Any) -> int:
    """How deep lists and objects nest in `value` (without recursing: any depth)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_datetime(value: str, option: str) -> datetime:
    """An ISO 8601 date or datetime; one without a UTC offset is in the current time zone."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"{option} must be an ISO 8601 date or datetime (e.g. 2025-01-31T09:00:00+00:00), "
            f"got {value!r}"
        ) from None
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


def positive_int(value: int, option: str) -> int:
    if value < 1:
        raise CommandError(f"{option} must be at least 1, got {value}")
    return value


class _Encoder(DjangoJSONEncoder):
    def default(self, o: Any) -> Any:
        # Full precision: DjangoJSONEncoder cuts datetimes to milliseconds.
        return o.isoformat() if isinstance(o, datetime) else super().default(o)


def to_json(record: dict[str, Any]) -> str:
    return json.dumps(record, cls=_Encoder, ensure_ascii=False)


def execution_record(execution: WorkflowExecution, *, data: bool = False) -> dict[str, Any]:
    fields = SUMMARY_FIELDS + DATA_FIELDS if data else SUMMARY_FIELDS
    return {name: getattr(execution, name) for name in fields}


def step_record(row: StepExecution, *, logs: bool = False) -> dict[str, Any]:
    record = {name: getattr(row, name) for name in STEP_FIELDS}
    if logs:
        record["logs"] = row.logs or []
    return record


def when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")


def duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    return f"{ms} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def error_text(error: Any) -> str:
    """`Type: message` of a stored error record; other shapes as JSON."""
    if not error:
        return ""
    if isinstance(error, dict) and "message" in error:
        kind = str(error.get("type", "")).rsplit(".", 1)[-1]
        return f"{kind}: {error['message']}" if kind else str(error["message"])
    return to_json(error) if not isinstance(error, str) else error


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns as wide as their widest cell; the last column is not padded."""
    cells = [list(headers), *[[one_line(cell) for cell in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def one_line(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
