"""Sessions kept in the console's memory: the browser holds only a random id in an HttpOnly cookie.

A session carries the signed-in person's token (sent as the bearer token on every gRPC call), its
claims, the CSRF token its forms must echo, and one notice to show on the next page. A session ends at
sign-out, when its token expires, or after `idle_s` without a request; a restart signs everyone out.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from modelyard_console.token_claims import SignedInUser

COOKIE_NAME = "modelyard_console_session"
DEFAULT_IDLE_S = 8 * 3600.0


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

    def sign_in(self, token: str, user: SignedInUser) -> None:
        """Hold `token` for this browser's calls."""
        self.token, self.user = token, user

    def take_notices(self) -> list[Notice]:
        """The notices to show once, removed from the session."""
        taken, self.notices = self.notices, []
        return taken


class SessionStore:
    """Every live session by id."""

    def __init__(self, idle_s: float = DEFAULT_IDLE_S, clock: Callable[[], float] = time.time) -> None:
        self._sessions: dict[str, Session] = {}
        self._idle_s, self._clock = idle_s, clock

    def new(self) -> Session:
        """A fresh, signed-out session with its own CSRF token."""
        self._forget_stale()
        now = self._clock()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now)
        self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (None when unknown, idle too long, or its token expired)."""
        session = self._sessions.get(session_id or "")
        now = self._clock()
        if session is None or self._stale(session, now):
            self.drop(session_id or "")
            return None
        session.last_seen_at = now
        return session

    def drop(self, session_id: str) -> None:
        """End a session (sign-out)."""
        self._sessions.pop(session_id, None)

    def _stale(self, session: Session, now: float) -> bool:
        expired = session.user is not None and session.user.expires_at <= now
        return expired or now - session.last_seen_at > self._idle_s

    def _forget_stale(self) -> None:
        now = self._clock()
        for session in list(self._sessions.values()):
            if self._stale(session, now):
                self.drop(session.session_id)
