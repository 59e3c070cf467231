"""Invalid workflow classes raise DefinitionError naming the workflow and the step or block."""

from __future__ import annotations

import types
from typing import Any

import pytest

from durable import (
    DefinitionError,
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
from durable.dsl.builder import collectors
from durable.time import seconds


def items_of(ctx: Any) -> Any:
    return ctx["items"]


def forever(ctx: Any) -> bool:
    return True


def single_problem(error: pytest.ExceptionInfo[DefinitionError]) -> str:
    assert len(error.value.problems) == 1, error.value.problems
    return error.value.problems[0]


def test_message_names_the_workflow_and_lists_every_problem() -> None:
    error = DefinitionError("orders", ["step 'a': one", "step 'b': two"])
    assert str(error) == "workflow 'orders' is invalid:\n  - step 'a': one\n  - step 'b': two"


def test_duplicate_step_name_is_reported_with_workflow_and_step() -> None:
    with pytest.raises(DefinitionError) as error:

        class Dupes(Workflow):
            @step
            def charge(self, ctx: Any) -> None: ...

            @step(name="charge")
            def charge_again(self, ctx: Any) -> None: ...

    assert error.value.workflow == "dupes"
    assert single_problem(error) == (
        "step 'charge': the name is used twice; names are unique per workflow"
    )
    assert "workflow 'dupes' is invalid" in str(error.value)


def test_duplicate_step_name_across_blocks_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Dupes(Workflow):
            @step
            def notify(self, ctx: Any) -> None: ...

            with parallel("fan"):

                @step(name="notify")
                def notify_in_branch(self, ctx: Any) -> None: ...

                @step
                def other(self, ctx: Any) -> None: ...

    assert single_problem(error) == (
        "step 'notify': the name is used twice; names are unique per workflow"
    )


def test_block_name_clashing_with_a_step_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Dupes(Workflow):
            @step
            def work(self, ctx: Any) -> None: ...

            with loop("work", while_=forever):

                @step
                def again(self, ctx: Any) -> None: ...

    assert (
        single_problem(error)
        == "loop 'work': the name is used twice; names are unique per workflow"
    )


def test_two_steps_sharing_one_method_name_are_reported() -> None:
    # The engine runs a step by method name: the second `def run` would silently replace the
    # first step's code.
    with pytest.raises(DefinitionError) as error:

        class Shadowed(Workflow):
            @step(name="first")
            def run(self, ctx: Any) -> None: ...

            @step(name="second")
            def run(self, ctx: Any) -> None: ...  # noqa: F811

    assert single_problem(error) == (
        "step 'first': its method 'run' is redefined later in the class body; give each step "
        "its own method name"
    )


def test_step_not_stored_under_its_method_name_is_reported() -> None:
    def helper(self: Any, ctx: Any) -> None: ...

    with pytest.raises(DefinitionError) as error:

        class Assigned(Workflow):
            a = step(helper)

    assert single_problem(error) == (
        "step 'helper': the class has no attribute 'helper' holding this step"
    )


def test_unknown_compensate_name_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Saga(Workflow):
            @step(compensate="refund")
            def charge(self, ctx: Any) -> None: ...

    assert error.value.workflow == "saga"
    assert (
        single_problem(error) == "step 'charge': compensate='refund' names no method of the class"
    )


def test_compensate_naming_a_step_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Saga(Workflow):
            @step(compensate="refund")
            def charge(self, ctx: Any) -> None: ...

            @step
            def refund(self, ctx: Any) -> None: ...

    assert single_problem(error) == (
        "step 'charge': compensate='refund' is a step; use a plain method"
    )


def test_compensate_naming_a_non_callable_attribute_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Saga(Workflow):
            refund = "not a method"

            @step(compensate="refund")
            def charge(self, ctx: Any) -> None: ...

    assert "compensate='refund' names no method" in single_problem(error)


def test_on_decision_of_a_step_that_is_not_a_decision_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Branchy(Workflow):
            @step
            def check(self, ctx: Any) -> None: ...

            with on_decision(check), when_result("x"):

                @step
                def x(self, ctx: Any) -> None: ...

    assert error.value.workflow == "branchy"
    assert single_problem(error) == "on_decision('check'): 'check' is not a @decision"


def test_on_decision_by_name_of_a_step_that_is_not_a_decision_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Branchy(Workflow):
            @step
            def check(self, ctx: Any) -> None: ...

            with on_decision("check"), when_result("x"):

                @step
                def x(self, ctx: Any) -> None: ...

    assert single_problem(error) == "on_decision('check'): 'check' is not a @decision"


def test_on_decision_of_an_unknown_name_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Branchy(Workflow):
            @step
            def a(self, ctx: Any) -> None: ...

            with on_decision("nowhere"), when_result("x"):

                @step
                def x(self, ctx: Any) -> None: ...

    assert single_problem(error) == (
        "on_decision('nowhere'): no decision named 'nowhere' in this workflow"
    )


def test_on_decision_before_its_decision_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Backwards(Workflow):
            with on_decision("later"), when_result("x"):

                @step
                def x(self, ctx: Any) -> None: ...

            @decision
            def later(self, ctx: Any) -> str:
                return "x"

    assert single_problem(error) == (
        "on_decision('later'): must come after decision 'later', in its branch or nested in it"
    )


def test_on_decision_in_a_sibling_branch_of_its_decision_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Siblings(Workflow):
            with parallel("fan"):

                @decision
                def pick(self, ctx: Any) -> str:
                    return "x"

                with on_decision("pick"), when_result("x"):

                    @step
                    def x(self, ctx: Any) -> None: ...

    assert "must come after decision 'pick'" in single_problem(error)


def test_on_decision_nested_after_its_decision_is_accepted() -> None:
    class Nested(Workflow):
        @decision
        def pick(self, ctx: Any) -> str:
            return "x"

        with parallel("fan"):
            with on_decision(pick), when_result("x"):

                @step
                def x(self, ctx: Any) -> None: ...

            @step
            def y(self, ctx: Any) -> None: ...

    assert Nested.definition().by_name["pick:branches"].name == "pick:branches"


def test_when_result_outside_on_decision_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Loose(Workflow):
            @step
            def a(self, ctx: Any) -> None: ...

            with when_result("x"):

                @step
                def x(self, ctx: Any) -> None: ...

    assert error.value.workflow == "loose"
    assert single_problem(error) == (
        "when_result('x') must be directly inside on_decision, not at the top level"
    )


def test_when_result_inside_another_block_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Loose(Workflow):
            with parallel("fan"), when_result("x"):

                @step
                def x(self, ctx: Any) -> None: ...

    assert (
        "when_result('x') must be directly inside on_decision, not inside parallel 'fan'"
        in error.value.problems
    )


def test_case_match_outside_switch_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Loose(Workflow):
            @step
            def a(self, ctx: Any) -> None: ...

            with case_match("billing"):

                @step
                def billing(self, ctx: Any) -> None: ...

    assert single_problem(error) == (
        "case_match('billing') must be directly inside switch, not at the top level"
    )


def test_default_outside_switch_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Loose(Workflow):
            @step
            def a(self, ctx: Any) -> None: ...

            with default():

                @step
                def other(self, ctx: Any) -> None: ...

    assert single_problem(error) == "default() must be directly inside switch, not at the top level"


def test_case_match_inside_on_decision_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Mixed(Workflow):
            @decision
            def pick(self, ctx: Any) -> str:
                return "x"

            with on_decision(pick), case_match("x"):

                @step
                def x(self, ctx: Any) -> None: ...

    problems = error.value.problems
    assert (
        "case_match('x') must be directly inside switch, not inside on_decision "
        "'pick:branches'" in problems
    )
    assert (
        "on_decision('pick'): only when_result() blocks may appear inside, found case_match"
        in problems
    )


def test_step_directly_inside_on_decision_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Mixed(Workflow):
            @decision
            def pick(self, ctx: Any) -> str:
                return "x"

            with on_decision(pick):

                @step
                def stray(self, ctx: Any) -> None: ...

                with when_result("x"):

                    @step
                    def x(self, ctx: Any) -> None: ...

    assert single_problem(error) == (
        "on_decision('pick'): step 'stray' must be inside a when_result() branch"
    )


def test_step_directly_inside_switch_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Mixed(Workflow):
            with switch("route", on=items_of):

                @step
                def stray(self, ctx: Any) -> None: ...

                with default():

                    @step
                    def other(self, ctx: Any) -> None: ...

    assert single_problem(error) == (
        "switch 'route': step 'stray' must be inside a case_match() branch"
    )


def test_duplicate_when_result_values_are_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Twice(Workflow):
            @decision
            def pick(self, ctx: Any) -> str:
                return "x"

            with on_decision(pick):
                with when_result("x"):

                    @step
                    def first(self, ctx: Any) -> None: ...

                with when_result("x"):

                    @step
                    def second(self, ctx: Any) -> None: ...

    assert single_problem(error) == "on_decision('pick'): when_result('x') appears twice"


def test_duplicate_case_match_values_are_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Twice(Workflow):
            with switch("route", on=items_of):
                with case_match(1):

                    @step
                    def first(self, ctx: Any) -> None: ...

                with case_match(1):

                    @step
                    def second(self, ctx: Any) -> None: ...

    assert single_problem(error) == "switch 'route': case_match(1) appears twice"


@pytest.mark.parametrize("value", [["a"], {"a": 1}, ("a",), object()])
def test_non_scalar_when_result_value_is_reported(value: Any) -> None:
    with pytest.raises(DefinitionError) as error:

        class Weird(Workflow):
            @decision
            def pick(self, ctx: Any) -> Any: ...

            with on_decision(pick), when_result(value):

                @step
                def x(self, ctx: Any) -> None: ...

    assert single_problem(error) == (
        f"on_decision('pick'): when_result({value!r}): values must be str, int, float, bool or None"
    )


def test_nan_when_result_value_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Weird(Workflow):
            @decision
            def pick(self, ctx: Any) -> Any: ...

            with on_decision(pick), when_result(float("nan")):

                @step
                def x(self, ctx: Any) -> None: ...

    assert "on_decision('pick'): when_result(nan)" in single_problem(error)
    assert "NaN" in single_problem(error)


def test_on_decision_without_branches_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Empty(Workflow):
            @decision
            def pick(self, ctx: Any) -> Any: ...

            with on_decision(pick):
                pass

    assert single_problem(error) == "on_decision('pick'): has no when_result() branches"


def test_empty_parallel_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Empty(Workflow):
            @step
            def a(self, ctx: Any) -> None: ...

            with parallel("fan"):
                pass

    assert single_problem(error) == "parallel 'fan': has no branches"


def test_empty_foreach_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Empty(Workflow):
            @step
            def a(self, ctx: Any) -> None: ...

            with foreach("each", items=items_of):
                pass

    assert single_problem(error) == "foreach 'each': has an empty body"


def test_empty_loop_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Empty(Workflow):
            @step
            def a(self, ctx: Any) -> None: ...

            with loop("spin", while_=forever):
                pass

    assert single_problem(error) == "loop 'spin': has an empty body"


def test_empty_switch_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Empty(Workflow):
            @step
            def a(self, ctx: Any) -> None: ...

            with switch("route", on=items_of):
                pass

    assert single_problem(error) == "switch 'route': has no case_match() or default() branches"


def test_two_defaults_in_a_switch_are_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Twice(Workflow):
            with switch("route", on=items_of):
                with default():

                    @step
                    def first(self, ctx: Any) -> None: ...

                with default():

                    @step
                    def second(self, ctx: Any) -> None: ...

    assert "switch 'route': has more than one default()" in error.value.problems


@pytest.mark.parametrize(
    ("retry", "message"),
    [
        (Retry(max_attempts=0), "retry: max_attempts must be an int >= 1, got 0"),
        (Retry(backoff="fibonacci"), "retry: backoff must be one of"),  # type: ignore[arg-type]
        (Retry(base=-2), "retry: base must be a finite number >= 0, got -2"),
        (Retry(max_backoff=-5), "retry: max_backoff must be >= 0 seconds, got -5"),
        (3, "retry must be a Retry(...), got 3"),
    ],
)
def test_bad_retry_values_are_reported_with_the_step(retry: Any, message: str) -> None:
    with pytest.raises(DefinitionError) as error:

        class Retrying(Workflow):
            @step(retry=retry)
            def flaky(self, ctx: Any) -> None: ...

    assert single_problem(error).startswith(f"step 'flaky': {message}")


@pytest.mark.parametrize("timeout", [0, -1, seconds(0), seconds(-3), float("inf")])
def test_non_positive_step_timeout_is_reported(timeout: Any) -> None:
    with pytest.raises(DefinitionError) as error:

        class Timed(Workflow):
            @step(timeout=timeout)
            def slow(self, ctx: Any) -> None: ...

    assert single_problem(error) == f"step 'slow': timeout must be positive, got {timeout!r}"


@pytest.mark.parametrize("timeout", ["5", [5], True])
def test_step_timeout_that_is_not_a_duration_is_reported(timeout: Any) -> None:
    with pytest.raises(DefinitionError) as error:

        class Timed(Workflow):
            @step(timeout=timeout)
            def slow(self, ctx: Any) -> None: ...

    assert single_problem(error) == (
        f"step 'slow': timeout must be a timedelta or a number of seconds, got {timeout!r}"
    )


@pytest.mark.parametrize(
    ("bad_timeout", "message"),
    [
        (0, "workflow: timeout must be positive, got 0"),
        (seconds(-1), "workflow: timeout must be positive, got datetime.timedelta(days=-1, "),
        ("2h", "workflow: timeout must be a timedelta or a number of seconds, got '2h'"),
    ],
)
def test_bad_workflow_timeout_is_reported(bad_timeout: Any, message: str) -> None:
    with pytest.raises(DefinitionError) as error:

        class TimedOut(Workflow):
            timeout = bad_timeout

            @step
            def a(self, ctx: Any) -> None: ...

    assert error.value.workflow == "timed_out"
    assert single_problem(error).startswith(message)


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("max_retries", 0, "workflow: max_retries must be an int >= 1, got 0"),
        ("max_retries", True, "workflow: max_retries must be an int >= 1, got True"),
        ("queue", "", "workflow: queue must be a non-empty string, got ''"),
        ("name", "has space", "workflow: name 'has space' is not a valid workflow name"),
    ],
)
def test_bad_workflow_settings_are_reported(attribute: str, value: Any, message: str) -> None:
    def body(namespace: dict[str, Any]) -> None:
        @step
        def a(self: Any, ctx: Any) -> None: ...

        namespace.update({attribute: value, "a": a})

    with pytest.raises(DefinitionError) as error:
        types.new_class("Configured", (Workflow,), exec_body=body)
    assert error.value.problems == [message]


