"""The session store stays bounded however many signed-out sessions are asked for, and forgets a
signed-out session soon."""

from __future__ import annotations

from console_fakes import token_for
from starlette.testclient import TestClient

from modelyard_console.sessions import DEFAULT_ANONYMOUS_IDLE_S, SessionStore
from modelyard_console.token_claims import user_of


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_many_anonymous_sessions_leave_the_store_at_its_cap() -> None:
    store = SessionStore(max_sessions=50)
    for _ in range(500):
        store.new()
    assert len(store) == 50


def test_a_full_store_evicts_signed_out_sessions_before_signed_in_ones() -> None:
    store = SessionStore(max_sessions=10)
    token = token_for()
    kept = store.new_signed_in(token, user_of(token))
    for _ in range(100):
        store.new()
    assert store.get(kept.session_id) is kept


def test_a_store_full_of_signed_in_sessions_evicts_the_least_recently_used() -> None:
    store = SessionStore(max_sessions=3)
    token = token_for()
    first, second, third = (store.new_signed_in(token, user_of(token)) for _ in range(3))
    store.get(first.session_id)  # used: second is now the oldest
    store.new()
    assert store.get(second.session_id) is None
    assert store.get(first.session_id) is first
    assert store.get(third.session_id) is third


def test_a_signed_out_session_expires_after_its_short_idle_time() -> None:
    clock = Clock()
    store = SessionStore(clock=clock)
    anonymous = store.new()
    token = token_for()
    signed_in = store.new_signed_in(token, user_of(token))
    clock.now += DEFAULT_ANONYMOUS_IDLE_S + 1
    assert store.get(anonymous.session_id) is None
    assert store.get(signed_in.session_id) is signed_in


def test_stale_sessions_are_swept_when_new_ones_are_made() -> None:
    clock = Clock()
    store = SessionStore(clock=clock)
    for _ in range(10):
        store.new()
    clock.now += DEFAULT_ANONYMOUS_IDLE_S + 1
    store.new()
    assert len(store) == 1


def test_many_signin_pages_without_a_cookie_leave_the_store_bounded(browser: TestClient) -> None:
    sessions: SessionStore = browser.app.state.console.sessions  # type: ignore[attr-defined]
    sessions._max_sessions = 20
    for _ in range(60):
        browser.cookies.clear()
        browser.get("/signin")
    assert len(sessions) == 20
