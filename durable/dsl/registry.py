"""Every workflow definition by name. Filled at class creation; read by the engine."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from durable.dsl.nodes import Definition
from durable.exceptions import WorkflowNotFound

_lock = threading.Lock()
_definitions: dict[str, Definition] = {}
# Problems found while importing workflow modules, reported by the system checks.
import_errors: list[str] = []
# Families of workflows made on demand from their name, by name prefix (durable.tasks makes
# one per django-tasks task): a worker meets the name before anything defined the class.
_resolvers: dict[str, Callable[[str], Definition]] = {}


def register(definition: Definition) -> str | None:
    """Register; return a problem when another class already owns the name."""
    cls = definition.workflow_class
    with _lock:
        existing = _definitions.get(definition.name)
        if existing is not None and not _same_class(existing.workflow_class, cls):
            other = existing.workflow_class
            return (
                f"the name {definition.name!r} is already used by "
                f"{other.__module__}.{other.__qualname__}"
            )
        _definitions[definition.name] = definition
    return None


def unregister(name: str) -> None:
    with _lock:
        _definitions.pop(name, None)


def _same_class(a: type[Any], b: type[Any]) -> bool:
    # A re-imported module (autoreload, a test run twice) defines the same class anew.
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def add_resolver(prefix: str, resolve: Callable[[str], Definition]) -> None:
    """`resolve(name)` makes (and registers) the definition of an unknown name that starts
    with `prefix`, or raises WorkflowNotFound."""
    with _lock:
        _resolvers[prefix] = resolve


def find(name: str) -> Definition | None:
    """The registered definition of `name`, without asking the resolvers."""
    return _definitions.get(name)


def get(name: str) -> Definition:
    try:
        return _definitions[name]
    except KeyError:
        for prefix, resolve in list(_resolvers.items()):
            if name.startswith(prefix):
                return resolve(name)
        known = ", ".join(sorted(_definitions)) or "none"
        raise WorkflowNotFound(f"no workflow named {name!r} (registered: {known})") from None


def triggered_by(event: str) -> list[Definition]:
    """The workflows whose `triggers` name `event`, by workflow name."""
    with _lock:
        found = [d for d in _definitions.values() if event in d.triggers]
    return sorted(found, key=lambda definition: definition.name)


def all_definitions() -> list[Definition]:
    with _lock:
        return list(_definitions.values())


def resolve(workflow: Any) -> Definition:
    """A Workflow subclass, a registered workflow name or a definition -> the definition."""
    if isinstance(workflow, Definition):
        return workflow
    if isinstance(workflow, str):
        return get(workflow)
    definition = getattr(workflow, "_definition", None) if isinstance(workflow, type) else None
    if isinstance(definition, Definition) and not getattr(workflow, "abstract", True):
        return definition
    raise TypeError(f"expected a Workflow subclass or a workflow name, got {workflow!r}")
