"""`with_execution`: node states from inline runs."""

from __future__ import annotations

from typing import Any

import pytest

from durable.exceptions import ExecutionNotFound
from durable.graph import with_execution
from durable.testing import provide_input, run_until_idle, run_workflow
from tests.graph.workflows import Review
from tests.integration.workflows import Linear

pytestmark = pytest.mark.django_db


def states(g: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["id"]: node["execution_state"] for node in g["nodes"]}


def test_a_waiting_item_shows_foreach_progress_and_the_rest_follows_on_input() -> None:
    execution = run_workflow(Review, {"items": ["a", "ask", "b"]})
    g = with_execution(Review, execution.workflow_id)
    state = states(g)
    foreach = next(node for node in g["nodes"] if node["id"] == "review_items")

    assert execution.status == "waiting"
    assert g["execution"]["status"] == "waiting"
    assert g["execution"]["current_step"] == execution.current_step
    assert state["__start__"]["status"] == "completed"
    assert state["prepare"]["status"] == "completed"
    assert state["prepare"]["attempt"] == 1
    assert state["prepare"]["duration_ms"] is not None
    assert state["prepare"]["started_at"] is not None
    assert state["prepare"]["active"] is False
    assert state["review_item"]["status"] == "waiting"
    assert state["review_item"]["active"] is True
    assert state["review_item"]["counts"] == {"completed": 1, "waiting": 1}
    assert state["review_items"]["status"] == "waiting"
    assert state["review_items"]["active"] is True
    assert foreach["progress"] == {"done": 1, "total": 3}
    assert state["review_items:join"]["status"] == "pending"
    assert state["poll_once"]["status"] == "pending"
    assert state["__end__"]["status"] == "pending"

    provide_input(execution.workflow_id, "approval", "yes")
    run_until_idle()
    g = with_execution(Review, execution.workflow_id)
    state = states(g)
    foreach = next(node for node in g["nodes"] if node["id"] == "review_items")

    assert g["execution"]["status"] == "completed"
    assert foreach["progress"] == {"done": 3, "total": 3}
    assert state["review_item"]["status"] == "completed"
    assert state["review_item"]["runs"] == 3
    assert state["review_items"]["status"] == "completed"
    assert state["review_items:join"]["status"] == "completed"
    assert state["poll_once"]["runs"] == 2
    assert state["poll"]["status"] == "completed"
    assert state["accept"]["status"] == "completed"
    assert state["reject"]["status"] == "skipped"
    assert state["__end__"]["status"] == "completed"
    assert state["__end__"]["completed_at"] is not None
    assert not any(s["active"] for s in state.values())


def test_a_failed_step_fails_its_node_and_the_end() -> None:
    execution = run_workflow(Review, {"verdict": "bad"})
    state = states(with_execution("graph_review", execution.workflow_id))

    assert execution.status == "failed"
    assert state["reject"]["status"] == "failed"
    assert state["reject"]["attempt"] == 1
    assert state["reject"]["completed_at"] is not None
    assert state["accept"]["status"] == "skipped"
    assert state["verdict"]["status"] == "completed"
    assert state["__end__"]["status"] == "failed"


def test_unknown_or_foreign_executions_are_refused() -> None:
    execution = run_workflow(Linear, {"seed": 1})

    with pytest.raises(ExecutionNotFound):
        with_execution(Review, "no-such-id")
    with pytest.raises(ValueError, match="runs workflow"):
        with_execution(Review, execution.workflow_id)
