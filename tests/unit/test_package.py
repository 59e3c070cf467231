from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import durable
from durable import DefinitionError
from durable.serialization import NotJSONError

ROOT = Path(__file__).resolve().parents[2]


def test_import_durable_works_without_django_settings() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "import durable\n"
        "from durable import Workflow, step, decision, on_decision, when_result, parallel\n"
        "from django.conf import settings\n"
        "assert not settings.configured\n"
        "class Hello(Workflow):\n"
        "    @step\n"
        "    def greet(self, ctx):\n"
        "        ctx.put('greeting', 'hi')\n"
        "assert Hello.definition().name == 'hello'\n"
        "assert 'greet' in [n['id'] for n in durable.graph.generate(Hello)['nodes']]\n"
        "assert not settings.configured\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_public_names_are_pinned() -> None:
    assert sorted(durable.__all__) == [
        "ChildWorkflowFailed",
        "DefinitionError",
        "DurableError",
        "ExecutionNotFound",
        "InvalidTransition",
        "NonRetryable",
        "PendingInputNotFound",
        "Retry",
        "StepCancelled",
        "StepTimeout",
        "WaitTimeout",
        "Workflow",
        "WorkflowFailed",
        "WorkflowNotFound",
        "WorkflowTimeout",
        "aget_execution",
        "aget_result",
        "aprovide_input",
        "asend_event",
        "astart",
        "astart_many",
        "cancel",
        "case_match",
        "decision",
        "default",
        "find_executions",
        "foreach",
        "fork",
        "get_execution",
        "get_execution_logs",
        "get_metrics",
        "get_result",
        "get_step_logs",
        "graph",
        "list_executions",
        "loop",
        "on_decision",
        "parallel",
        "provide_input",
        "publish",
        "resume",
        "retry",
        "send_event",
        "start",
        "start_many",
        "step",
        "stream_logs",
        "switch",
        "when_result",
    ]


def test_every_public_name_resolves() -> None:
    missing = [name for name in durable.__all__ if not hasattr(durable, name)]
    assert missing == []


def test_unknown_attribute_raises_attribute_error() -> None:
    assert not hasattr(durable, "no_such_thing")


def test_definition_error_survives_pickling_with_its_problems() -> None:
    error = DefinitionError("flow", ["step 'a': bad", "step 'b': worse"])
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.workflow, copy.problems, str(copy)) == (error.workflow, error.problems, str(error))


def test_not_json_error_survives_pickling_with_its_path() -> None:
    error = NotJSONError("context['k']", "a set is not JSON")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.problem, str(copy)) == ("context['k']", "a set is not JSON", str(error))


def test_workflow_failed_survives_pickling_with_its_status_and_error() -> None:
    error = durable.WorkflowFailed("w-1", "failed", {"type": "ValueError", "message": "nope"})
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.workflow_id, copy.status, copy.error, str(copy)) == (
        "w-1",
        "failed",
        {"type": "ValueError", "message": "nope"},
        "execution w-1 ended failed: ValueError: nope",
    )


def test_non_retryable_wraps_the_original_error() -> None:
    cause = ValueError("card declined")
    error = durable.NonRetryable(cause)
    assert error.error is cause
    assert str(error) == "card declined"
    assert str(durable.NonRetryable()) == "non-retryable failure"
