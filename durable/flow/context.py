"""`ctx`: what a step reads and writes. Every write is validated and recorded as an op."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from durable.flow.ops import Op, apply_op, copy_json
from durable.serialization import normalize

_MISSING = object()

ProgressHook = Callable[[float, float | None], None]


class ReadOnlyContextError(TypeError):
    """Raised when routing code (`on=`, `items=`, `while_=`) tries to write the context."""


class Context:
    """The workflow's persistent state as seen by one step attempt."""

    def __init__(
        self,
        data: dict[str, Any],
        *,
        input: Any = None,
        workflow_id: str = "",
        current_step: str | None = None,
        attempt: int = 1,
        read_only: bool = False,
        progress_hook: ProgressHook | None = None,
    ) -> None:
        self._data = data
        self._read_only = read_only
        self._progress_hook = progress_hook
        self.ops: list[Op] = []
        self.input = input
        self.workflow_id = workflow_id
        self.current_step = current_step
        self.attempt = attempt

    # -- reading: values are copies, so mutating one in place cannot bypass the op log --

    def __getitem__(self, key: str) -> Any:
        return copy_json(self._data[key])

    def get(self, key: str, default: Any = None) -> Any:
        value = self._data.get(key, _MISSING)
        return default if value is _MISSING else copy_json(value)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    @property
    def data(self) -> dict[str, Any]:
        return copy_json(self._data)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<Context {self.workflow_id} step={self.current_step} keys={sorted(self._data)}>"

    # -- writing -------------------------------------------------------------------------

    def _record(self, op: Op) -> None:
        if self._read_only:
            raise ReadOnlyContextError(
                "the context is read-only here; write to it from a step, not from on=, items= "
                "or while_="
            )
        apply_op(self._data, op)
        self.ops.append(op)

    @staticmethod
    def _key(key: object) -> str:
        if not isinstance(key, str):
            raise TypeError(f"context keys must be strings, got {key!r}")
        return key

    def put(self, key: str | Mapping[str, Any], value: Any = _MISSING) -> None:
        """`put("k", v)` or `put({"k": v, ...})`."""
        if isinstance(key, Mapping) and value is _MISSING:
            for k, v in key.items():
                self.put(k, v)
            return
        if value is _MISSING:
            raise TypeError("put() takes a key and a value, or one dict")
        key = self._key(key)
        self._record(["put", key, normalize(value, f"context[{key!r}]")])

    def __setitem__(self, key: str, value: Any) -> None:
        self.put(key, value)

    def update(self, key: str, fn: Callable[[Any], Any]) -> None:
        """Replace `key` with `fn(current)` (current is None when absent)."""
        self.put(key, fn(self.get(key)))

    def merge(self, values: Mapping[str, Any]) -> None:
        self.put(values)

    def delete(self, key: str) -> None:
        self._record(["delete", self._key(key)])

    def init_accumulator(self, key: str, initial: Any = None) -> None:
        """Set `key` to `initial` unless it exists, so a re-run or a sibling branch keeps values."""
        key = self._key(key)
        value = [] if initial is None else initial
        self._record(["init", key, normalize(value, f"context[{key!r}]")])

    def append(self, key: str, value: Any) -> None:
        key = self._key(key)
        self._record(["append", key, normalize(value, f"context[{key!r}]")])

    def increment(self, key: str, amount: int | float = 1) -> None:
        key = self._key(key)
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise TypeError(f"increment amount must be a number, got {amount!r}")
        self._record(["increment", key, normalize(amount, f"context[{key!r}]")])

    # -- facts and reporting -------------------------------------------------------------

    def progress(self, done: float, total: float | None = None) -> None:
        """Report progress of a long step; shown live in the dashboard."""
        if self._progress_hook is not None:
            self._progress_hook(done, total)
