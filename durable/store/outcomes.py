"""What a claimed task came to, handed from the engine to the checkpoint.

An outcome names the claim it settles, what the attempt did, and what the step's waits
did during it. `durable.store.checkpoint.apply` records any mix of them, in one
transaction or in several, and answers each with a `Settled` or the error it met.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from durable.dsl.nodes import Definition
from durable.flow.ops import Op
from durable.flow.waits import WaitSpec
from durable.store.claims import Chain
from durable.store.records import ClaimedTask, WaitEffects


@dataclass
class Outcome:
    claim: ClaimedTask
    # None only for a claim whose workflow this worker cannot load.
    definition: Definition | None
    duration_ms: int = 0
    logs: list[dict[str, Any]] | None = None
    waits: WaitEffects | None = None


@dataclass
class Succeeded(Outcome):
    """A step attempt returned `output` after making `ops` to the context."""

    ops: list[Op] = field(default_factory=list)
    output: Any = None
    # Leave to claim the execution's next step (or a due task of the queue) for the
    # caller, who runs it next.
    chain: Chain | None = None


@dataclass
class Failed(Outcome):
    """A step attempt raised (or could not run): retried after its backoff, or the end."""

    error: dict[str, Any] = field(default_factory=dict)
    retryable: bool = True


@dataclass
class Parked(Outcome):
    """A step attempt suspended on a wait."""

    wait: WaitSpec | None = None


@dataclass
class Continued(Outcome):
    """A step attempt called `ctx.continue_as_new(input)`: the run ends `continued` and a
    fresh run of its workflow starts with `input`."""

    input: dict[str, Any] = field(default_factory=dict)


@dataclass
class Compensated(Outcome):
    """A compensation attempt ended: `error` None when it succeeded."""

    error: dict[str, Any] | None = None
    retryable: bool = False
    output: Any = None


@dataclass
class Settled:
    """A recorded outcome: the claim to run next (see `Succeeded.chain`), and when a
    failed step runs again."""

    chained: ClaimedTask | None = None
    retry_at: datetime | None = None


# Per outcome: Settled, or the exception its checkpoint raised (LeaseLost: another worker
# owns the task now; a database error; ...), nothing of it committed.
Result = Settled | Exception