def test_bad_step_queue_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Queued(Workflow):
            @step(queue="")
            def a(self, ctx: Any) -> None: ...

    assert single_problem(error) == "step 'a': queue must be a non-empty string, got ''"


def test_step_outside_foreach_must_not_require_an_item() -> None:
    with pytest.raises(DefinitionError) as error:

        class Items(Workflow):
            @step
            def handle(self, ctx: Any, item: Any) -> None: ...

    assert single_problem(error) == (
        "step 'handle': takes too many arguments; expected (self, ctx)"
    )


def test_step_inside_foreach_may_take_the_item_but_no_more() -> None:
    with pytest.raises(DefinitionError) as error:

        class Items(Workflow):
            with foreach("each", items=items_of):

                @step
                def handle(self, ctx: Any, item: Any, extra: Any) -> None: ...

    assert single_problem(error) == (
        "step 'handle': takes too many arguments; expected (self, ctx, item)"
    )


def test_step_must_accept_self_and_ctx() -> None:
    with pytest.raises(DefinitionError) as error:

        class NoCtx(Workflow):
            @step
            def lonely(self) -> None: ...

    assert single_problem(error) == "step 'lonely': must accept (self, ctx)"


@pytest.mark.parametrize("concurrency", [0, -1, True, "2", 1.5])
def test_bad_foreach_concurrency_is_reported(concurrency: Any) -> None:
    with pytest.raises(DefinitionError) as error:

        class Items(Workflow):
            with foreach("each", items=items_of, concurrency=concurrency):

                @step
                def handle(self, ctx: Any, item: Any) -> None: ...

    assert single_problem(error) == (
        f"foreach 'each': concurrency must be an int >= 1, got {concurrency!r}"
    )


