"""Flow-control attributes are validated when the class is created."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from durable import DefinitionError, Workflow, step
from durable.dsl.limits import check_keys, parse_rate
from tests.flowcontrol import workflows as wf


class OneStep(Workflow):
    abstract = True

    @step
    def only(self, ctx: Any) -> None:
        pass


def make(name: str, **attrs: Any) -> type[Workflow]:
    return type(name, (OneStep,), {"name": name, "__module__": __name__, **attrs})


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [("100/m", 100, 60), ("5/s", 5, 1), ("1000/h", 1000, 3600), (" 10 / 30s ", 10, 30)],
)
def test_rates_parse_to_count_and_period(text: str, count: int, period: float) -> None:
    rate = parse_rate(text)
    assert (rate.count, rate.period) == (count, period)
    assert rate.interval == timedelta(seconds=period / count)


@pytest.mark.parametrize("text", ["0/m", "100", "100/d", "x/m", "10/0s", 100, None])
def test_bad_rates_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="N/s"):
        parse_rate(text)


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"concurrency_key": "c", "concurrency_limit": 0}, "concurrency_limit must be an int >= 1"),
        ({"concurrency_key": "c", "concurrency_limit": True}, "concurrency_limit must be an int"),
        ({"concurrency_key": "c"}, "concurrency_key is set but concurrency_limit is not"),
        ({"concurrency_key": 3, "concurrency_limit": 1}, "concurrency_key must be an input key"),
        ({"rate_limit": "fast"}, "rate_limit: a rate limit is"),
        ({"rate_limit_key": "account"}, "rate_limit_key is set but rate_limit is not"),
        ({"debounce": 0}, "debounce must be positive"),
        ({"debounce": "soon"}, "debounce must be a timedelta or a number of seconds"),
        ({"debounce_key": "doc"}, "debounce_key is set but debounce is not"),
        ({"debounce": 5, "cron": "0 * * * *"}, "debounce cannot be combined with cron"),
    ],
)
def test_bad_flow_control_is_a_definition_error_naming_the_workflow(
    attrs: dict[str, Any], message: str
) -> None:
    with pytest.raises(DefinitionError, match="fc_bad") as info:
        make("fc_bad", **attrs)
    assert any(message in problem for problem in info.value.problems), info.value.problems


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(DefinitionError) as info:
        make("fc_bad_many", concurrency_limit=-1, rate_limit="1/d", debounce=-2)
    assert len(info.value.problems) == 3, info.value.problems


def test_flow_control_is_compiled_into_the_definition() -> None:
    flow = wf.OnePerCustomer.definition().flow
    assert flow is not None
    assert (flow.concurrency_key, flow.concurrency_limit) == ("customer", 1)
    flow = wf.Reindex.definition().flow
    assert flow is not None
    assert (flow.debounce, flow.debounce_key) == (60.0, "document")
    assert wf.TenPerSecond.definition().flow.rate.text == "10/s"  # type: ignore[union-attr]


def test_workflows_without_flow_control_have_none() -> None:
    assert make("fc_plain").definition().flow is None


@pytest.mark.parametrize(
    ("workflow", "input", "message"),
    [
        (wf.OnePerCustomer, {"n": 1}, "concurrency_key 'customer' is not in the input"),
        (wf.OnePerCustomer, {"customer": [1]}, "concurrency_key must give a string or an int"),
        (wf.OnePerCustomer, {"customer": "x" * 201}, "longer than 200"),
        (wf.FivePerSecondPerAccount, {}, "rate_limit_key 'account' is not in the input"),
        (wf.Reindex, {"version": 1}, "debounce_key 'document' is not in the input"),
    ],
)
def test_keys_the_input_cannot_give_are_refused(
    workflow: type[Workflow], input: dict[str, Any], message: str
) -> None:
    definition = workflow.definition()
    with pytest.raises(ValueError, match=message):
        check_keys(definition.name, definition.flow, input)


def durable_errors(**durable: Any) -> list[str]:
    from django.core.checks import run_checks
    from django.test import override_settings

    with override_settings(DURABLE=durable):
        return [m.msg for m in run_checks(tags=["durable"]) if m.id == "durable.E021"]


@pytest.mark.parametrize("rate", ["100/d", "0/m", 100])
def test_a_malformed_queue_rate_limit_is_e021_naming_the_queue(rate: object) -> None:
    queues = {"default": {"concurrency": 2}, "emails": {"concurrency": 2, "rate_limit": rate}}
    (message,) = durable_errors(QUEUES=queues)
    assert "DURABLE['QUEUES']['emails']['rate_limit']" in message


def test_a_valid_queue_rate_limit_passes_the_checks() -> None:
    queues = {"default": {"concurrency": 2, "rate_limit": "100/m"}}
    assert durable_errors(QUEUES=queues) == []
