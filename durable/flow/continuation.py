"""`ctx.continue_as_new(input)`: a long-lived run ends and a fresh one carries on.

A perpetual loop (poll every hour, forever) would grow its history and context without
end, and hit a loop's `max_iterations`. Instead, a step ends the run with status
`continued`, and the checkpoint that records it starts a new run of the same workflow
with `input` (durable.store.checkpoint), linked to this one by `continued_from`.
"""

from __future__ import annotations

from typing import Any


class ContinueAsNew(BaseException):
    """Unwinds the step that called `ctx.continue_as_new`. A BaseException, so
    `except Exception` in step code does not swallow it."""

    def __init__(self, input: dict[str, Any]) -> None:
        self.input = input
        super().__init__("continuing as a new run")
