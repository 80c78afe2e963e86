"""Live pages' event streams use a session's token only while it is signed in: after sign-out each
stream sends a last part saying so and ends; a session may hold only so many streams at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from console_fakes import FakeGateway, a_job, token_for

from modelyard_console.app import build_app
from modelyard_console.live import MAX_STREAMS_PER_SESSION
from modelyard_console.sessions import COOKIE_NAME, Session, SessionStore
from modelyard_console.settings import ConsoleSettings
from modelyard_console.token_claims import user_of

PERIOD_S = 0.02


def _console(gateway: FakeGateway) -> tuple[Any, SessionStore, Session]:
    app = build_app(ConsoleSettings(refresh_s=PERIOD_S), gateway=gateway)  # type: ignore[arg-type]
    sessions: SessionStore = app.state.console.sessions
    token = token_for()
    return app, sessions, sessions.new_signed_in(token, user_of(token))


async def _stream(app: Any, session: Session, path: str, on_first_event: Callable[[], None]) -> list[str]:
    """GET `path` as the session's browser until the response ends (5 s at most): its status and body."""
    received: list[str] = []

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()  # the browser stays
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            received.append(str(message["status"]))
        elif message.get("body"):
            received.append(message["body"].decode())
            if len(received) == 2:
                on_first_event()

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"cookie", f"{COOKIE_NAME}={session.session_id}".encode())],
        "client": ("127.0.0.1", 4000), "server": ("testserver", 80),
    }  # fmt: skip
    with anyio.fail_after(5):
        await app(scope, receive, send)
    return received


@pytest.mark.parametrize(
    ("path", "event"), [("/live/dashboard", "dashboard"), ("/live/fleet", "fleet"), ("/live/jobs/j-1", "job")]
)
def test_a_live_stream_ends_after_its_session_signs_out(gateway: FakeGateway, path: str, event: str) -> None:
    gateway.service.jobs["j-1"] = a_job("j-1")
    app, sessions, session = _console(gateway)
    received = anyio.run(_stream, app, session, path, lambda: sessions.drop(session.session_id))
    assert received[0] == "200"
    assert received[-1].startswith(f"event: {event}\n")
    assert 'data-signed-out="true"' in received[-1]
    assert session.live_streams == 0


def test_no_read_is_made_with_the_token_after_sign_out(gateway: FakeGateway) -> None:
    app, sessions, session = _console(gateway)
    reads_at_sign_out: list[int] = []

    def sign_out() -> None:
        sessions.drop(session.session_id)
        reads_at_sign_out.append(len(gateway.service.tokens))

    anyio.run(_stream, app, session, "/live/dashboard", sign_out)
    assert len(gateway.service.tokens) <= reads_at_sign_out[0] + 1  # at most the read under way


def test_a_session_past_its_stream_cap_is_refused_with_429(gateway: FakeGateway) -> None:
    app, _, session = _console(gateway)
    session.live_streams = MAX_STREAMS_PER_SESSION
    received = anyio.run(_stream, app, session, "/live/dashboard", lambda: None)
    assert received[0] == "429"
    assert f"at most {MAX_STREAMS_PER_SESSION} live pages" in received[1]
