"""Data migrations: rows of the first format are moved to what the code reads now."""

from __future__ import annotations

from importlib import import_module
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection

from durable.models import FanoutBranch, WorkflowExecution

pytestmark = pytest.mark.django_db

core_v2 = import_module("durable.migrations.0002_core_v2")


def test_open_fanouts_of_the_first_format_move_to_branch_rows() -> None:
    execution = WorkflowExecution.objects.create(
        workflow_name="old",
        fanouts={
            "items": {
                "block": "items",
                "base": {"k": 1},
                "parent": {"node": "items"},
                "total": 4,
                "started": 3,
                "limit": 3,
                "done": {"0": [["append", "out", 0]], "2": [["append", "out", 2]]},
                "items": [10, 11, 12, 13],
            }
        },
    )

    core_v2.branches_to_rows(apps, SimpleNamespace(connection=connection))

    execution.refresh_from_db()
    record = execution.fanouts["items"]
    assert "items" not in record
    assert (record["done"], record["total"], record["started"], record["limit"]) == (2, 4, 3, 3)
    rows = FanoutBranch.objects.filter(execution=execution, fanout=record["key"])
    assert sorted((r.index, r.item, r.ops) for r in rows) == [
        (0, None, [["append", "out", 0]]),
        (2, None, [["append", "out", 2]]),
        (3, 13, None),  # not started yet: parked
    ]
    # Run twice (a re-applied migration), nothing moves again.
    core_v2.branches_to_rows(apps, SimpleNamespace(connection=connection))
    assert FanoutBranch.objects.filter(execution=execution).count() == 3
