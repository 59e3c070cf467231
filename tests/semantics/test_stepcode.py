"""What durable_deploy_check calls an unpatched change: a step whose source changed with no
`ctx.patched` id new to it."""

from __future__ import annotations

from typing import Any

from durable import Workflow, step
from durable.dsl.stepcode import step_code, unpatched_changes


class Before(Workflow):
    name = "semantics_stepcode_before"

    @step
    def ship(self, ctx: Any) -> str:
        return "post"

    @step
    def notify(self, ctx: Any) -> str:
        return "mail"


class Patched(Workflow):
    name = "semantics_stepcode_patched"

    @step
    def ship(self, ctx: Any) -> str:
        return "courier" if ctx.patched("courier") else "post"

    @step
    def notify(self, ctx: Any) -> str:
        return "mail"


class Unpatched(Workflow):
    name = "semantics_stepcode_unpatched"

    @step
    def ship(self, ctx: Any) -> str:
        return "courier"

    @step
    def notify(self, ctx: Any) -> str:
        return "mail"


def code(workflow: type[Workflow]) -> dict[str, dict[str, Any]]:
    return step_code(workflow.definition())


def test_step_code_hashes_each_step_and_lists_its_patch_ids() -> None:
    patched = code(Patched)

    assert set(patched) == {"ship", "notify"}
    assert patched["ship"]["patches"] == ["courier"]
    assert patched["notify"]["patches"] == []
    assert patched["notify"]["hash"] == code(Before)["notify"]["hash"]  # the same source
    assert patched["ship"]["hash"] != code(Before)["ship"]["hash"]


def test_a_change_with_a_new_patch_id_is_patched_one_without_is_not() -> None:
    before = code(Before)

    assert unpatched_changes(before, code(Patched)) == []
    assert unpatched_changes(before, code(Unpatched)) == ["ship"]
    assert unpatched_changes(before, before) == []
    # Dropping the patch later (no run needs the old branch) adds no new id: reported.
    assert unpatched_changes(code(Patched), code(Unpatched)) == ["ship"]


def test_a_step_the_record_does_not_know_is_no_change() -> None:
    assert unpatched_changes({"notify": code(Before)["notify"]}, code(Unpatched)) == []