@pytest.mark.parametrize("limit", [0, True, 2.0])
def test_bad_loop_max_iterations_is_reported(limit: Any) -> None:
    with pytest.raises(DefinitionError) as error:

        class Loops(Workflow):
            with loop("spin", while_=forever, max_iterations=limit):

                @step
                def turn(self, ctx: Any) -> None: ...

    assert single_problem(error) == (
        f"loop 'spin': max_iterations must be an int >= 1, got {limit!r}"
    )


def test_routing_options_must_be_callables() -> None:
    with pytest.raises(DefinitionError) as error:

        class NotCallable(Workflow):
            with foreach("each", items=["a", "b"]):  # type: ignore[arg-type]

                @step
                def handle(self, ctx: Any, item: Any) -> None: ...

            with loop("spin", while_=True):  # type: ignore[arg-type]

                @step
                def turn(self, ctx: Any) -> None: ...

            with switch("route", on="category"), default():  # type: ignore[arg-type]

                @step
                def other(self, ctx: Any) -> None: ...

    assert error.value.problems == [
        "foreach 'each': items= must be a callable taking ctx, got ['a', 'b']",
        "loop 'spin': while_= must be a callable taking ctx, got True",
        "switch 'route': on= must be a callable taking ctx, got 'category'",
    ]


