"""For tests: serve a fake servicer on a free local port (no auth, no interceptors)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from grpc import aio


@asynccontextmanager
async def serving_fake(add_to_server: Callable[[Any, aio.Server], None], servicer: Any) -> AsyncIterator[str]:
    """Serve `servicer` (added with the generated `add_…_to_server`) on 127.0.0.1; yield its target."""
    server = aio.server()
    add_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)
