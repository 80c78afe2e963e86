"""Where a long-running process gets its bearer token: from a file the issuer keeps fresh, or, for
the issuer itself (the dev platform, the operators' CLI), minted again before it expires."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from modelyard_grpc.auth import SERVICES, TokenIssuer, mint_token

SERVICE_TOKEN_TTL_S = 3600.0
RENEW_AFTER_SHARE = 0.8  # share of a token's life after which a new one is minted


class RenewingToken:
    """A `TokenSource` for `channel(target, token)`: a process's own token, renewed before it expires.

    Guarantees: every call returns a token signed by `issuer` for `subject`, `org_id` and `roles`;
    a token is returned only while less than `renew_after` of its `ttl_s` has passed on `clock`
    (by default 80 %: an hour-long token is replaced after 48 minutes), so a call made with it still
    has at least `(1 - renew_after) * ttl_s` seconds before the server would refuse it as expired.
    The first call mints; later calls mint only when the current token reaches its renewal point.
    Safe to call from grpc's credential threads and the event loop alike.
    """

    def __init__(
        self,
        issuer: TokenIssuer,
        subject: str,
        roles: Sequence[str],
        *,
        org_id: str | None = None,
        audience: Sequence[str] = SERVICES,
        ttl_s: float = SERVICE_TOKEN_TTL_S,
        renew_after: float = RENEW_AFTER_SHARE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"a renewing token needs a positive ttl_s, got {ttl_s}")
        if not 0 < renew_after < 1:
            raise ValueError(f"renew_after is a share of the token's life in (0, 1), got {renew_after}")
        self._issuer, self._subject, self._org_id, self._audience = issuer, subject, org_id, audience
        self._roles = [str(role) for role in roles]
        self._ttl_s, self._renew_after_s, self._clock = ttl_s, ttl_s * renew_after, clock
        self._token, self._renew_at = "", float("-inf")
        self._lock = threading.Lock()

    def __call__(self) -> str:
        """The current token; a freshly minted one once the last one reached its renewal point."""
        with self._lock:
            now = self._clock()
            if now >= self._renew_at:
                self._token = mint_token(
                    self._issuer, self._subject, self._org_id, self._roles, self._ttl_s, self._audience
                )
                self._renew_at = now + self._renew_after_s
            return self._token


class FileToken:
    """A `TokenSource` reading a process's token from a file that its issuer renews.

    Services and trainer workers hold no signing key: the issuer (an operator's job, the dev
    platform) writes each one a token for its own identity, and replaces the file before the token
    expires (a Kubernetes Secret volume is updated in place). The file is read again whenever it
    changed; an empty or missing file is a clear error naming it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._token = ""
        self._lock = threading.Lock()

    def __call__(self) -> str:
        """The token the file holds now."""
        with self._lock:
            try:
                stat = self.path.stat()
                if (stat.st_mtime_ns, stat.st_size) != self._seen:
                    self._token = self.path.read_text().strip()
                    self._seen = (stat.st_mtime_ns, stat.st_size)
            except OSError as error:
                raise RuntimeError(f"cannot read this process's token from {self.path}: {error}") from error
            if not self._token:
                raise RuntimeError(f"the token file {self.path} is empty (MODELYARD_TOKEN_FILE)")
            return self._token
