"""Server-sent events for live pages: htmx's SSE extension swaps each event's HTML into the page.

A live page's stream re-reads its figures every `period_s` over one gRPC channel and sends a fragment
only when it changed; comment lines keep idle connections from being cut by proxies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import StreamingResponse

from modelyard_console.gateway import Refusal

KEEPALIVE_S = 15.0
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def sse_event(name: str, html: str) -> str:
    """One event named `name` whose data is `html` (one `data:` line per line of it)."""
    lines = html.strip().splitlines() or [""]
    return f"event: {name}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


def event_stream(body: AsyncIterator[str]) -> StreamingResponse:
    """A text/event-stream response of `body`."""
    return StreamingResponse(body, media_type="text/event-stream", headers=STREAM_HEADERS)


async def polled_events(
    request: Request,
    name: str,
    read: Callable[[], Awaitable[str]],
    period_s: float,
    refused: Callable[[Refusal], str],
) -> AsyncIterator[str]:
    """Events of `read()`'s HTML every `period_s` while it changes, until the browser leaves.

    A refused read sends `refused(refusal)` instead and goes on (a service restarting comes back).
    """
    last, idle_s = None, 0.0
    while not await request.is_disconnected():
        try:
            html = await read()
        except Refusal as refusal:
            html = refused(refusal)
        if html != last:
            last, idle_s = html, 0.0
            yield sse_event(name, html)
        elif idle_s >= KEEPALIVE_S:
            idle_s = 0.0
            yield ": keepalive\n\n"
        await asyncio.sleep(period_s)
        idle_s += period_s
