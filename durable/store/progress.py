"""Progress a running step attempt reports through `ctx.progress(done, total)`."""

from __future__ import annotations

from typing import Any

from durable.models import StepExecution, StepStatus


def record_progress(
    execution_pk: int,
    step: str,
    scope_key: str,
    attempt: int,
    progress: dict[str, Any],
    using: str,
) -> None:
    """Store `progress` on the attempt's row while it is still running (a late report from
    an attempt that already finished or was retaken changes nothing)."""
    StepExecution.objects.using(using).filter(
        execution_id=execution_pk,
        step=step,
        scope_key=scope_key,
        kind="step",
        attempt=attempt,
        status=StepStatus.RUNNING,
    ).update(progress=progress)
