"""Server-sent events for live pages: htmx's SSE extension swaps each event's HTML into the page.

A live page's stream re-reads its figures every `period_s` and sends a fragment only when it changed;
comment lines keep idle connections from being cut by proxies. Every stream runs inside `live_stream`,
which looks the session up again every period: once it is signed out (or gone), the stream sends a
last fragment marked `data-signed-out` (console.js then goes to /signin) and ends, so no token is used
after sign-out. A session has at most MAX_STREAMS_PER_SESSION streams open; another is refused (429).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from modelyard_console.gateway import Refusal
from modelyard_console.sessions import Session
from modelyard_console.web import console_of, fragment

KEEPALIVE_S = 15.0
MAX_STREAMS_PER_SESSION = 8
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def sse_event(name: str, html: str, event_id: str = "") -> str:
    """One event named `name` whose data is `html` (one `data:` line per line of it); with `event_id`,
    the browser sends that id back as Last-Event-ID when it reconnects."""
    lines = html.strip().splitlines() or [""]
    head = f"event: {name}\n" + (f"id: {event_id}\n" if event_id else "")
    return head + "".join(f"data: {line}\n" for line in lines) + "\n"


def event_stream(body: AsyncIterator[str]) -> StreamingResponse:
    """A text/event-stream response of `body`."""
    return StreamingResponse(body, media_type="text/event-stream", headers=STREAM_HEADERS)


async def polled_events(
    request: Request,
    name: str,
    read: Callable[[], Awaitable[str]],
    period_s: float,
    refused: Callable[[Refusal], str],
) -> AsyncGenerator[str, None]:
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


def live_stream(request: Request, session: Session, name: str, events: AsyncGenerator[str, None]) -> Response:
    """`events` as a stream for as long as `session` stays signed in; 429 past the session's cap."""
    if session.live_streams >= MAX_STREAMS_PER_SESSION:
        return PlainTextResponse(
            f"at most {MAX_STREAMS_PER_SESSION} live pages per session: close some and reload", 429
        )
    return event_stream(_while_signed_in(request, session, name, events))


async def _while_signed_in(
    request: Request, session: Session, name: str, events: AsyncGenerator[str, None]
) -> AsyncIterator[str]:
    console = console_of(request)
    period_s = console.settings.refresh_s
    if session.live_streams >= MAX_STREAMS_PER_SESSION:  # opened meanwhile by the same session
        return
    session.live_streams += 1
    pending: asyncio.Future[str] | None = None
    try:
        while True:
            pending = pending or asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=period_s)
            live = console.sessions.peek(session.session_id)
            if live is None or live.token is None:
                yield sse_event(name, fragment(request, "_signed_out.html"))
                return
            if done:
                finished, pending = pending, None
                try:
                    event = finished.result()
                except StopAsyncIteration:
                    return
                yield event
    finally:
        session.live_streams -= 1
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        await events.aclose()
