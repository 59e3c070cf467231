"""The checkpoint: records outcomes of claimed tasks and moves their executions on.

`apply` is the one entry point for every outcome, whoever hands it in: a worker's
committer with the outcomes gathered while the last batch committed, an inline run with
one, a transactional step inside its own transaction. Nothing of an outcome is visible
before its transaction commits, and a failed outcome commits nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from durable.exceptions import LeaseLost
from durable.store import batch, checkpoints
from durable.store.batch import Alone, Completion
from durable.store.outcomes import (
    Compensated,
    Failed,
    Outcome,
    Parked,
    Result,
    Settled,
    Succeeded,
)


def apply(outcomes: Sequence[Outcome], *, using: str) -> list[Result]:
    """Record `outcomes`; one Result per outcome, in order."""
    results: list[Result | None] = [None] * len(outcomes)
    batched = [
        i
        for i, outcome in enumerate(outcomes)
        if isinstance(outcome, Succeeded)
        and outcome.definition is not None
        and batch.eligible(outcome.claim, outcome.definition, outcome.waits, using)
        and not transaction.get_connection(using).in_atomic_block
    ]
    if len(batched) > 1:
        items = [_completion(outcomes[i]) for i in batched]  # type: ignore[arg-type]
        try:
            for index, result in zip(
                batched, batch.complete_steps(items, using=using), strict=True
            ):
                if isinstance(result, LeaseLost):
                    results[index] = result
                elif not isinstance(result, Alone):
                    results[index] = Settled(chained=result)
        except Exception:
            # Nothing of the batch committed: each goes alone and meets the error (if it
            # has to do with it) on its own.
            pass
    for index, outcome in enumerate(outcomes):
        if results[index] is None:
            try:
                results[index] = _alone(outcome, using)
            except Exception as exc:
                results[index] = exc
    return [r for r in results if r is not None]


def _completion(outcome: Succeeded) -> Completion:
    assert outcome.definition is not None
    return Completion(
        outcome.claim,
        outcome.definition,
        outcome.ops,
        outcome.output,
        outcome.duration_ms,
        outcome.logs,
        outcome.chain,
    )


def _alone(outcome: Outcome, using: str) -> Settled:
    claim, definition = outcome.claim, outcome.definition
    if isinstance(outcome, Succeeded):
        assert definition is not None
        chained = checkpoints.complete_step(
            claim,
            definition,
            ops=outcome.ops,
            output=outcome.output,
            duration_ms=outcome.duration_ms,
            using=using,
            waits=outcome.waits,
            logs=outcome.logs,
            chain=outcome.chain,
        )
        return Settled(chained=chained)
    if isinstance(outcome, Failed):
        retry_at = checkpoints.fail_step(
            claim,
            definition,
            error=outcome.error,
            retryable=outcome.retryable,
            duration_ms=outcome.duration_ms,
            using=using,
            waits=outcome.waits,
            logs=outcome.logs,
        )
        return Settled(retry_at=retry_at)
    if isinstance(outcome, Parked):
        assert outcome.wait is not None
        assert outcome.waits is not None
        checkpoints.park_step(
            claim,
            wait=outcome.wait,
            effects=outcome.waits,
            duration_ms=outcome.duration_ms,
            using=using,
            logs=outcome.logs,
        )
        return Settled()
    assert isinstance(outcome, Compensated)
    assert definition is not None
    checkpoints.complete_compensation(
        claim,
        definition,
        error=outcome.error,
        retryable=outcome.retryable,
        duration_ms=outcome.duration_ms,
        using=using,
        logs=outcome.logs,
        output=outcome.output,
    )
    return Settled()
