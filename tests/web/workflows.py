"""Workflows the web tests start (in-process and on real workers)."""

from __future__ import annotations

import logging
import time
from typing import Any

from durable import Workflow, step

logger = logging.getLogger("tests.web")

REVIEW_FIELDS = [
    {"name": "approved", "type": "boolean"},
    {"name": "amount", "type": "number", "required": True},
    {"name": "note", "type": "text", "max_length": 20},
    {"name": "size", "type": "select", "options": ["s", "m", "l"]},
]


class WebSteps(Workflow):
    """Three steps; the middle one reports progress and can be slowed down by the input."""

    name = "web_steps"

    @step
    def fetch(self, ctx: Any) -> None:
        print("fetching", ctx.input.get("label", ""))
        logger.warning("fetched %s", ctx.input.get("label", ""))
        ctx.put("label", ctx.input.get("label", ""))

    @step
    def crunch(self, ctx: Any) -> None:
        total = 4
        for done in range(1, total + 1):
            time.sleep(float(ctx.input.get("delay", 0)))
            ctx.progress(done, total)

    @step
    def finish(self, ctx: Any) -> str:
        return "ok"


class WebReview(Workflow):
    """Waits for a form input, then records the answer in a second step."""

    name = "web_review"

    @step
    def ask(self, ctx: Any) -> None:
        answer = ctx.wait_for_input(
            "review", type="form", prompt="Approve the order?", fields=REVIEW_FIELDS
        )
        ctx.put("review", answer)

    @step
    def after(self, ctx: Any) -> None:
        ctx.put("after", True)


# The fixes' tests (test_fixes.py, test_browser_fixes.py) need these in the web server too.
import tests.web.fault_workflows  # noqa: E402, F401
