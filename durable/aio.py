"""Async twins of the public API, for async views and consumers.

Each runs its sync original through `sync_to_async` (thread-sensitive, as Django's ORM
wants), so arguments, validation and errors are exactly the original's:

    wid = await durable.astart(ProcessOrder, {"order_id": 1})
    result = await durable.aget_result(wid, timeout=30)   # durable.results: no thread held
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async

from durable import api

P = ParamSpec("P")
R = TypeVar("R")


def _twin(function: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    async def twin(*args: P.args, **kwargs: P.kwargs) -> R:
        return await sync_to_async(function, thread_sensitive=True)(*args, **kwargs)

    twin.__name__ = twin.__qualname__ = f"a{function.__name__}"
    twin.__doc__ = f"The async twin of `durable.{function.__name__}`.\n\n{function.__doc__ or ''}"
    twin.__module__ = __name__
    return twin


astart = _twin(api.start)
astart_many = _twin(api.start_many)
aget_execution = _twin(api.get_execution)
asend_event = _twin(api.send_event)
aprovide_input = _twin(api.provide_input)