def test_empty_block_name_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Nameless(Workflow):
            with parallel(""):

                @step
                def a(self, ctx: Any) -> None: ...

    assert single_problem(error) == "parallel '': the name must be a non-empty string"


def test_workflow_without_steps_is_reported() -> None:
    with pytest.raises(DefinitionError) as error:

        class Nothing(Workflow):
            def helper(self, ctx: Any) -> None: ...

    assert error.value.workflow == "nothing"
    assert single_problem(error) == "workflow: declares no steps"


def test_several_problems_are_all_reported_at_once() -> None:
    with pytest.raises(DefinitionError) as error:

        class Broken(Workflow):
            timeout = 0

            @step(compensate="missing", retry=Retry(max_attempts=0), timeout=-1)
            def a(self, ctx: Any) -> None: ...

            @step(name="a")
            def a_again(self, ctx: Any) -> None: ...

            @step
            def not_a_decision(self, ctx: Any) -> None: ...

            with on_decision(not_a_decision), when_result("x"):

                @step
                def x(self, ctx: Any) -> None: ...

            with when_result("loose"):

                @step
                def y(self, ctx: Any) -> None: ...

            with parallel("empty"):
                pass

    assert error.value.workflow == "broken"
    assert sorted(error.value.problems) == sorted(
        [
            "when_result('loose') must be directly inside on_decision, not at the top level",
            "step 'a': retry: max_attempts must be an int >= 1, got 0",
            "step 'a': timeout must be positive, got -1",
            "step 'a': compensate='missing' names no method of the class",
            "step 'a': the name is used twice; names are unique per workflow",
            "on_decision('not_a_decision'): 'not_a_decision' is not a @decision",
            "parallel 'empty': has no branches",
            "workflow: timeout must be positive, got 0",
        ]
    )
    message = str(error.value)
    assert message.startswith("workflow 'broken' is invalid:\n")
    assert message.count("\n  - ") == 8


