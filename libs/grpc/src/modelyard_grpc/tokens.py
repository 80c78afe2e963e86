"""A bearer token that a long-running process mints for itself again before it expires."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from modelyard_grpc.auth import mint_token

SERVICE_TOKEN_TTL_S = 3600.0
RENEW_AFTER_SHARE = 0.8  # share of a token's life after which a new one is minted


class RenewingToken:
    """A `TokenSource` for `channel(target, token)`: a process's own token, renewed before it expires.

    Guarantees: every call returns a token signed with `secret` for `subject`, `org_id` and `roles`;
    a token is returned only while less than `renew_after` of its `ttl_s` has passed on `clock`
    (by default 80 %: an hour-long token is replaced after 48 minutes), so a call made with it still
    has at least `(1 - renew_after) * ttl_s` seconds before the server would refuse it as expired.
    The first call mints; later calls mint only when the current token reaches its renewal point.
    Safe to call from grpc's credential threads and the event loop alike.
    """

    def __init__(
        self,
        secret: str,
        subject: str,
        roles: Sequence[str],
        *,
        org_id: str | None = None,
        ttl_s: float = SERVICE_TOKEN_TTL_S,
        renew_after: float = RENEW_AFTER_SHARE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"a renewing token needs a positive ttl_s, got {ttl_s}")
        if not 0 < renew_after < 1:
            raise ValueError(f"renew_after is a share of the token's life in (0, 1), got {renew_after}")
        self._secret, self._subject, self._org_id = secret, subject, org_id
        self._roles = [str(role) for role in roles]
        self._ttl_s, self._renew_after_s, self._clock = ttl_s, ttl_s * renew_after, clock
        self._token, self._renew_at = "", float("-inf")
        self._lock = threading.Lock()

    def __call__(self) -> str:
        """The current token; a freshly minted one once the last one reached its renewal point."""
        with self._lock:
            now = self._clock()
            if now >= self._renew_at:
                self._token = mint_token(self._secret, self._subject, self._org_id, self._roles, self._ttl_s)
                self._renew_at = now + self._renew_after_s
            return self._token
