"""Safe deploys: positions a new definition no longer has park the execution; renames map
them; the deploy check lists them; revived executions finish."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

import durable
from durable.exceptions import InvalidTransition
from durable.models import ExecutionStatus, StepStatus, Task, TaskStatus, WorkflowExecution
from durable.store import deploys
from durable.testing import run_until_idle
from tests.deploys import workflows as wf
from tests.deploys.workflows import deployed
from tests.integration.support import attempts, run_next

pytestmark = pytest.mark.django_db


def to_waiting_pickup() -> str:
    wid = durable.start(wf.Shipping, {})
    run_next()  # pack
    run_next()  # await_pickup parks on its event
    assert durable.get_execution(wid).status == ExecutionStatus.WAITING
    return wid


def deploy_check() -> tuple[str, str | None]:
    out = StringIO()
    try:
        call_command("durable_deploy_check", stdout=out)
    except CommandError as exc:
        return out.getvalue(), str(exc)
    return out.getvalue(), None


def test_executions_record_the_fingerprint_of_their_definition() -> None:
    wid = durable.start(wf.Shipping, {})
    other = durable.start(wf.ShippingExtended, {})
    first = durable.get_execution(wid).definition_fingerprint
    assert first
    assert first != durable.get_execution(other).definition_fingerprint


def test_deploy_check_flags_a_removed_in_flight_step() -> None:
    wid = to_waiting_pickup()
    with deployed("deploy_shipping", wf.ShippingWithoutPickup):
        output, error = deploy_check()
    assert error is not None
    assert "1 in-flight execution" in error
    assert f"deploy_shipping\t{wid}\twaiting\tposition=await_pickup\tmissing=await_pickup" in output


def test_deploy_check_passes_a_safe_change_and_the_run_takes_the_new_code() -> None:
    wid = to_waiting_pickup()
    with deployed("deploy_shipping", wf.ShippingExtended):
        output, error = deploy_check()
        assert error is None
        assert "no in-flight execution" in output
        durable.send_event(wid, "picked_up", {"by": "ups"})
        run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.context["log"] == ["pack", "picked up v4", "deliver", "invoice"]


def test_deploy_check_accepts_a_mapped_rename() -> None:
    to_waiting_pickup()
    with deployed("deploy_shipping", wf.ShippingRenamed):
        assert deploy_check()[1] is None


def test_a_removed_step_parks_the_execution_instead_of_running_the_wrong_path() -> None:
    wid = to_waiting_pickup()
    with deployed("deploy_shipping", wf.ShippingWithoutPickup):
        durable.send_event(wid, "picked_up", {"by": "ups"})
        run_next()
        run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.NEEDS_ATTENTION
    assert execution.error["missing_steps"] == ["await_pickup"]
    assert "'await_pickup' no longer exists" in execution.error["message"]
    assert "deliver" not in [row.step for row in execution.steps.all()]
    (task,) = Task.objects.filter(execution=execution)
    assert task.status == TaskStatus.PARKED
    assert task.lease_token is None
    (row,) = attempts(wid, "await_pickup")
    assert row.status == StepStatus.WAITING
    assert not execution.is_finished


def test_a_parked_execution_resumes_once_the_rename_is_mapped() -> None:
    wid = to_waiting_pickup()
    with deployed("deploy_shipping", wf.ShippingWithoutPickup):
        durable.send_event(wid, "picked_up", {"by": "ups"})
        run_next()
        with pytest.raises(InvalidTransition, match="still needs attention"):
            durable.resume(wid)
    assert durable.get_execution(wid).status == ExecutionStatus.NEEDS_ATTENTION
    with deployed("deploy_shipping", wf.ShippingRenamed):
        durable.resume(wid)
        assert durable.get_execution(wid).status == ExecutionStatus.WAITING
        run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert execution.context["pickup"] == {"by": "ups"}
    # History follows the rename: the attempt that waited is now the renamed step's.
    assert [r.step for r in execution.steps.order_by("id")] == [
        "pack",
        "wait_for_courier",
        "deliver",
    ]


def test_a_worker_start_revives_parked_executions_whose_step_is_restored() -> None:
    wid = to_waiting_pickup()
    with deployed("deploy_shipping", wf.ShippingWithoutPickup):
        durable.send_event(wid, "picked_up", {"by": "ups"})
        run_next()
        assert deploys.revive_parked(using="default") == set()
    # The original code is back (the registry holds Shipping again): a worker starting
    # revives the execution.
    assert deploys.revive_parked(using="default") == {"default"}
    run_until_idle()
    assert durable.get_execution(wid).status == ExecutionStatus.COMPLETED


def test_a_renamed_ready_step_runs_under_its_new_name_without_parking() -> None:
    wid = to_waiting_pickup()
    durable.send_event(wid, "picked_up", {"by": "fedex"})
    with deployed("deploy_shipping", wf.ShippingRenamed):
        run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert execution.context["pickup"] == {"by": "fedex"}


def test_a_step_moved_out_of_its_parallel_parks_the_execution() -> None:
    wid = durable.start(wf.Fanned, {})
    run_until_idle()  # right completes; left waits for its event
    assert durable.get_execution(wid).status == ExecutionStatus.WAITING
    with deployed("deploy_fanned", wf.FannedRestructured):
        output, error = deploy_check()
        assert error is not None
        assert "position=left [both[0]]" in output
        durable.send_event(wid, "left_go", 1)
        run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.NEEDS_ATTENTION
    assert "was inside the fan-out(s) ['both']" in execution.error["message"]
    assert "after" not in execution.context


def test_cancel_ends_a_parked_execution() -> None:
    wid = to_waiting_pickup()
    with deployed("deploy_shipping", wf.ShippingWithoutPickup):
        durable.send_event(wid, "picked_up", {})
        run_next()
    durable.cancel(wid)
    assert WorkflowExecution.objects.get(workflow_id=wid).status == ExecutionStatus.CANCELLED
    assert not Task.objects.filter(execution__workflow_id=wid).exists()


def test_resume_refuses_data_for_a_parked_execution() -> None:
    wid = to_waiting_pickup()
    with deployed("deploy_shipping", wf.ShippingWithoutPickup):
        durable.send_event(wid, "picked_up", {})
        run_next()
        with pytest.raises(ValueError, match="without data"):
            durable.resume(wid, {"x": 1})
    assert durable.get_execution(wid).status == ExecutionStatus.NEEDS_ATTENTION


def test_renamed_steps_must_name_existing_steps() -> None:
    from durable import DefinitionError, Workflow, step

    with pytest.raises(DefinitionError, match="renamed to 'nope', which does not exist"):

        class Broken(Workflow):
            name = "deploy_broken_renames"
            renamed_steps = {"old": "nope"}

            @step
            def only(self, ctx): ...


def test_a_renamed_block_around_a_waiting_branch_is_mapped() -> None:
    wid = durable.start(wf.Fanned, {})
    run_until_idle()
    with deployed("deploy_fanned", wf.FannedRenamed):
        assert deploy_check()[1] is None
        durable.send_event(wid, "left_go", 7)
        run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert execution.context == {"left": 7, "right": True, "after": True}
    assert {r.scope_key for r in execution.steps.all()} == {"pair[0]", "pair[1]", ""}


def test_a_parallel_that_gained_a_branch_mid_run_parks_at_its_next_claim() -> None:
    wid = durable.start(wf.Fanned, {})
    run_until_idle()
    with deployed("deploy_fanned", wf.FannedWider):
        output, error = deploy_check()
        assert error is not None
        assert "parallel 'both' now has 3 branches; the run in flight started 2" in output
        durable.send_event(wid, "left_go", 1)
        run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.NEEDS_ATTENTION
    assert execution.error["missing_steps"] == ["both"]


def test_a_queued_compensation_whose_step_was_removed_parks_and_resumes_the_saga() -> None:
    wid = durable.start(wf.Trip, {})
    run_next()  # book_hotel
    run_next()  # pay fails: the saga queues cancel_hotel
    assert durable.get_execution(wid).status == ExecutionStatus.COMPENSATING
    with deployed("deploy_trip", wf.TripWithoutHotel):
        run_next()
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.NEEDS_ATTENTION
    assert execution.error["missing_steps"] == ["book_hotel"]
    assert execution.error["previous_status"] == ExecutionStatus.COMPENSATING
    durable.resume(wid)  # the original code is back
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.COMPENSATING
    assert execution.error["message"] == "payment refused"
    run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.COMPENSATED
    assert execution.error["message"] == "payment refused"


def test_parking_and_retrying_send_lifecycle_events(django_capture_on_commit_callbacks) -> None:
    from durable import signals

    seen: list[dict] = []

    def receiver(sender, event, **kwargs) -> None:
        seen.append(event)

    signals.workflow_needs_attention.connect(receiver)
    signals.workflow_retried.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            wid = to_waiting_pickup()
            with deployed("deploy_shipping", wf.ShippingWithoutPickup):
                durable.send_event(wid, "picked_up", {})
                run_next()
            durable.cancel(wid)
            durable.retry(wid, from_step="pack")
    finally:
        signals.workflow_needs_attention.disconnect(receiver)
        signals.workflow_retried.disconnect(receiver)
    assert [(e["event"], e["workflow_id"]) for e in seen] == [
        ("workflow_needs_attention", wid),
        ("workflow_retried", wid),
    ]
    assert seen[0]["missing_steps"] == ["await_pickup"]
    assert seen[1]["from_step"] == "pack"


def test_deploy_check_flags_executions_of_a_removed_workflow() -> None:
    from durable.dsl import registry

    wid = to_waiting_pickup()
    definition = registry.get("deploy_shipping")
    registry.unregister("deploy_shipping")
    try:
        output, error = deploy_check()
    finally:
        registry.register(definition)
    assert error is not None
    assert f"{wid}\twaiting\tposition=await_pickup\tmissing=deploy_shipping" in output
    assert "workflow 'deploy_shipping' no longer exists" in output
