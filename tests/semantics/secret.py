"""A workflow that carries a secret through every kind of payload Durable stores."""

from __future__ import annotations

from typing import Any

from durable import Workflow, foreach, parallel, step


class Secretive(Workflow):
    name = "semantics_secretive"

    @step
    def remember(self, ctx: Any) -> str:
        ctx.put("copy", ctx.input["ssn"])
        return f"seen {ctx.input['ssn']}"

    with foreach("each", items=lambda ctx: [f"{ctx.input['ssn']}-{n}" for n in range(3)]):

        @step
        def item(self, ctx: Any, value: str) -> str:
            ctx.append("items", value)
            return value

    with parallel("both"):

        @step
        def left(self, ctx: Any) -> None:
            ctx.put("left", ctx["copy"])

        @step
        def right(self, ctx: Any) -> None:
            ctx.put("right", ctx["copy"])

    @step
    def ask(self, ctx: Any) -> dict[str, Any]:
        event = ctx.wait_for_event("card")
        answer = ctx.wait_for_input("approval")
        ctx.set_result({"ssn": ctx.input["ssn"], "card": event, "answer": answer})
        return {"event": event, "answer": answer}
