"""Helpers for testing workflows: run them inline (no worker process), move time forward
and assert outcomes; real worker processes (`durable.testing.workers`); and a pytest
plugin with fixtures for all of it (`durable.testing.pytest_plugin`).

    from durable.testing import run_workflow, assert_workflow_completed

    def test_order(db):
        execution = run_workflow(ProcessOrder, {"order_id": 1})
        assert execution.status == "completed"

The helpers load on first use: pytest imports the plugin (a submodule, so this package
first) before Django is set up, and the helpers need Django's models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from durable.testing.inline import (
        advance_time,
        assert_workflow_completed,
        assert_workflow_failed,
        provide_input,
        resume,
        run_until_idle,
        run_workflow,
        send_event,
        wait_for_finish,
    )

__all__ = [
    "advance_time",
    "assert_workflow_completed",
    "assert_workflow_failed",
    "provide_input",
    "resume",
    "run_until_idle",
    "run_workflow",
    "send_event",
    "wait_for_finish",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("durable.testing.inline"), name)
    raise AttributeError(f"module 'durable.testing' has no attribute {name!r}")