def test_a_failed_class_is_not_registered() -> None:
    with pytest.raises(DefinitionError):

        class Unregistered(Workflow):
            @step(timeout=0)
            def a(self, ctx: Any) -> None: ...

    assert "unregistered" not in {d.name for d in registry.all_definitions()}
    assert collectors() == []


def test_two_classes_claiming_one_name_are_reported() -> None:
    class First(Workflow):
        name = "shared.name"

        @step
        def a(self, ctx: Any) -> None: ...

    with pytest.raises(DefinitionError) as error:

        class Second(Workflow):
            name = "shared.name"

            @step
            def a(self, ctx: Any) -> None: ...

    assert error.value.workflow == "shared.name"
    assert single_problem(error) == (
        f"the name 'shared.name' is already used by {First.__module__}.{First.__qualname__}"
    )
    assert registry.get("shared.name").workflow_class is First


def test_subclass_redeclaring_an_inherited_nested_name_inside_a_block_is_reported() -> None:
    class Parent(Workflow):
        @step
        def a(self, ctx: Any) -> None: ...

    with pytest.raises(DefinitionError) as error:

        class Child(Parent):
            with parallel("fan"):

                @step
                def a(self, ctx: Any) -> None: ...

                @step
                def b(self, ctx: Any) -> None: ...

    assert error.value.workflow == "child"
    assert single_problem(error).startswith(
        "step 'a': the name is also used by an inherited step or block"
    )


def test_abstract_class_with_problems_is_reported_at_once() -> None:
    with pytest.raises(DefinitionError) as error:

        class BrokenBase(Workflow):
            abstract = True

            @step(timeout=0)
            def a(self, ctx: Any) -> None: ...

    assert error.value.workflow == "broken_base"
    assert single_problem(error) == "step 'a': timeout must be positive, got 0"


def test_step_with_a_positional_name_explains_the_keyword() -> None:
    with pytest.raises(TypeError, match=r"@step\('charge'\): options are keyword-only"):
        step("charge")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"@decision\('pick'\): options are keyword-only"):
        decision("pick")  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "block",
    [
        lambda: parallel("p"),
        lambda: foreach("f", items=items_of),
        lambda: loop("l", while_=forever),
        lambda: switch("s", on=items_of),
        lambda: on_decision("d"),
        lambda: when_result("x"),
        lambda: case_match("x"),
        default,
    ],
)
def test_blocks_outside_a_workflow_class_body_raise(block: Any) -> None:
    with pytest.raises(RuntimeError, match="only be used inside a Workflow class body"), block():
        pass
