"""Bearer tokens and the principal they name (DESIGN §6).

A token is a JWT signed with EdDSA (Ed25519) by an issuer, the only holder of its private key
(`MODELYARD_TOKEN_SIGNING_KEY`: the operators' `yard token mint`, the dev platform). Services hold
only public keys (`MODELYARD_TOKEN_PUBLIC_KEYS`), named in the token's `kid` header so that several
can be pinned during a rotation. A token carries `sub`, `org`, `roles`, `iat`, `exp`,
`iss="modelyard"` and `aud`, the services it is for; a service accepts it only when its own name is
in `aud` and when `exp - iat` is within its maximum lifetime. The roles:

- `super_admin`: everything.
- `org_admin`: read-only, own organization only, and only while that
  organization is on the Enterprise plan.
- `edge`: one edge server (the token's subject) and its own assignments.
- `auditor`: reads events and audit views, across organizations.
- `trainer`: a service role, not in DESIGN §6 — trainer workers must be
  authorized too, and may only heartbeat as themselves (subject = trainer id).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelyard_events.domain_errors import PermissionDenied
from modelyard_events.envelope import Actor
from modelyard_events.schemas.bounds import ID_MAX_CHARS
from modelyard_events.signing import Ed25519Key, SigningKeyError, key_id_of, public_key_from_text

ISSUER = "modelyard"
ALGORITHM = "EdDSA"
ENTERPRISE_PLAN = "enterprise"
# The audiences: one per service that checks tokens. A token for all of them names them all.
SERVICES = ("dataset-svc", "job-svc", "trainer-svc", "registry-svc", "deploy-svc")
DEFAULT_MAX_LIFETIME_S = 24 * 3600.0


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


class TokenIssuer(Ed25519Key):
    """The private key that signs bearer tokens; only the issuer holds it."""

    what = "the token signing key (MODELYARD_TOKEN_SIGNING_KEY)"


def mint_token(
    issuer: TokenIssuer,
    subject: str,
    org_id: str | None,
    roles: Sequence[str],
    ttl_s: float,
    audience: Sequence[str] = SERVICES,
) -> str:
    """A token for `subject`, signed by `issuer`, valid `ttl_s` seconds from now for `audience`.

    A negative `ttl_s` gives a token that is already expired.
    """
    now = int(time.time())
    claims = {
        "sub": subject,
        "org": org_id,
        "roles": list(roles),
        "iat": now,
        "exp": now + round(ttl_s),
        "iss": ISSUER,
        "aud": list(audience),
    }
    return jwt.encode(claims, issuer.private_key, algorithm=ALGORITHM, headers={"kid": issuer.key_id})


_VERIFIED_TOKENS_KEPT = 50_000  # about 25 MB at most; the least recently used go first


class TokenVerifier:
    """What one service accepts: tokens signed by a pinned key, for it, within the maximum lifetime."""

    def __init__(
        self,
        public_keys: Iterable[Ed25519PublicKey],
        audience: str,
        *,
        max_lifetime_s: float = DEFAULT_MAX_LIFETIME_S,
        leeway_s: float = 10.0,
    ) -> None:
        self._keys = {key_id_of(key): key for key in public_keys}
        if not self._keys:
            raise SigningKeyError("no token public key is pinned (MODELYARD_TOKEN_PUBLIC_KEYS)")
        self.audience, self._max_lifetime_s, self._leeway_s = audience, max_lifetime_s, leeway_s
        # token → (its principal, its `exp`): a token verified once is the same bytes under the same
        # pinned keys next time, so a fleet heartbeating with the same token costs one signature
        # check per token, not per call. Only the expiry is looked at again.
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    @classmethod
    def from_config(cls, text: str, audience: str, **limits: float) -> TokenVerifier:
        """A verifier from MODELYARD_TOKEN_PUBLIC_KEYS: a JSON list of base64url public keys."""
        try:
            texts = json.loads(text)
        except json.JSONDecodeError as error:
            raise SigningKeyError(f"MODELYARD_TOKEN_PUBLIC_KEYS is not JSON: {error}") from error
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise SigningKeyError('MODELYARD_TOKEN_PUBLIC_KEYS must be a JSON list: ["<public key>", ...]')
        keys = [public_key_from_text(t, "a token public key (MODELYARD_TOKEN_PUBLIC_KEYS)") for t in texts]
        return cls(keys, audience, **limits)

    def verify(self, token: str | None) -> Principal:
        """The principal a token names, or TokenError saying why it authenticates nobody.

        Only EdDSA with a pinned `kid` is accepted (never `none`, never HS256 with a public key
        as its secret); `leeway_s` tolerates clock skew between the issuer and this host.
        """
        if not token:
            raise TokenError(TokenProblem.MISSING, "no bearer token in the `authorization` metadata")
        cached = self._verified.get(token)
        if cached is not None and time.time() < cached[1] + self._leeway_s:
            self._verified.move_to_end(token)
            return cached[0]
        return self._verify_anew(token)

    def _verify_anew(self, token: str) -> Principal:
        key = self._key_of(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                audience=self.audience,
                leeway=self._leeway_s,
                options={"require": ["sub", "exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise TokenError(TokenProblem.EXPIRED, "the token has expired; get a new one") from error
        except jwt.InvalidSignatureError as error:
            raise TokenError(TokenProblem.BAD_SIGNATURE, "the signature does not match") from error
        except jwt.InvalidAudienceError as error:
            raise TokenError(
                TokenProblem.MALFORMED, f"the token is not for {self.audience} (claim `aud`)"
            ) from error
        except jwt.InvalidTokenError as error:
            raise TokenError(TokenProblem.MALFORMED, str(error)) from error
        self._check_lifetime(claims)
        principal = _principal_from(claims)
        self._verified[token] = (principal, float(claims["exp"]))
        if len(self._verified) > _VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return principal

    def _key_of(self, token: str) -> Ed25519PublicKey:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as error:
            raise TokenError(TokenProblem.MALFORMED, str(error)) from error
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenError(
                TokenProblem.BAD_SIGNATURE,
                f"the token is signed by key {kid!r}, which this service does not pin",
            )
        return key

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        lifetime = claims["exp"] - claims["iat"]
        if not isinstance(lifetime, int | float) or lifetime > self._max_lifetime_s:
            raise TokenError(
                TokenProblem.MALFORMED,
                f"the token lives {lifetime} s, longer than the {self._max_lifetime_s:g} s this service "
                "accepts; get one with a shorter lifetime",
            )


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
