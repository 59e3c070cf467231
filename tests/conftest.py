"""Shared fixtures. The database is SQLite unless DATABASE_URL points at PostgreSQL.

`durable.testing.pytest_plugin` (loaded by pyproject's addopts) closes the process's bus
and queue adapter before pytest-django drops the test database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.workers import WorkerPool


@pytest.fixture
def workers(
    transactional_db: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerPool]:
    """Start real `manage.py durable_worker` processes against the test database.

    def test_x(workers):
        workers.start(count=2, lease_seconds=2)
    """
    pool = WorkerPool(tmp_path_factory.mktemp("workers"))
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture(autouse=True)
def _fresh_durable_settings() -> Iterator[None]:
    """Tests that delete settings.DURABLE by hand must not leak a stale cache."""
    yield
    from durable.conf import durable_settings

    durable_settings.reload()
