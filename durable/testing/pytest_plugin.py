"""Durable's pytest plugin (with pytest-django). Enable it in the top-level conftest.py:

    pytest_plugins = ["durable.testing.pytest_plugin"]

or with `-p durable.testing.pytest_plugin` (in `addopts`). It gives:

- `durable_inline`: run workflows in the test's thread, no worker (`durable.testing`'s
  inline helpers, with the `db` fixture);
- `durable_workers`: real `durable_worker` processes against the test database (with
  `transactional_db`, so they see what the test wrote), stopped after the test;
- `durable_clock`: move every pending timer forward (sleeps, wait timeouts, backoffs,
  `scheduled_at`, deadlines), for inline runs and workers alike;
- and, with no fixture to request: before pytest-django drops the test databases, the
  process's message bus and queue adapter are closed, so their LISTEN connections (the
  PostgreSQL bus, the PostgreSQL queue's wake-ups) no longer hold the database open.

Importing this module touches no Django code: pytest loads plugins before Django is set up.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from durable.models import WorkflowExecution
    from durable.testing.workers import WorkerProcesses


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: Any) -> Generator[None]:
    result = yield
    # Finalizers run last in, first out: this one runs before the test databases are
    # dropped, whichever django_db_setup (pytest-django's, or a project's own) made them.
    if fixturedef.argname == "django_db_setup":
        fixturedef.addfinalizer(release_connections)
    return result


def release_connections() -> None:
    """Close the process's bus and queue adapter (the next use builds them anew)."""
    from durable.bus import reset_bus
    from durable.engine.adapters import reset_queue_adapter

    reset_bus()
    reset_queue_adapter()


class Inline:
    """Run workflows in the test's thread: `durable_inline.run(Flow, {...})`."""

    def run(self, workflow: Any, input: dict[str, Any] | None = None, **options: Any) -> Any:
        """Start `workflow`, run it until nothing is ready, return its execution."""
        from durable.testing import run_workflow

        return run_workflow(workflow, input, **options)

    def run_until_idle(self, *, skip_delays: bool = True) -> int:
        """Run every ready step (retry backoffs skipped unless `skip_delays=False`)."""
        from durable.testing import run_until_idle

        return run_until_idle(skip_delays=skip_delays)

    def execution(self, workflow_id: str) -> WorkflowExecution:
        from durable.api import get_execution

        return get_execution(workflow_id)


class Clock:
    """`durable_clock.advance(hours=2)`: as if that much time had passed for every timer."""

    def advance(self, delta: timedelta | None = None, **units: float) -> int:
        """Move pending timers `delta` (or `timedelta(**units)`) closer; return how many
        tasks became due."""
        from durable.testing import advance_time

        if delta is None:
            delta = timedelta(**units)
        elif units:
            raise TypeError("pass a timedelta or units (hours=2), not both")
        return advance_time(delta)


@pytest.fixture
def durable_inline(db: None) -> Inline:
    return Inline()


@pytest.fixture
def durable_clock(db: None) -> Clock:
    return Clock()


@pytest.fixture
def durable_workers(
    transactional_db: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcesses]:
    """`durable_workers.start(count=1, queues=[...], concurrency=N)`; stopped after the test."""
    from durable.testing.workers import WorkerProcesses

    workers = WorkerProcesses(tmp_path_factory.mktemp("durable-workers"))
    try:
        yield workers
    finally:
        workers.stop_all()
