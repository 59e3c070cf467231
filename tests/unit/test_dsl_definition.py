"""Every DSL construct compiles to the expected frozen node tree."""

from __future__ import annotations

import enum
import functools
from typing import Any

import pytest

from durable import (
    Retry,
    Workflow,
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
from durable.dsl import registry
from durable.dsl.nodes import (
    Definition,
    ForeachNode,
    Location,
    LoopNode,
    OnDecisionNode,
    ParallelNode,
    StepNode,
    SwitchNode,
    branch_key_matches,
)
from durable.dsl.workflow import snake_case
from durable.time import hours, minutes


def items_of(ctx: Any) -> Any:
    return ctx["items"]


def still_going(ctx: Any) -> Any:
    return not ctx.get("done")


def category(ctx: Any) -> Any:
    return ctx["category"]


def names(definition: Definition) -> list[str]:
    return [node.name for _, _, _, node in definition.walk()]


def test_bare_step_compiles_to_a_default_step_node() -> None:
    class Flow(Workflow):
        @step
        def only(self, ctx: Any) -> None: ...

    assert Flow.definition().nodes == (StepNode(name="only", method="only"),)


def test_step_options_are_recorded() -> None:
    retry = Retry(max_attempts=5, backoff="linear", base=3, max_backoff=60)

    class Flow(Workflow):
        @step(
            retry=retry,
            timeout=minutes(2),
            queue="payments",
            compensate="refund",
            transactional=True,
        )
        def charge(self, ctx: Any) -> None: ...

        def refund(self, ctx: Any) -> None: ...

    assert Flow.definition().nodes == (
        StepNode(
            name="charge",
            method="charge",
            retry=retry,
            timeout=120.0,
            queue="payments",
            compensate="refund",
            transactional=True,
        ),
    )


def test_step_name_option_renames_the_step_but_keeps_the_method() -> None:
    class Flow(Workflow):
        @step(name="charge-card")
        def charge(self, ctx: Any) -> None: ...

    (node,) = Flow.definition().nodes
    assert (node.name, node.method) == ("charge-card", "charge")
    assert Flow.definition().step("charge-card") is node


def test_timeout_may_be_a_number_of_seconds() -> None:
    class Flow(Workflow):
        @step(timeout=1.5)
        def quick(self, ctx: Any) -> None: ...

    assert Flow.definition().step("quick").timeout == 1.5


def test_async_steps_are_marked_async() -> None:
    class Flow(Workflow):
        @step
        async def fetch(self, ctx: Any) -> None: ...

        @step(timeout=5)
        async def fetch_more(self, ctx: Any) -> None: ...

        @step
        def sync(self, ctx: Any) -> None: ...

    definition = Flow.definition()
    assert definition.step("fetch").is_async
    assert definition.step("fetch_more").is_async
    assert not definition.step("sync").is_async


def test_a_wrapping_decorator_over_step_is_allowed() -> None:
    def logged(function: Any) -> Any:
        @functools.wraps(function)
        def wrapper(self: Any, ctx: Any) -> Any:
            ctx.put("logged", True)
            return function(self, ctx)

        return wrapper

    class Flow(Workflow):
        @logged
        @step
        def a(self, ctx: Any) -> None: ...

    assert Flow.definition().nodes == (StepNode("a", "a"),)


def test_decorators_return_the_function_itself() -> None:
    def plain(self: Any, ctx: Any) -> None: ...

    assert step(plain) is plain
    assert step(name="x")(plain) is plain
    assert plain.__durable_step__.name == "x"  # type: ignore[attr-defined]


def test_decision_with_on_decision_and_when_result_compiles_to_keyed_branches() -> None:
    class Flow(Workflow):
        @decision
        def check_value(self, ctx: Any) -> str:
            return "high"

        with on_decision(check_value):
            with when_result("high"):

                @step
                def review(self, ctx: Any) -> None: ...

                @step
                def approve(self, ctx: Any) -> None: ...

            with when_result("standard"):

                @step
                def charge(self, ctx: Any) -> None: ...

        @step
        def finish(self, ctx: Any) -> None: ...

    assert Flow.definition().nodes == (
        StepNode(name="check_value", method="check_value", kind="decision"),
        OnDecisionNode(
            name="check_value:branches",
            decision="check_value",
            branches=(
                ("high", (StepNode("review", "review"), StepNode("approve", "approve"))),
                ("standard", (StepNode("charge", "charge"),)),
            ),
        ),
        StepNode(name="finish", method="finish"),
    )


def test_decision_options_and_on_decision_by_name() -> None:
    class Flow(Workflow):
        @decision(name="route", retry=Retry(max_attempts=1), timeout=3, queue="fast")
        def route_it(self, ctx: Any) -> bool:
            return True

        with on_decision("route"), when_result(True):

            @step
            def yes(self, ctx: Any) -> None: ...

    definition = Flow.definition()
    assert definition.step("route") == StepNode(
        name="route",
        method="route_it",
        kind="decision",
        retry=Retry(max_attempts=1),
        timeout=3.0,
        queue="fast",
    )
    assert definition.by_name["route:branches"] == OnDecisionNode(
        "route:branches", "route", ((True, (StepNode("yes", "yes"),)),)
    )


def test_falsy_when_result_values_are_distinct_branches() -> None:
    class Flow(Workflow):
        @decision
        def pick(self, ctx: Any) -> Any: ...

        with on_decision(pick):
            with when_result(False):

                @step
                def on_false(self, ctx: Any) -> None: ...

            with when_result(0):

                @step
                def on_zero(self, ctx: Any) -> None: ...

            with when_result(None):

                @step
                def on_none(self, ctx: Any) -> None: ...

            with when_result(""):

                @step
                def on_empty(self, ctx: Any) -> None: ...

    node = Flow.definition().by_name["pick:branches"]
    assert isinstance(node, OnDecisionNode)
    assert [(key, body[0].name) for key, body in node.branches] == [
        (False, "on_false"),
        (0, "on_zero"),
        (None, "on_none"),
        ("", "on_empty"),
    ]


def test_enum_branch_values_are_stored_as_their_plain_values() -> None:
    class Tier(enum.StrEnum):
        HIGH = "high"

    class Flow(Workflow):
        @decision
        def pick(self, ctx: Any) -> Any: ...

        with on_decision(pick), when_result(Tier.HIGH):

            @step
            def high(self, ctx: Any) -> None: ...

    node = Flow.definition().by_name["pick:branches"]
    assert isinstance(node, OnDecisionNode)
    ((key, _),) = node.branches
    assert type(key) is str
    assert key == "high"


def test_branch_key_matches_keeps_false_zero_and_none_apart() -> None:
    assert branch_key_matches(False, False)
    assert branch_key_matches(0, 0)
    assert branch_key_matches(None, None)
    assert branch_key_matches("a", "a")
    assert not branch_key_matches(False, 0)
    assert not branch_key_matches(0, False)
    assert not branch_key_matches(None, False)
    assert not branch_key_matches(True, 1)
    assert not branch_key_matches(0, 0.0)
    assert not branch_key_matches("0", 0)


def test_parallel_makes_each_declared_item_a_branch() -> None:
    class Flow(Workflow):
        with parallel("provision"):

            @step
            def email(self, ctx: Any) -> None: ...

            @step
            def workspace(self, ctx: Any) -> None: ...

            with loop("poll", while_=still_going):

                @step
                def check(self, ctx: Any) -> None: ...

    assert Flow.definition().nodes == (
        ParallelNode(
            "provision",
            (
                (StepNode("email", "email"),),
                (StepNode("workspace", "workspace"),),
                (LoopNode("poll", still_going, (StepNode("check", "check"),)),),
            ),
        ),
    )


def test_foreach_without_concurrency_and_item_steps() -> None:
    class Flow(Workflow):
        with foreach("process", items=items_of):

            @step
            def handle(self, ctx: Any, item: Any) -> None: ...

            @step
            def audit(self, ctx: Any) -> None: ...

    assert Flow.definition().nodes == (
        ForeachNode(
            "process",
            items_of,
            (
                StepNode("handle", "handle", takes_item=True),
                StepNode("audit", "audit", takes_item=False),
            ),
            concurrency=None,
        ),
    )


def test_foreach_with_concurrency() -> None:
    class Flow(Workflow):
        with foreach("process", items=items_of, concurrency=2):

            @step
            def handle(self, ctx: Any, item: Any) -> None: ...

    node = Flow.definition().nodes[0]
    assert isinstance(node, ForeachNode)
    assert node.concurrency == 2


def test_steps_nested_in_blocks_inside_a_foreach_take_the_item() -> None:
    class Flow(Workflow):
        with foreach("each", items=items_of), parallel("both"):

            @step
            def left(self, ctx: Any, item: Any) -> None: ...

            @step
            def right(self, ctx: Any, item: Any = None) -> None: ...

    definition = Flow.definition()
    assert definition.step("left").takes_item
    assert definition.step("right").takes_item


def test_optional_third_argument_outside_foreach_does_not_take_the_item() -> None:
    class Flow(Workflow):
        @step
        def flexible(self, ctx: Any, item: Any = None) -> None: ...

    assert not Flow.definition().step("flexible").takes_item


def test_loop_defaults_to_ten_thousand_iterations() -> None:
    class Flow(Workflow):
        with loop("retry_until_success", while_=still_going):

            @step
            def attempt(self, ctx: Any) -> None: ...

    assert Flow.definition().nodes == (
        LoopNode(
            "retry_until_success",
            still_going,
            (StepNode("attempt", "attempt"),),
            max_iterations=10_000,
        ),
    )


def test_loop_max_iterations_is_recorded() -> None:
    class Flow(Workflow):
        with loop("poll", while_=still_going, max_iterations=5):

            @step
            def attempt(self, ctx: Any) -> None: ...

    node = Flow.definition().nodes[0]
    assert isinstance(node, LoopNode)
    assert node.max_iterations == 5


def test_switch_with_cases_and_default() -> None:
    class Flow(Workflow):
        with switch("route", on=category):
            with case_match("billing"):

                @step
                def billing(self, ctx: Any) -> None: ...

            with case_match(2):

                @step
                def two(self, ctx: Any) -> None: ...

            with default():

                @step
                def general(self, ctx: Any) -> None: ...

    assert Flow.definition().nodes == (
        SwitchNode(
            "route",
            category,
            (("billing", (StepNode("billing", "billing"),)), (2, (StepNode("two", "two"),))),
            (StepNode("general", "general"),),
        ),
    )


def test_switch_without_default_has_no_default_branch() -> None:
    class Flow(Workflow):
        with switch("route", on=category), case_match("billing"):

            @step
            def billing(self, ctx: Any) -> None: ...

    node = Flow.definition().nodes[0]
    assert isinstance(node, SwitchNode)
    assert node.default is None
    assert node.children == ((StepNode("billing", "billing"),),)


def test_switch_with_only_a_default_is_allowed() -> None:
    class Flow(Workflow):
        with switch("route", on=category), default():

            @step
            def general(self, ctx: Any) -> None: ...

    node = Flow.definition().nodes[0]
    assert isinstance(node, SwitchNode)
    assert (node.cases, node.default) == ((), (StepNode("general", "general"),))


def test_locations_index_every_node_by_block_branch_and_position() -> None:
    class Flow(Workflow):
        @step
        def first(self, ctx: Any) -> None: ...

        with parallel("fan"):

            @step
            def left(self, ctx: Any) -> None: ...

            with switch("pick", on=category):
                with case_match("a"):

                    @step
                    def a1(self, ctx: Any) -> None: ...

                    @step
                    def a2(self, ctx: Any) -> None: ...

                with default():

                    @step
                    def other(self, ctx: Any) -> None: ...

        @step
        def last(self, ctx: Any) -> None: ...

    definition = Flow.definition()
    assert names(definition) == ["first", "fan", "left", "pick", "a1", "a2", "other", "last"]
    assert definition.locations == {
        "first": Location(None, 0, 0),
        "fan": Location(None, 0, 1),
        "left": Location("fan", 0, 0),
        "pick": Location("fan", 1, 0),
        "a1": Location("pick", 0, 0),
        "a2": Location("pick", 0, 1),
        "other": Location("pick", 1, 0),
        "last": Location(None, 0, 2),
    }
    assert [s.name for s in definition.steps()] == ["first", "left", "a1", "a2", "other", "last"]
    assert definition.branch_of("pick", 1) == (StepNode("other", "other"),)


def test_workflow_level_settings_are_recorded() -> None:
    class ProcessOrder(Workflow):
        name = "orders.process"
        timeout = hours(2)
        max_retries = 5
        queue = "orders"
        version = 3

        @step
        def validate(self, ctx: Any) -> None: ...

        @step(queue="payments", retry=Retry(max_attempts=2))
        def charge(self, ctx: Any) -> None: ...

    definition = ProcessOrder.definition()
    assert (definition.name, definition.timeout, definition.max_retries) == (
        "orders.process",
        7200.0,
        5,
    )
    assert (definition.queue, definition.version) == ("orders", 3)
    assert definition.workflow_class is ProcessOrder
    validate, charge = definition.steps()
    assert definition.queue_for(validate) == "orders"
    assert definition.queue_for(charge) == "payments"
    assert definition.queues() == {"orders", "payments"}
    assert definition.retry_for(validate) == Retry(max_attempts=5)
    assert definition.retry_for(charge) == Retry(max_attempts=2)


def test_workflow_defaults() -> None:
    class ShipParcel(Workflow):
        @step
        def validate(self, ctx: Any) -> None: ...

    definition = ShipParcel.definition()
    assert definition.name == "ship_parcel"
    assert (definition.timeout, definition.max_retries, definition.queue, definition.version) == (
        None,
        3,
        "default",
        1,
    )
    assert registry.get("ship_parcel") is definition


@pytest.mark.parametrize(
    ("class_name", "expected"),
    [
        ("ProcessOrder", "process_order"),
        ("Onboarding", "onboarding"),
        ("HTTPRequestFlow", "http_request_flow"),
        ("SendSMS", "send_sms"),
        ("Order2Ship", "order2_ship"),
    ],
)
def test_default_name_is_snake_case_of_the_class_name(class_name: str, expected: str) -> None:
    assert snake_case(class_name) == expected


def test_workflow_timeout_may_be_seconds() -> None:
    class Flow(Workflow):
        timeout = 90

        @step
        def a(self, ctx: Any) -> None: ...

    assert Flow.definition().timeout == 90.0


def test_the_base_class_and_abstract_classes_have_no_definition() -> None:
    class Base(Workflow):
        abstract = True

        @step
        def a(self, ctx: Any) -> None: ...

    with pytest.raises(TypeError, match="abstract"):
        Workflow.definition()
    with pytest.raises(TypeError, match="Base is abstract"):
        Base.definition()
    assert "base" not in {d.name for d in registry.all_definitions()}


def test_subclass_inherits_steps_and_overrides_a_same_named_step_in_place() -> None:
    class Parent(Workflow):
        queue = "parent-q"

        @step
        def a(self, ctx: Any) -> None: ...

        @step
        def b(self, ctx: Any) -> None: ...

        @step
        def c(self, ctx: Any) -> None: ...

    class Child(Parent):
        @step(queue="fast")
        def b(self, ctx: Any) -> None: ...

        @step
        def d(self, ctx: Any) -> None: ...

    child = Child.definition()
    assert child.name == "child"
    assert [n.name for n in child.nodes] == ["a", "b", "c", "d"]
    assert child.step("b").queue == "fast"
    assert child.queue == "parent-q"
    assert Child.__dict__["b"] is not Parent.__dict__["b"]
    # The parent is unchanged.
    assert [n.name for n in Parent.definition().nodes] == ["a", "b", "c"]
    assert Parent.definition().step("b").queue is None


def test_subclass_override_replaces_a_step_nested_in_an_inherited_block() -> None:
    class Parent(Workflow):
        with parallel("fan"):

            @step
            def left(self, ctx: Any) -> None: ...

            @step
            def right(self, ctx: Any) -> None: ...

    class Child(Parent):
        @step(queue="fast")
        def right(self, ctx: Any) -> None: ...

    definition = Child.definition()
    assert names(definition) == ["fan", "left", "right"]
    assert definition.step("right").queue == "fast"
    assert definition.locations["right"] == Location("fan", 1, 0)


def test_concrete_subclass_inherits_the_steps_of_an_abstract_base() -> None:
    class Base(Workflow):
        abstract = True

        @step
        def common(self, ctx: Any) -> None: ...

    class Concrete(Base):
        @step
        def specific(self, ctx: Any) -> None: ...

    class Plain(Base):
        pass

    assert [n.name for n in Concrete.definition().nodes] == ["common", "specific"]
    assert [n.name for n in Plain.definition().nodes] == ["common"]


def test_subclass_changes_workflow_settings_without_redeclaring_steps() -> None:
    class Parent(Workflow):
        @step
        def a(self, ctx: Any) -> None: ...

    class Urgent(Parent):
        queue = "urgent"
        version = 2

    definition = Urgent.definition()
    assert (definition.name, definition.queue, definition.version) == ("urgent", "urgent", 2)
    assert [n.name for n in definition.nodes] == ["a"]


def test_redefining_the_same_class_replaces_its_registration() -> None:
    def define() -> type[Workflow]:
        class Reloaded(Workflow):
            @step
            def a(self, ctx: Any) -> None: ...

        return Reloaded

    first, second = define(), define()
    assert registry.get("reloaded").workflow_class is second
    assert first is not second


def test_definitions_are_frozen() -> None:
    class Flow(Workflow):
        @step
        def a(self, ctx: Any) -> None: ...

    node = Flow.definition().nodes[0]
    with pytest.raises(AttributeError):
        node.name = "b"  # type: ignore[misc]
