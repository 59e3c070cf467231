"""The workflows of these tests are registered before any test runs (publish finds
workflows by their triggers among the registered ones)."""

from __future__ import annotations

import tests.semantics_api.workflows  # noqa: F401
