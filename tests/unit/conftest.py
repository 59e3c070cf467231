"""Unit tests: pure Python, no database. Workflows defined in a test are forgotten after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from durable.dsl import registry


@pytest.fixture(autouse=True)
def _isolated_registry() -> Iterator[None]:
    """Classes defined inside tests share names ("flow"); each test starts from the same set."""
    saved = dict(registry._definitions)
    yield
    with registry._lock:
        registry._definitions.clear()
        registry._definitions.update(saved)
