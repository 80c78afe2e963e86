"""An event loop on a thread of its own, for the tests' in-process servers: the CLI runs its own loop
with asyncio.run in the test's thread, so a grpc.aio or aiohttp server cannot share that one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
START_TIMEOUT_S = 10.0


@contextmanager
def loop_thread(name: str) -> Iterator[asyncio.AbstractEventLoop]:
    """A running event loop on a daemon thread named `name`, stopped and closed at the end."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=START_TIMEOUT_S)
        loop.close()


def run_on(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, T]) -> T:
    """Run `work` on `loop` (another thread's) and return its result."""
    return asyncio.run_coroutine_threadsafe(work, loop).result(timeout=START_TIMEOUT_S)
