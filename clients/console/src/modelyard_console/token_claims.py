"""Who a pasted bearer token names: its subject, organization, roles and expiry, read without verifying.

The console never checks the signature: it holds no key, and the services verify every call anyway. It
only reads the claims to show who is signed in and to refuse, at sign-in, text that is no token at all
or one that has already expired.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

_MAX_TOKEN_CHARS = 8192


class MalformedToken(Exception):
    """Text that is not a usable bearer token; the message says why, for the person who pasted it."""


@dataclass(frozen=True, slots=True)
class SignedInUser:
    """The claims of a signed-in person's token."""

    subject: str
    org_id: str | None
    roles: tuple[str, ...]
    expires_at: float  # seconds since the epoch

    @property
    def roles_text(self) -> str:
        """The roles for a person to read: `super_admin, auditor`, or `no roles`."""
        return ", ".join(self.roles) or "no roles"


def user_of(pasted: str, now: float | None = None) -> SignedInUser:
    """The claims of `pasted` (a token, or `Bearer <token>`); MalformedToken when it is none or expired."""
    token = pasted.strip().removeprefix("Bearer ").strip()
    if not token or len(token) > _MAX_TOKEN_CHARS:
        raise MalformedToken("paste the token yard uses (MODELYARD_TOKEN): three dot-separated parts")
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise MalformedToken(f"this is not a Modelyard token ({error})") from error
    user = _user_from(claims)
    if user.expires_at <= (time.time() if now is None else now):
        raise MalformedToken("this token has expired: ask for a new one (`yard token mint`)")
    return user


def _user_from(claims: dict[str, Any]) -> SignedInUser:
    subject, org_id, roles, expires_at = (claims.get(k) for k in ("sub", "org", "roles", "exp"))
    if not isinstance(subject, str) or not subject:
        raise MalformedToken("the token names no subject (claim `sub`)")
    if org_id is not None and not isinstance(org_id, str):
        raise MalformedToken("the token's organization (claim `org`) is not text")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise MalformedToken("the token's roles (claim `roles`) are not a list of names")
    if not isinstance(expires_at, int | float):
        raise MalformedToken("the token has no expiry (claim `exp`)")
    return SignedInUser(subject, org_id or None, tuple(roles), float(expires_at))
