"""Every example and test workflow the graph tests draw."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from durable import Workflow
from testproject.demo import workflows as demo
from tests.e2e import workflows as e2e
from tests.graph import workflows as graph_workflows
from tests.integration import workflows as integration


def workflows_of(*modules: ModuleType) -> list[type[Any]]:
    return [
        cls
        for module in modules
        for cls in vars(module).values()
        if isinstance(cls, type)
        and issubclass(cls, Workflow)
        and cls.__module__ == module.__name__
        and not cls.abstract
    ]


DEMO = workflows_of(demo)
ALL = workflows_of(demo, e2e, integration, graph_workflows)
