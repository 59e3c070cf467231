"""Where the router keeps the per-branch state of open fan-outs.

A fan-out's header (its block, the context snapshot, the parent token, counts) lives in
the execution's `fanouts`. What each branch did, and the items of a foreach still
waiting for their turn, live behind `Branches`: rows in the store
(durable.store.branches), a dict here for routing without a database. So a finishing
branch adds one record instead of rewriting every branch's, and a 100,000-item foreach
keeps a small header.
"""

from __future__ import annotations

from typing import Any, Protocol

from durable.flow.ops import Op

# Branches of a fan-out without concurrency= become ready this many at a time by default
# (the next starts as one finishes): a wide foreach keeps its header, its routing and its
# worker's memory bounded.
DEFAULT_WINDOW = 1_000


class Branches(Protocol):
    window: int

    def park(self, key: int, first: int, items: list[Any]) -> None:
        """Keep `items`, the items of fan-out `key` from index `first` on, for later."""

    def item(self, key: int, index: int) -> Any:
        """A parked item."""

    def finish(self, key: int, index: int, ops: list[Op]) -> None:
        """Branch `index` of fan-out `key` finished with `ops`."""

    def results(self, key: int, total: int) -> list[list[Op]]:
        """The ops of every branch of fan-out `key`, in branch order (all finished)."""

    def drop(self, key: int) -> None:
        """Forget fan-out `key` (it joined)."""


class MemoryBranches:
    """`Branches` in a dict: routing that writes nowhere (tests, previews)."""

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        self.window = window
        self.items: dict[tuple[int, int], Any] = {}
        self.done: dict[tuple[int, int], list[Op]] = {}

    def park(self, key: int, first: int, items: list[Any]) -> None:
        for offset, item in enumerate(items):
            self.items[key, first + offset] = item

    def item(self, key: int, index: int) -> Any:
        return self.items[key, index]

    def finish(self, key: int, index: int, ops: list[Op]) -> None:
        self.done[key, index] = ops

    def results(self, key: int, total: int) -> list[list[Op]]:
        return [self.done[key, index] for index in range(total)]

    def drop(self, key: int) -> None:
        for store in (self.items, self.done):
            for found in [k for k in store if k[0] == key]:
                del store[found]
