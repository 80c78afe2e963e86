"""Sessions kept in the console's memory: the browser holds only a random id in an HttpOnly cookie.

A session carries the signed-in person's token (sent as the bearer token on every gRPC call), its
claims, the CSRF token its forms must echo, and one notice to show on the next page. A session ends at
sign-out, when its token expires, or after `idle_s` without a request (10 minutes while signed out); a
restart signs everyone out.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from modelyard_console.token_claims import SignedInUser

COOKIE_NAME = "modelyard_console_session"
DEFAULT_IDLE_S = 8 * 3600.0
DEFAULT_ANONYMOUS_IDLE_S = 600.0  # a signed-out session: long enough to paste a token
DEFAULT_MAX_SESSIONS = 10_000
SWEEP_BATCH = 64  # stale sessions forgotten per new one, at most


@dataclass(frozen=True, slots=True)
class Notice:
    """A line for the next page: what an action did, or why a service refused it."""

    kind: str  # "done" or "refused"
    text: str
    status: str = ""  # the gRPC status of a refusal (PERMISSION_DENIED …)
    advice: str = ""  # what such a refusal usually means, for a person


@dataclass
class Session:
    """One browser's session."""

    session_id: str
    csrf_token: str
    last_seen_at: float
    token: str | None = None
    user: SignedInUser | None = None
    notices: list[Notice] = field(default_factory=list)
    live_streams: int = 0  # event streams open now (capped per session)

    def sign_in(self, token: str, user: SignedInUser) -> None:
        """Hold `token` for this browser's calls."""
        self.token, self.user = token, user

    def take_notices(self) -> list[Notice]:
        """The notices to show once, removed from the session."""
        taken, self.notices = self.notices, []
        return taken


class SessionStore:
    """Every live session by id, bounded: at most `max_sessions`, signed-out ones idle `anonymous_idle_s`.

    Anyone can open /signin, so signed-out sessions are cheap to make and must be cheap to forget: they
    live 10 minutes without a request, and when the store is full the least recently used signed-out
    session makes room. When only signed-in sessions remain, the least recently used of those goes
    (its person signs in again) rather than refusing the new one: the console stays usable, and memory
    stays bounded. Each kind is kept in last-use order, so expired sessions are swept from the front a
    few at a time, never by scanning the whole store.
    """

    def __init__(
        self,
        idle_s: float = DEFAULT_IDLE_S,
        clock: Callable[[], float] = time.time,
        anonymous_idle_s: float = DEFAULT_ANONYMOUS_IDLE_S,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ) -> None:
        self._anonymous: OrderedDict[str, Session] = OrderedDict()
        self._signed_in: OrderedDict[str, Session] = OrderedDict()
        self._idle_s, self._anonymous_idle_s, self._clock = idle_s, anonymous_idle_s, clock
        self._max_sessions = max_sessions

    def __len__(self) -> int:
        return len(self._anonymous) + len(self._signed_in)

    def new(self) -> Session:
        """A fresh, signed-out session with its own CSRF token."""
        now = self._clock()
        self._sweep(now)
        self._make_room()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now)
        self._anonymous[session.session_id] = session
        return session

    def new_signed_in(self, token: str, user: SignedInUser) -> Session:
        """A fresh session holding `token` (sign-in gives a new id)."""
        session = self.new()
        session.sign_in(token, user)
        self._anonymous.pop(session.session_id)
        self._signed_in[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (None when unknown, idle too long, or its token expired)."""
        session = self.peek(session_id)
        if session is None:
            return None
        session.last_seen_at = self._clock()
        self._kind_of(session).move_to_end(session.session_id)
        return session

    def peek(self, session_id: str | None) -> Session | None:
        """The live session with this id, without counting this as a use (a live stream's check)."""
        key = session_id or ""
        session = self._anonymous.get(key) or self._signed_in.get(key)
        if session is not None and self._stale(session, self._clock()):
            self.drop(key)
            return None
        return session

    def drop(self, session_id: str) -> None:
        """End a session (sign-out)."""
        self._anonymous.pop(session_id, None)
        self._signed_in.pop(session_id, None)

    def _kind_of(self, session: Session) -> OrderedDict[str, Session]:
        return self._signed_in if session.session_id in self._signed_in else self._anonymous

    def _stale(self, session: Session, now: float) -> bool:
        expired = session.user is not None and session.user.expires_at <= now
        idle_s = self._anonymous_idle_s if session.user is None else self._idle_s
        return expired or now - session.last_seen_at > idle_s

    def _sweep(self, now: float) -> None:
        # Oldest first in each kind, so the sweep stops at the first live one (a token expiring early
        # behind it is caught by get()).
        for sessions in (self._anonymous, self._signed_in):
            for _ in range(SWEEP_BATCH):
                oldest = next(iter(sessions.values()), None)
                if oldest is None or not self._stale(oldest, now):
                    break
                sessions.popitem(last=False)

    def _make_room(self) -> None:
        while len(self) >= self._max_sessions:
            (self._anonymous or self._signed_in).popitem(last=False)
