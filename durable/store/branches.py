"""The branches of open fan-outs, in FanoutBranch rows (see durable.flow.branches).

`StoredBranches` is what the router of one execution writes to and reads from during one
transaction. Its writes wait for `flush`, so a checkpoint writes the branches of all its
outcomes with one statement per kind; its reads see those writes. Parked items never
change, so a worker keeps the chunks it read (`_chunks`): a foreach with concurrency=5
over 10,000 items reads its items 1,000 at a time, not one query per item.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from durable.conf import durable_settings
from durable.flow.branches import DEFAULT_WINDOW
from durable.flow.ops import Op
from durable.models import FanoutBranch
from durable.store.backend import backend

CHUNK = 1_000
_MAX_CHUNKS = 64
_chunks: OrderedDict[tuple[str, int, int, int], dict[int, Any]] = OrderedDict()
_chunks_lock = threading.Lock()


def window() -> int:
    configured = durable_settings.FANOUT_WINDOW
    return int(configured) if configured else DEFAULT_WINDOW


class StoredBranches:
    def __init__(self, execution_pk: int, using: str, *, unsaved: bool = False) -> None:
        """`unsaved`: for an execution being started (durable.store.starts), which has no
        rows yet to read; `execution_pk` and `using` are set before `flush`."""
        self.execution_pk = execution_pk
        self.using = using
        self.unsaved = unsaved
        self.window = window()
        self._parked: dict[tuple[int, int], Any] = {}
        self._finished: dict[tuple[int, int], list[Op]] = {}
        self._dropped: set[int] = set()

    @property
    def pending(self) -> bool:
        """Whether there are writes for `flush`."""
        return bool(self._parked or self._finished or self._dropped)

    def park(self, key: int, first: int, items: list[Any]) -> None:
        for offset, item in enumerate(items):
            self._parked[key, first + offset] = item

    def item(self, key: int, index: int) -> Any:
        if (key, index) in self._parked:
            return self._parked[key, index]
        start = index - index % CHUNK
        cache_key = (self.using, self.execution_pk, key, start)
        with _chunks_lock:
            chunk = _chunks.get(cache_key)
            if chunk is not None:
                _chunks.move_to_end(cache_key)
        if chunk is None:
            rows = (
                FanoutBranch.objects.using(self.using)
                .filter(
                    execution_id=self.execution_pk,
                    fanout=key,
                    index__gte=start,
                    index__lt=start + CHUNK,
                )
                .order_by("index")
                .values_list("index", "item")
            )
            chunk = dict(rows)
            with _chunks_lock:
                _chunks[cache_key] = chunk
                while len(_chunks) > _MAX_CHUNKS:
                    _chunks.popitem(last=False)
        return chunk[index]

    def finish(self, key: int, index: int, ops: list[Op]) -> None:
        self._finished[key, index] = ops

    def results(self, key: int, total: int) -> list[list[Op]]:
        found: dict[int, list[Op]] = {}
        if not self.unsaved:
            rows = (
                FanoutBranch.objects.using(self.using)
                .filter(execution_id=self.execution_pk, fanout=key, ops__isnull=False)
                .values_list("index", "ops")
            )
            found = {index: list(ops or []) for index, ops in rows}
        found.update({index: ops for (k, index), ops in self._finished.items() if k == key})
        if len(found) != total:
            missing = sorted(set(range(total)) - set(found))[:5]
            raise RuntimeError(f"fan-out {key}: branches {missing} did not record their ends")
        return [found[index] for index in range(total)]

    def drop(self, key: int) -> None:
        self._dropped.add(key)
        for pending in (self._parked, self._finished):
            for gone in [k for k in pending if k[0] == key]:
                del pending[gone]

    def flush(self) -> None:
        """Write what the router did (inside the caller's transaction)."""
        db = backend(self.using)
        pk = self.execution_pk
        rows = [
            (pk, key, index, self._parked.get((key, index)), self._finished.get((key, index)))
            for key, index in {**self._parked, **self._finished}
        ]
        if rows:
            db.write_branches(rows)
        if self._dropped:
            db.drop_branches(self.execution_pk, sorted(self._dropped))
        self._parked.clear()
        self._finished.clear()
        self._dropped.clear()
