"""Workflows for the dashboard's fixes and hardening tests: a failure with two attempts, a
JSON result, a single-choice input with a deadline, and one that stores hostile strings in
every value a workflow controls."""

from __future__ import annotations

import logging
from typing import Any

from durable import Retry, Workflow, decision, foreach, on_decision, step, when_result
from durable.time import hours

logger = logging.getLogger("tests.web.hostile")

# Each would run script if it reached the page unescaped, in text or in an attribute.
HOSTILE = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>'><svg onload=alert(3)>"


class WebFails(Workflow):
    """Fails its first step twice (two attempts); the second step never runs."""

    name = "web_fault_fails"

    @step(retry=Retry(max_attempts=2, backoff="constant", base=0))
    def explode(self, ctx: Any) -> None:
        raise ValueError(f"boom {ctx.input.get('why', '')}")

    @step
    def never_runs(self, ctx: Any) -> None:
        ctx.put("reached", True)


class WebResult(Workflow):
    """Completes with a dict result."""

    name = "web_result"

    @step
    def compute(self, ctx: Any) -> dict[str, Any]:
        return {"total": 3, "approved": True, "note": None}


class WebChoice(Workflow):
    """Waits for a single choice, answerable for a day."""

    name = "web_choice"

    @step
    def decide(self, ctx: Any) -> None:
        answer = ctx.wait_for_input(
            "decision",
            type="single_choice",
            prompt="Approve the expense?",
            choices=[{"value": "yes", "label": "Approve"}, {"value": "no", "label": "Reject"}],
            timeout=hours(24),
        )
        ctx.put("decision", answer)


class WebHostile(Workflow):
    """Puts HOSTILE in its context, result, logs and error, a decision's result and a
    block's name (both drawn in the graph), and a form input's prompt, labels, help texts,
    options and name."""

    name = "web_fault_hostile"

    @step
    def remember(self, ctx: Any) -> None:
        logger.warning("%s", HOSTILE)
        print(HOSTILE)
        ctx.put(HOSTILE, HOSTILE)
        ctx.progress(1, 2)

    @decision
    def route(self, ctx: Any) -> str:
        return HOSTILE

    with on_decision(route), when_result(HOSTILE):  # an edge label in the graph

        @step
        def routed(self, ctx: Any) -> None:
            ctx.put("routed", HOSTILE)

    with foreach(HOSTILE, items=lambda ctx: [HOSTILE, {HOSTILE: HOSTILE}]):  # a block's name

        @step
        def each(self, ctx: Any, item: Any) -> None:
            logger.warning("item %s", item)

    @step
    def ask(self, ctx: Any) -> None:
        answer = ctx.wait_for_input(
            f"input {HOSTILE}",
            type="form",
            prompt=HOSTILE,
            fields=[
                {"name": "amount", "type": "number", "label": HOSTILE, "help_text": HOSTILE},
                {"name": "kind", "type": "select", "options": [HOSTILE, "plain"]},
                {
                    "name": "tags",
                    "type": "multi_select",
                    "options": [HOSTILE],
                    "help_text": HOSTILE,
                },
            ],
        )
        ctx.put("answer", answer)

    @step
    def fail(self, ctx: Any) -> None:
        if ctx.input.get("fail"):
            raise RuntimeError(HOSTILE)
        ctx.set_result({HOSTILE: HOSTILE})


class WebHostileChoice(Workflow):
    """A single-choice input whose choice labels and values are hostile."""

    name = "web_hostile_choice"

    @step
    def choose(self, ctx: Any) -> None:
        ctx.put(
            "choice",
            ctx.wait_for_input(
                "pick",
                type="single_choice",
                prompt=HOSTILE,
                choices=[{"value": HOSTILE, "label": HOSTILE}, HOSTILE + "2"],
            ),
        )
