"""The workflow DSL. Pure Python: importing it never touches Django's ORM."""

from __future__ import annotations

from durable.dsl.builder import (
    case_match,
    decision,
    default,
    foreach,
    loop,
    on_decision,
    parallel,
    step,
    switch,
    when_result,
)
from durable.dsl.nodes import Definition
from durable.dsl.retry import Retry
from durable.dsl.workflow import Workflow

__all__ = [
    "Definition",
    "Retry",
    "Workflow",
    "case_match",
    "decision",
    "default",
    "foreach",
    "loop",
    "on_decision",
    "parallel",
    "step",
    "switch",
    "when_result",
]
