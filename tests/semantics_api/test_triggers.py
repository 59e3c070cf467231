"""`triggers = [...]` on a workflow class and `durable.publish(name, payload)`."""

from __future__ import annotations

import pytest

import durable
from durable import Workflow, step
from durable.dsl import registry
from durable.models import WorkflowExecution
from durable.testing import run_until_idle
from durable.time import seconds

pytestmark = pytest.mark.django_db(transaction=True)


def test_publish_starts_one_run_of_every_workflow_that_lists_the_event():
    wids = durable.publish("semantics.order.created", {"order_id": 7})
    assert len(wids) == 2
    runs = [durable.get_execution(wid) for wid in wids]
    assert [run.workflow_name for run in runs] == [
        "semantics_reserve_stock",
        "semantics_send_receipt",
    ]
    assert all(run.input == {"order_id": 7} for run in runs)
    run_until_idle()
    assert [durable.get_result(wid) for wid in wids] == ["reserved for 7", "receipt for 7"]
    # Another event name of the same class starts only that class.
    (paid,) = durable.publish("semantics.order.paid", {"order_id": 8})
    assert durable.get_execution(paid).workflow_name == "semantics_send_receipt"


def test_each_publish_starts_new_runs_and_the_same_key_starts_them_once():
    first = durable.publish("semantics.order.created", {"order_id": 1}, idempotency_key="o-1")
    again = durable.publish("semantics.order.created", {"order_id": 1}, idempotency_key="o-1")
    assert again == first
    other = durable.publish("semantics.order.created", {"order_id": 1}, idempotency_key="o-2")
    unkeyed = durable.publish("semantics.order.created", {"order_id": 1})
    assert len(set(first + other + unkeyed)) == 6
    assert WorkflowExecution.objects.count() == 6


def test_a_key_longer_than_the_column_still_starts_once_per_workflow():
    key = "k" * 255
    first = durable.publish("semantics.order.created", {"order_id": 1}, idempotency_key=key)
    assert durable.publish("semantics.order.created", {"order_id": 1}, idempotency_key=key) == (
        first
    )
    assert len(set(first)) == 2


def test_publish_of_an_event_nobody_listens_to_starts_nothing():
    assert durable.publish("semantics.nobody.listens", {"x": 1}) == []
    assert not WorkflowExecution.objects.exists()


@pytest.mark.parametrize(
    ("name", "payload", "key", "error", "match"),
    [
        ("", {}, None, ValueError, "event name must be a string of 1 to 200"),
        (3, {}, None, ValueError, "event name must be a string"),
        ("semantics.order.created", [1], None, TypeError, "payload must be a dict"),
        ("semantics.order.created", {"s": {1}}, None, TypeError, "a set is not JSON"),
        ("semantics.order.created", {}, "", ValueError, "idempotency_key must be a string"),
        ("semantics.order.created", {}, 5, ValueError, "idempotency_key must be a string"),
    ],
)
def test_bad_publishes_raise_and_start_nothing(name, payload, key, error, match):
    with pytest.raises(error, match=match):
        durable.publish(name, payload, idempotency_key=key)
    assert not WorkflowExecution.objects.exists()


def test_an_input_one_listener_refuses_starts_none_of_them():
    # PerCustomer needs customer_id (its concurrency key); AlsoPerCustomerEvent does not.
    with pytest.raises(ValueError, match="customer_id"):
        durable.publish("semantics.customer.event", {"other": 1})
    assert not WorkflowExecution.objects.exists()
    assert len(durable.publish("semantics.customer.event", {"customer_id": "c1"})) == 2


@pytest.mark.parametrize(
    ("triggers", "problem"),
    [
        ("order.created", "must be a list of event names"),
        ([""], "an event name must be a string of 1 to 200 characters"),
        ([42], "an event name must be a string"),
        (["a", "a"], "'a' is listed twice"),
    ],
)
def test_bad_triggers_are_a_definition_error(triggers, problem):
    with pytest.raises(durable.DefinitionError, match=problem):
        type(
            "BadTriggers",
            (Workflow,),
            {"triggers": triggers, "only": step(lambda self, ctx: None), "__module__": __name__},
        )
    registry.unregister("bad_triggers")


def test_a_debounced_workflow_cannot_have_triggers():
    with pytest.raises(durable.DefinitionError, match="a debounced workflow cannot have"):

        class DebouncedTriggered(Workflow):
            triggers = ["x"]
            debounce = seconds(5)

            @step
            def only(self, ctx):
                pass

    registry.unregister("debounced_triggered")


@pytest.mark.e2e
def test_published_runs_complete_on_a_real_worker(workers):
    workers.start(1, workflow_modules="tests.semantics_api.workflows")
    wids = durable.publish("semantics.order.created", {"order_id": 99}, idempotency_key="e2e")
    assert [durable.get_result(wid, timeout=60) for wid in wids] == [
        "reserved for 99",
        "receipt for 99",
    ]
    assert durable.publish("semantics.order.created", {"order_id": 99}, idempotency_key="e2e") == (
        wids
    )
    assert WorkflowExecution.objects.count() == 2
