"""What a deploy changes inside steps: a hash of each step's source and its patch ids.

The structural fingerprint (durable.dsl.fingerprint) leaves step bodies out: changing one
strands nothing. But a run in flight that reaches a changed step takes the new code, and
a step re-run after a wait replays its code up to the wait. `ctx.patched("id")` lets a
change tell the runs apart; this module finds changes that do not (no patch id new to the
step), for `durable_deploy_check`.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import textwrap
from typing import Any

from durable.dsl.nodes import Definition

# `ctx.patched("id")` with a literal id, however the context is named.
_PATCHED = re.compile(r"""\.patched\(\s*(?P<quote>["'])(?P<id>[^"'\\]+)(?P=quote)""")


def step_code(definition: Definition) -> dict[str, dict[str, Any]]:
    """Per step: `{"hash": ..., "patches": [ids]}` of its method's source as it is now."""
    code: dict[str, dict[str, Any]] = {}
    for step in definition.steps():
        method = getattr(definition.workflow_class, step.method, None)
        try:
            source = textwrap.dedent(inspect.getsource(method))  # type: ignore[arg-type]
        except (OSError, TypeError):
            continue  # no source to compare (built dynamically): nothing can be said
        code[step.name] = {
            "hash": hashlib.sha256(source.encode()).hexdigest()[:32],
            "patches": sorted({m.group("id") for m in _PATCHED.finditer(source)}),
        }
    return code


def unpatched_changes(
    recorded: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]
) -> list[str]:
    """Steps whose source changed from `recorded` to `current` without a patch id the
    recorded source did not have."""
    changed = []
    for name, now in current.items():
        before = recorded.get(name)
        if before is None or before.get("hash") == now["hash"]:
            continue
        if not set(now["patches"]) - set(before.get("patches", [])):
            changed.append(name)
    return changed
