"""Bearer tokens and the principal they name (DESIGN §6).

A token is a JWT signed with HS256 and the shared secret `MODELYARD_AUTH_SECRET`,
carrying `sub`, `org`, `roles`, `iat`, `exp` and `iss="modelyard"`. The roles:

- `super_admin`: everything.
- `org_admin`: read-only, own organization only, and only while that
  organization is on the Enterprise plan.
- `edge`: one edge server (the token's subject) and its own assignments.
- `auditor`: reads events and audit views, across organizations.
- `trainer`: a service role, not in DESIGN §6 — trainer workers must be
  authorized too, and may only heartbeat as themselves (subject = trainer id).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from modelyard_events.domain_errors import PermissionDenied
from modelyard_events.envelope import Actor
from modelyard_events.schemas.bounds import ID_MAX_CHARS

ISSUER = "modelyard"
ALGORITHM = "HS256"
# RFC 7518 §3.2: an HS256 key must be at least as long as the hash (32 bytes).
MIN_SECRET_BYTES = 32
ENTERPRISE_PLAN = "enterprise"


class Role(StrEnum):
    """The roles a token may carry; anything else in `roles` grants nothing."""

    SUPER_ADMIN = "super_admin"
    ORG_ADMIN = "org_admin"
    EDGE = "edge"
    AUDITOR = "auditor"
    TRAINER = "trainer"


# Roles that see every organization; every other role is confined to its own.
UNSCOPED_ROLES = frozenset({Role.SUPER_ADMIN, Role.AUDITOR})
_ROLE_NAMES = frozenset(role.value for role in Role)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the verified claims of a bearer token.

    `roles` keeps only the roles Modelyard knows, so a typo in a token can
    never grant anything.
    """

    subject: str
    org_id: str | None
    roles: frozenset[Role]

    def has_role(self, role: Role) -> bool:
        """True when the token carries `role`."""
        return role in self.roles

    def can_access_org(self, org_id: str | None) -> bool:
        """True when this caller may see data of organization `org_id`.

        super_admin and auditor see every organization; any other role sees only
        its own, and nothing at all when the token names no organization.
        """
        if self.roles & UNSCOPED_ROLES:
            return True
        return self.org_id is not None and org_id == self.org_id

    def as_actor(self) -> Actor:
        """The event `actor` for commands this principal issues (roles sorted, stable)."""
        return Actor(subject=self.subject, roles=tuple(sorted(role.value for role in self.roles)))


def require_org_access(principal: Principal, org_id: str | None) -> None:
    """Raise PermissionDenied unless `principal` may see organization `org_id`.

    For servicers whose request does not name the organization (GetJob loads
    the job first, then checks the job's organization here). The refusal names
    the caller's own organization, never `org_id`: which organization owns an
    id is not the caller's to learn.
    """
    if not principal.can_access_org(org_id):
        own = f"your organization ({principal.org_id})" if principal.org_id else "your organization"
        raise PermissionDenied(f"{principal.subject} may not access this: it is not in {own}")


class TokenProblem(StrEnum):
    """Why a bearer token was refused."""

    MISSING = "missing"
    MALFORMED = "malformed"
    EXPIRED = "expired"
    BAD_SIGNATURE = "bad_signature"


class TokenError(Exception):
    """A bearer token that authenticates nobody; `problem` says why, the message says what."""

    def __init__(self, problem: TokenProblem, message: str) -> None:
        super().__init__(f"{problem.value} token: {message}")
        self.problem = problem


def mint_token(secret: str, subject: str, org_id: str | None, roles: list[str], ttl_s: float) -> str:
    """A signed token for `subject` valid for `ttl_s` seconds from now (for dev, CLI and tests).

    A negative `ttl_s` gives a token that is already expired.
    """
    _check_secret(secret)
    now = int(time.time())
    claims = {
        "sub": subject,
        "org": org_id,
        "roles": list(roles),
        "iat": now,
        "exp": now + round(ttl_s),
        "iss": ISSUER,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str | None, leeway_s: float = 10.0) -> Principal:
    """The principal a token names, or TokenError saying whether it is missing,
    malformed, expired or wrongly signed.

    Only HS256 is accepted (never `none` or an algorithm the token picks);
    `leeway_s` tolerates clock skew between the minting and the checking host.
    """
    _check_secret(secret)
    if not token:
        raise TokenError(TokenProblem.MISSING, "no bearer token in the `authorization` metadata")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=leeway_s,
            options={"require": ["sub", "exp", "iat", "iss"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise TokenError(TokenProblem.EXPIRED, "the token has expired; get a new one") from error
    except jwt.InvalidSignatureError as error:
        raise TokenError(TokenProblem.BAD_SIGNATURE, "the signature does not match") from error
    except jwt.InvalidTokenError as error:
        raise TokenError(TokenProblem.MALFORMED, str(error)) from error
    return _principal_from(claims)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `authorization: Bearer <token>` value (None when absent).

    A value in any other scheme raises TokenError(MALFORMED).
    """
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError(TokenProblem.MALFORMED, "expected `authorization: Bearer <token>`")
    return token.strip()


def _principal_from(claims: dict[str, Any]) -> Principal:
    subject, org_id, roles = claims["sub"], claims.get("org"), claims.get("roles", [])
    if not isinstance(subject, str) or not subject:
        raise TokenError(TokenProblem.MALFORMED, "claim `sub` must be a non-empty string")
    if org_id is not None and not isinstance(org_id, str):
        raise TokenError(TokenProblem.MALFORMED, "claim `org` must be a string or null")
    # Events record both (created_by, annotator …), and an event holds ids of at most ID_MAX_CHARS.
    if len(subject) > ID_MAX_CHARS or len(org_id or "") > ID_MAX_CHARS:
        raise TokenError(
            TokenProblem.MALFORMED, f"claims `sub` and `org` have at most {ID_MAX_CHARS} characters"
        )
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise TokenError(TokenProblem.MALFORMED, "claim `roles` must be a list of strings")
    known = frozenset(Role(r) for r in roles if r in _ROLE_NAMES)
    return Principal(subject=subject, org_id=org_id or None, roles=known)


def _check_secret(secret: str) -> None:
    # A configuration error, not a caller's: fail loudly instead of signing with a weak key.
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"the auth secret must be at least {MIN_SECRET_BYTES} bytes (MODELYARD_AUTH_SECRET)")
