"""One event loop thread per process for `async def` steps.

Worker threads submit coroutines to it and wait for the result, so async steps share a
loop (and can overlap their I/O) while sync steps keep their threads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _event_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="durable-async", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def run_coroutine(coroutine: Coroutine[Any, Any, Any], timeout: float | None) -> Any:
    """Run `coroutine` on the shared loop; cancel it and raise TimeoutError after `timeout`."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coroutine, timeout)

    return asyncio.run_coroutine_threadsafe(bounded(), _event_loop()).result()
