"""The router, driven by hand: which steps become ready, and what the context becomes."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from durable import (
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
from durable.flow.router import FlowError
from durable.flow.token import Token
from tests.unit.simulator import Simulation, last_ready


def test_sequential_steps_run_one_at_a_time_in_declaration_order() -> None:
    class Flow(Workflow):
        @step
        def a(self, ctx: Any) -> None:
            ctx.append("log", "a")

        @step
        def b(self, ctx: Any) -> str:
            ctx.append("log", "b")
            return "b-output"

        @step
        def c(self, ctx: Any) -> None:
            ctx.append("log", ctx["log"][-1] + "c")

    sim = Simulation(Flow).start()
    seen = []
    while sim.ready:
        seen.append(sim.ready_steps())
        assert not sim.completed
        sim.run_next()
    assert seen == [["a"], ["b"], ["c"]]
    assert sim.completed
    assert sim.context == {"log": ["a", "b", "bc"]}


def test_steps_see_input_and_the_context_so_far() -> None:
    class Flow(Workflow):
        @step
        def first(self, ctx: Any) -> None:
            ctx.put("doubled", ctx.input["n"] * 2)

        @step
        def second(self, ctx: Any) -> None:
            ctx.put("plus_one", ctx["doubled"] + 1)

    sim = Simulation(Flow, context={"given": True}, input={"n": 4}).start().run_all()
    assert sim.context == {"given": True, "doubled": 8, "plus_one": 9}


class Decided(Workflow):
    @decision
    def pick(self, ctx: Any) -> Any:
        return ctx.input["result"]

    with on_decision(pick):
        with when_result(False):

            @step
            def on_false(self, ctx: Any) -> None: ...

        with when_result(None):

            @step
            def on_none(self, ctx: Any) -> None: ...

        with when_result(0):

            @step
            def on_zero(self, ctx: Any) -> None: ...

        with when_result(1):

            @step
            def on_one(self, ctx: Any) -> None: ...

        with when_result(True):

            @step
            def on_true(self, ctx: Any) -> None: ...

        with when_result(""):

            @step
            def on_empty(self, ctx: Any) -> None: ...

        with when_result("standard"):

            @step
            def on_standard(self, ctx: Any) -> None: ...

            @step
            def then_charge(self, ctx: Any) -> None: ...

    @step
    def after(self, ctx: Any) -> None: ...


@pytest.mark.parametrize(
    ("result", "steps"),
    [
        (False, ["pick", "on_false", "after"]),
        (None, ["pick", "on_none", "after"]),
        (0, ["pick", "on_zero", "after"]),
        (1, ["pick", "on_one", "after"]),
        (True, ["pick", "on_true", "after"]),
        ("", ["pick", "on_empty", "after"]),
        ("standard", ["pick", "on_standard", "then_charge", "after"]),
        ("unknown", ["pick", "after"]),
        (2, ["pick", "after"]),
        ("0", ["pick", "after"]),
    ],
)
def test_decision_result_picks_its_own_branch(result: Any, steps: list[str]) -> None:
    sim = Simulation(Decided, input={"result": result}).start().run_all()
    assert sim.step_names() == steps
    assert sim.completed


def test_decision_with_no_matching_branch_at_the_end_completes_the_workflow() -> None:
    class Flow(Workflow):
        @decision
        def pick(self, ctx: Any) -> str:
            return "nothing"

        with on_decision(pick), when_result("x"):

            @step
            def x(self, ctx: Any) -> None: ...

    advance = Simulation(Flow).start().run_next()
    assert advance.ready == []
    assert advance.completed


def test_decision_returning_an_enum_matches_the_plain_value() -> None:
    class Tier(enum.StrEnum):
        HIGH = "high"
        LOW = "low"

    class Flow(Workflow):
        @decision
        def pick(self, ctx: Any) -> Tier:
            return Tier.HIGH

        with on_decision(pick):
            with when_result(Tier.HIGH):

                @step
                def high(self, ctx: Any) -> None: ...

            with when_result("low"):

                @step
                def low(self, ctx: Any) -> None: ...

    assert Simulation(Flow).start().run_all().step_names() == ["pick", "high"]


def test_decision_inside_a_loop_is_re_evaluated_every_iteration() -> None:
    class Flow(Workflow):
        with loop("turns", while_=lambda ctx: ctx.get("n", 0) < 4):

            @decision
            def parity(self, ctx: Any) -> str:
                ctx.increment("n")
                return "odd" if ctx["n"] % 2 else "even"

            with on_decision(parity):
                with when_result("odd"):

                    @step
                    def odd(self, ctx: Any) -> None:
                        ctx.append("seen", "odd")

                with when_result("even"):

                    @step
                    def even(self, ctx: Any) -> None:
                        ctx.append("seen", "even")

    sim = Simulation(Flow).start().run_all()
    assert sim.context["seen"] == ["odd", "even", "odd", "even"]


def test_switch_runs_the_matching_case() -> None:
    class Flow(Workflow):
        with switch("route", on=lambda ctx: ctx["category"]):
            with case_match("billing"):

                @step
                def billing(self, ctx: Any) -> None: ...

            with case_match("tech"):

                @step
                def tech(self, ctx: Any) -> None: ...

            with default():

                @step
                def general(self, ctx: Any) -> None: ...

        @step
        def after(self, ctx: Any) -> None: ...

    assert Simulation(Flow, {"category": "tech"}).start().run_all().step_names() == [
        "tech",
        "after",
    ]
    assert Simulation(Flow, {"category": "billing"}).start().run_all().step_names() == [
        "billing",
        "after",
    ]
    assert Simulation(Flow, {"category": "sales"}).start().run_all().step_names() == [
        "general",
        "after",
    ]


def test_switch_without_default_and_no_match_continues_after_the_block() -> None:
    class Flow(Workflow):
        with switch("route", on=lambda ctx: ctx["category"]), case_match("billing"):

            @step
            def billing(self, ctx: Any) -> None: ...

        @step
        def after(self, ctx: Any) -> None: ...

    sim = Simulation(Flow, {"category": "sales"}).start()
    assert sim.ready_steps() == ["after"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(False, "on_false"), (0, "on_zero"), (None, "on_none"), ("x", "fallback")],
)
def test_switch_keeps_false_zero_and_none_apart(value: Any, expected: str) -> None:
    class Flow(Workflow):
        with switch("route", on=lambda ctx: ctx["value"]):
            with case_match(False):

                @step
                def on_false(self, ctx: Any) -> None: ...

            with case_match(0):

                @step
                def on_zero(self, ctx: Any) -> None: ...

            with case_match(None):

                @step
                def on_none(self, ctx: Any) -> None: ...

            with default():

                @step
                def fallback(self, ctx: Any) -> None: ...

    assert Simulation(Flow, {"value": value}).start().ready_steps() == [expected]


def test_switch_on_an_enum_matches_its_plain_value() -> None:
    class Category(enum.StrEnum):
        BILLING = "billing"

    class Flow(Workflow):
        with switch("route", on=lambda ctx: Category(ctx["category"])):
            with case_match("billing"):

                @step
                def billing(self, ctx: Any) -> None: ...

            with default():

                @step
                def general(self, ctx: Any) -> None: ...

    assert Simulation(Flow, {"category": "billing"}).start().ready_steps() == ["billing"]


def test_switch_on_a_non_json_value_takes_the_default() -> None:
    class Flow(Workflow):
        with switch("route", on=lambda ctx: {"a"}):
            with case_match("a"):

                @step
                def a(self, ctx: Any) -> None: ...

            with default():

                @step
                def general(self, ctx: Any) -> None: ...

    assert Simulation(Flow).start().ready_steps() == ["general"]


def test_routing_function_that_raises_fails_with_the_block_named() -> None:
    class Flow(Workflow):
        with switch("route", on=lambda ctx: ctx["missing"]), default():

            @step
            def general(self, ctx: Any) -> None: ...

    with pytest.raises(FlowError, match="on= of 'route' raised KeyError"):
        Simulation(Flow).start()


def test_routing_functions_cannot_write_the_context() -> None:
    class Flow(Workflow):
        with switch("route", on=lambda ctx: ctx.put("sneaky", 1)), default():

            @step
            def general(self, ctx: Any) -> None: ...

    with pytest.raises(FlowError, match="on= of 'route' raised ReadOnlyContextError"):
        Simulation(Flow).start()


def test_loop_checks_while_before_each_iteration() -> None:
    calls: list[int] = []

    def below_three(ctx: Any) -> bool:
        calls.append(ctx.get("n", 0))
        return bool(ctx.get("n", 0) < 3)

    class Flow(Workflow):
        with loop("count", while_=below_three):

            @step
            def bump(self, ctx: Any) -> None:
                ctx.increment("n")

        @step
        def after(self, ctx: Any) -> None: ...

    sim = Simulation(Flow).start().run_all()
    assert sim.step_names() == ["bump", "bump", "bump", "after"]
    assert calls == [0, 1, 2, 3]
    assert sim.context == {"n": 3}


def test_loop_whose_condition_is_false_at_first_never_runs_its_body() -> None:
    class Flow(Workflow):
        with loop("count", while_=lambda ctx: ctx.get("n", 0) < 3):

            @step
            def bump(self, ctx: Any) -> None:
                ctx.increment("n")

        @step
        def after(self, ctx: Any) -> None: ...

    assert Simulation(Flow, {"n": 5}).start().ready_steps() == ["after"]


def test_loop_counts_iterations_in_the_token() -> None:
    class Flow(Workflow):
        with loop("count", while_=lambda ctx: ctx.get("n", 0) < 3):

            @step
            def bump(self, ctx: Any) -> None:
                ctx.increment("n")

        @step
        def after(self, ctx: Any) -> None: ...

    sim = Simulation(Flow).start()
    scopes = []
    while sim.ready:
        scopes.append((sim.ready[0].node, sim.ready[0].scope_key()))
        sim.run_next()
    assert scopes == [("bump", "count#1"), ("bump", "count#2"), ("bump", "count#3"), ("after", "")]


def test_loop_fails_at_max_iterations_with_its_condition_still_true() -> None:
    class Flow(Workflow):
        with loop("forever", while_=lambda ctx: True, max_iterations=3):

            @step
            def spin(self, ctx: Any) -> None:
                ctx.increment("n")

    sim = Simulation(Flow).start()
    sim.run_next()
    sim.run_next()
    with pytest.raises(FlowError, match="loop 'forever' reached max_iterations=3"):
        sim.run_next()
    assert sim.step_names() == ["spin", "spin", "spin"]


def test_loop_may_run_exactly_max_iterations() -> None:
    class Flow(Workflow):
        with loop("three", while_=lambda ctx: ctx.get("n", 0) < 3, max_iterations=3):

            @step
            def spin(self, ctx: Any) -> None:
                ctx.increment("n")

    sim = Simulation(Flow).start().run_all()
    assert sim.completed
    assert sim.context == {"n": 3}


def test_inner_loop_count_restarts_on_each_outer_iteration() -> None:
    class Flow(Workflow):
        with loop("outer", while_=lambda ctx: ctx.get("o", 0) < 3):

            @step
            def outer_step(self, ctx: Any) -> None:
                ctx.increment("o")
                ctx.put("i", 0)

            with loop("inner", while_=lambda ctx: ctx["i"] < 2, max_iterations=2):

                @step
                def inner_step(self, ctx: Any) -> None:
                    ctx.increment("i")
                    ctx.increment("total")

    sim = Simulation(Flow).start().run_all()
    assert sim.completed
    assert sim.context["total"] == 6


def test_loop_condition_that_raises_fails_the_flow() -> None:
    class Flow(Workflow):
        with loop("bad", while_=lambda ctx: 1 / 0):

            @step
            def spin(self, ctx: Any) -> None: ...

    with pytest.raises(FlowError, match="while_= of 'bad' raised ZeroDivisionError"):
        Simulation(Flow).start()


class Fanned(Workflow):
    @step
    def before(self, ctx: Any) -> None:
        ctx.put("seed", 1)
        ctx.init_accumulator("log", [])

    with parallel("fan"):

        @step
        def left(self, ctx: Any) -> None:
            ctx.put("left_saw", sorted(ctx.data))
            ctx.put("winner", "left")
            ctx.put("only_left", True)
            ctx.append("log", "left")
            ctx.increment("count")

        @step
        def right(self, ctx: Any) -> None:
            ctx.put("right_saw", sorted(ctx.data))
            ctx.put("winner", "right")
            ctx.append("log", "right")
            ctx.increment("count", 10)

        @step
        def third(self, ctx: Any) -> None:
            ctx.append("log", "third")
            ctx.increment("count", 100)

    @step
    def after(self, ctx: Any) -> None:
        ctx.put("after_saw", ctx.data)


def test_parallel_makes_every_branch_ready_at_once() -> None:
    sim = Simulation(Fanned).start()
    sim.run_next("before")
    assert sim.ready_steps() == ["left", "right", "third"]
    assert [token.scope_key() for token in sim.ready] == ["fan[0]", "fan[1]", "fan[2]"]


@pytest.mark.parametrize("order", [["left", "right", "third"], ["third", "right", "left"]])
def test_parallel_branches_never_see_sibling_writes(order: list[str]) -> None:
    sim = Simulation(Fanned).start()
    sim.run_next("before")
    for name in order:
        sim.run_next(name)
    assert sim.context["left_saw"] == ["log", "seed"]
    assert sim.context["right_saw"] == ["log", "seed"]


@pytest.mark.parametrize("order", [["left", "right", "third"], ["third", "right", "left"]])
def test_parallel_join_merges_in_declaration_order_without_lost_updates(
    order: list[str],
) -> None:
    sim = Simulation(Fanned).start()
    sim.run_next("before")
    for name in order:
        sim.run_next(name)
    assert sim.context["winner"] == "right"  # the later branch in declaration order
    assert sim.context["log"] == ["left", "right", "third"]
    assert sim.context["count"] == 111
    assert sim.context["only_left"] is True


def test_parallel_join_waits_for_every_branch_and_holds_writes_until_then() -> None:
    sim = Simulation(Fanned).start()
    sim.run_next("before")
    sim.run_next("right")
    sim.run_next("left")
    assert sim.ready_steps() == ["third"]
    assert sim.context == {"seed": 1, "log": []}  # branch writes wait for the join
    advance = sim.run_next("third")
    assert [token.node for token in advance.ready] == ["after"]
    assert sim.state.fanouts == {}
    sim.run_all()
    assert sim.context["after_saw"]["log"] == ["left", "right", "third"]
    assert sim.completed


def test_a_branch_sees_its_own_earlier_writes() -> None:
    class Flow(Workflow):
        with parallel("fan"):
            with loop("again", while_=lambda ctx: ctx.get("n", 0) < 2):

                @step
                def bump(self, ctx: Any) -> None:
                    ctx.increment("n")
                    ctx.append("seen", ctx["n"])

            @step
            def other(self, ctx: Any) -> None:
                ctx.put("other_saw_n", ctx.get("n"))

    sim = Simulation(Flow).start().run_all(last_ready)
    assert sim.context == {"n": 2, "seen": [1, 2], "other_saw_n": None}


def test_conflicting_branch_writes_fail_the_flow_at_the_join() -> None:
    class Flow(Workflow):
        with parallel("fan"):

            @step
            def as_text(self, ctx: Any) -> None:
                ctx.put("k", "text")

            @step
            def as_list(self, ctx: Any) -> None:
                ctx.append("k", 1)

    sim = Simulation(Flow).start()
    sim.run_next("as_text")
    with pytest.raises(FlowError, match="conflicting changes: cannot append to context key 'k'"):
        sim.run_next("as_list")


class Items(Workflow):
    with foreach("each", items=lambda ctx: ctx["items"]):

        @step
        def handle(self, ctx: Any, item: Any) -> None:
            ctx.put("saw", ctx.get("results"))
            ctx.append("results", f"done-{item}")
            ctx.increment("count")

    @step
    def after(self, ctx: Any) -> None: ...


def test_foreach_runs_the_body_once_per_item_with_the_item() -> None:
    sim = Simulation(Items, {"items": ["a", "b", "c"]}).start()
    assert sim.ready_steps() == ["handle", "handle", "handle"]
    assert [token.item for token in sim.ready] == ["a", "b", "c"]
    assert [token.scope_key() for token in sim.ready] == ["each[0]", "each[1]", "each[2]"]


def test_foreach_merges_items_in_item_order_whatever_the_completion_order() -> None:
    sim = Simulation(Items, {"items": ["a", "b", "c"]}).start().run_all(last_ready)
    assert [item for name, item in sim.ran if name == "handle"] == ["c", "b", "a"]
    assert sim.context["results"] == ["done-a", "done-b", "done-c"]
    assert sim.context["count"] == 3
    assert sim.context["saw"] is None  # every item started from the context before the block
    assert sim.step_names()[-1] == "after"
    assert sim.completed


def test_foreach_over_no_items_skips_the_block() -> None:
    sim = Simulation(Items, {"items": []}).start()
    assert sim.ready_steps() == ["after"]


def test_foreach_accepts_a_tuple_of_items() -> None:
    class Flow(Workflow):
        with foreach("each", items=lambda ctx: ("x", "y")):

            @step
            def handle(self, ctx: Any, item: Any) -> None: ...

    assert [t.item for t in Simulation(Flow).start().ready] == ["x", "y"]


def test_foreach_with_concurrency_releases_at_most_that_many_items_at_a_time() -> None:
    class Flow(Workflow):
        with foreach("each", items=lambda ctx: list(range(7)), concurrency=2):

            @step
            def handle(self, ctx: Any, item: Any) -> None:
                ctx.append("done", item)

    sim = Simulation(Flow).start()
    in_flight = []
    released = []
    while sim.ready:
        in_flight.append(len(sim.ready))
        released.extend(t.item for t in sim.ready if t.item not in released)
        sim.run(sim.take(index=len(sim.ready) - 1))
    assert max(in_flight) == 2
    assert in_flight[0] == 2
    assert released == list(range(7))
    assert sim.context["done"] == list(range(7))
    assert sim.completed


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        ({"a": 1}, "returned a dict; it must return a list"),
        ("abc", "returned a str; it must return a list"),
        (None, "returned a NoneType; it must return a list"),
        (iter([1, 2]), "returned a list_iterator; it must return a list"),
    ],
)
def test_foreach_items_must_be_a_list(items: Any, fragment: str) -> None:
    class Flow(Workflow):
        with foreach("each", items=lambda ctx: items):

            @step
            def handle(self, ctx: Any, item: Any) -> None: ...

    with pytest.raises(FlowError, match=f"items= of foreach 'each' {fragment}"):
        Simulation(Flow).start()


@pytest.mark.parametrize("bad", [{1, 2}, float("nan"), b"x", object()])
def test_foreach_items_must_be_json(bad: Any) -> None:
    class Flow(Workflow):
        with foreach("each", items=lambda ctx: ["fine", bad]):

            @step
            def handle(self, ctx: Any, item: Any) -> None: ...

    with pytest.raises(FlowError, match=r"items of foreach 'each'\[1\]"):
        Simulation(Flow).start()


def test_foreach_items_that_raise_fail_the_flow() -> None:
    class Flow(Workflow):
        with foreach("each", items=lambda ctx: ctx["nope"]):

            @step
            def handle(self, ctx: Any, item: Any) -> None: ...

    with pytest.raises(FlowError, match="items= of 'each' raised KeyError"):
        Simulation(Flow).start()


def test_parallel_nested_inside_foreach_keeps_the_item_and_merges_in_order() -> None:
    class Flow(Workflow):
        with foreach("each", items=lambda ctx: [1, 2]), parallel("both"):

            @step
            def left(self, ctx: Any, item: Any) -> None:
                ctx.append("log", f"left-{item}")
                ctx.put(f"left_saw_{item}", ctx.get("log"))

            @step
            def right(self, ctx: Any, item: Any) -> None:
                ctx.append("log", f"right-{item}")

        @step
        def after(self, ctx: Any) -> None: ...

    sim = Simulation(Flow).start()
    assert [(t.node, t.item) for t in sim.ready] == [
        ("left", 1),
        ("right", 1),
        ("left", 2),
        ("right", 2),
    ]
    scopes = [t.scope_key() for t in sim.ready]
    assert len(set(scopes)) == 4  # every (item, branch) run of a step is told apart
    assert [scope.split("/")[0] for scope in scopes] == ["each[0]", "each[0]", "each[1]", "each[1]"]
    sim.run_all(last_ready)
    assert sim.context["log"] == ["left-1", "right-1", "left-2", "right-2"]
    assert sim.context["left_saw_1"] == ["left-1"]
    assert sim.context["left_saw_2"] == ["left-2"]
    assert sim.step_names()[-1] == "after"
    assert sim.completed


def test_nested_foreach_gives_inner_items_even_when_they_are_falsy() -> None:
    class Flow(Workflow):
        with (
            foreach("outer", items=lambda ctx: ["o"]),
            foreach("inner", items=lambda ctx: [None, 0, False, "x"]),
        ):

            @step
            def handle(self, ctx: Any, item: Any) -> None:
                ctx.append("items", item)

    sim = Simulation(Flow).start()
    assert [t.item for t in sim.ready] == [None, 0, False, "x"]
    sim.run_all()
    assert sim.context["items"] == [None, 0, False, "x"]


def test_decisions_inside_foreach_route_each_item_separately() -> None:
    class Flow(Workflow):
        with foreach("each", items=lambda ctx: [1, 2, 3]):

            @decision
            def parity(self, ctx: Any, item: int) -> str:
                return "odd" if item % 2 else "even"

            with on_decision(parity):
                with when_result("odd"):

                    @step
                    def odd(self, ctx: Any, item: int) -> None:
                        ctx.append("odd", item)

                with when_result("even"):

                    @step
                    def even(self, ctx: Any, item: int) -> None:
                        ctx.append("even", item)

    sim = Simulation(Flow).start().run_all(last_ready)
    assert sim.context == {"odd": [1, 3], "even": [2]}


def test_many_foreach_items_whose_body_runs_no_step_do_not_exhaust_the_stack() -> None:
    class Flow(Workflow):
        with (
            foreach("each", items=lambda ctx: list(range(3000))),
            switch("route", on=lambda ctx: "skip"),
            case_match("work"),
        ):

            @step
            def work(self, ctx: Any, item: Any) -> None: ...

        @step
        def after(self, ctx: Any) -> None: ...

    sim = Simulation(Flow).start()
    assert sim.ready_steps() == ["after"]
    assert sim.state.fanouts == {}


def test_foreach_item_bodies_that_skip_still_release_the_next_items() -> None:
    class Flow(Workflow):
        with (
            foreach("each", items=lambda ctx: [0, 1, 2, 3], concurrency=1),
            switch("route", on=lambda ctx: ctx.get("mode")),
            case_match("work"),
        ):

            @step
            def work(self, ctx: Any, item: Any) -> None:
                ctx.append("done", item)

    sim = Simulation(Flow, {"mode": "work"}).start()
    assert [t.item for t in sim.ready] == [0]
    sim.run_all()
    assert sim.context["done"] == [0, 1, 2, 3]


def test_tokens_round_trip_through_json() -> None:
    token = Token(node="a", loops={"l": 2}, decisions={"d": None}, ops=[["put", "k", 1]], item=0)
    token = token.child("fan", 1)
    token.node = "b"
    copy = Token.from_json(token.to_json())
    assert copy == token
    assert copy.item == 0
    assert copy.scope_key() == "fan[1]/l#2"
    assert Token.from_json(Token().to_json()) == Token()


def test_a_foreach_wider_than_the_window_starts_a_window_at_a_time_and_joins_in_order() -> None:
    class Flow(Workflow):
        with foreach("each", items=lambda ctx: list(range(10))):

            @step
            def handle(self, ctx: Any, item: Any) -> None:
                ctx.append("done", item)

    sim = Simulation(Flow)
    sim.branches.window = 3
    sim.start()
    record = next(iter(sim.state.fanouts.values()))
    # The header stays small: counts and the snapshot, not the items or what branches did.
    assert set(record) == {"key", "block", "base", "parent", "total", "started", "done", "limit"}
    assert (record["limit"], len(sim.ready)) == (3, 3)
    assert sorted(sim.branches.items) == [(record["key"], i) for i in range(3, 10)]
    in_flight = []
    while sim.ready:
        in_flight.append(len(sim.ready))
        sim.run(sim.take(index=len(sim.ready) - 1))  # finish out of order
    assert max(in_flight) == 3
    assert sim.context["done"] == list(range(10))
    assert sim.branches.items == {}
    assert sim.branches.done == {}
    assert sim.completed
