"""Bearer tokens: minting, verifying, and telling why a token is refused."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from grpc_support import OTHER_SECRET, SECRET

from modelyard_grpc import Principal, Role, TokenError, TokenProblem, mint_token, verify_token
from modelyard_grpc.auth import bearer_token


def _problem(secret: str, token: str | None) -> TokenProblem:
    with pytest.raises(TokenError) as refused:
        verify_token(secret, token)
    return refused.value.problem


class TestMintAndVerify:
    def test_a_minted_token_names_its_subject_organization_and_roles(self) -> None:
        token = mint_token(SECRET, "alice", "org-1", ["org_admin", "auditor"], ttl_s=60)
        assert verify_token(SECRET, token) == Principal(
            "alice", "org-1", frozenset({Role.ORG_ADMIN, Role.AUDITOR})
        )

    def test_the_claims_are_those_of_the_contract(self) -> None:
        token = mint_token(SECRET, "alice", None, ["super_admin"], ttl_s=60)
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
        assert set(claims) == {"sub", "org", "roles", "exp", "iat", "iss"}
        assert claims["iss"] == "modelyard"
        assert claims["exp"] - claims["iat"] == 60

    def test_a_principal_becomes_the_actor_of_its_events(self) -> None:
        principal = verify_token(SECRET, mint_token(SECRET, "alice", "org-1", ["super_admin", "auditor"], 60))
        actor = principal.as_actor()
        assert (actor.subject, actor.roles) == ("alice", ("auditor", "super_admin"))
        assert all(type(role) is str for role in actor.roles)

    def test_unknown_roles_grant_nothing(self) -> None:
        token = mint_token(SECRET, "bob", "org-1", ["superadmin", "edge"], ttl_s=60)
        assert verify_token(SECRET, token).roles == frozenset({Role.EDGE})

    def test_a_short_secret_is_a_configuration_error(self) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            mint_token("short", "alice", None, [], ttl_s=60)
        with pytest.raises(ValueError, match="32 bytes"):
            verify_token("short", "x.y.z")


class TestRefusals:
    def test_no_token_is_missing(self) -> None:
        assert _problem(SECRET, None) is TokenProblem.MISSING
        assert _problem(SECRET, "") is TokenProblem.MISSING

    def test_an_expired_token_is_expired(self) -> None:
        token = mint_token(SECRET, "alice", None, ["super_admin"], ttl_s=-60)
        assert _problem(SECRET, token) is TokenProblem.EXPIRED

    def test_a_token_just_past_expiry_passes_within_the_clock_skew_leeway(self) -> None:
        token = mint_token(SECRET, "alice", None, ["super_admin"], ttl_s=-2)
        assert verify_token(SECRET, token, leeway_s=10).subject == "alice"
        with pytest.raises(TokenError):
            verify_token(SECRET, token, leeway_s=0)

    def test_a_token_signed_with_another_secret_has_a_bad_signature(self) -> None:
        token = mint_token(OTHER_SECRET, "alice", None, ["super_admin"], ttl_s=60)
        assert _problem(SECRET, token) is TokenProblem.BAD_SIGNATURE

    def test_a_token_whose_claims_were_edited_has_a_bad_signature(self) -> None:
        header, payload, signature = mint_token(SECRET, "eve", "org-1", ["auditor"], ttl_s=60).split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["roles"] = ["super_admin"]
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        assert _problem(SECRET, f"{header}.{forged}.{signature}") is TokenProblem.BAD_SIGNATURE

    def test_an_unsigned_token_is_malformed(self) -> None:
        unsigned = jwt.encode({"sub": "eve", "roles": ["super_admin"]}, None, algorithm="none")
        assert _problem(SECRET, unsigned) is TokenProblem.MALFORMED

    @pytest.mark.parametrize(
        "claims",
        [
            {"sub": "a", "iat": 1, "iss": "modelyard"},  # no exp
            {"sub": "a", "iat": 1, "exp": 2**40, "iss": "someone-else"},
            {"sub": "a", "iat": 1, "exp": 2**40, "iss": "modelyard", "roles": "super_admin"},
            {"sub": "a", "iat": 1, "exp": 2**40, "iss": "modelyard", "org": 7},
            {"sub": "a" * 201, "iat": 1, "exp": 2**40, "iss": "modelyard"},  # longer than events hold
            {"sub": "a", "iat": 1, "exp": 2**40, "iss": "modelyard", "org": "o" * 201},
        ],
    )
    def test_a_token_with_wrong_claims_is_malformed(self, claims: dict[str, object]) -> None:
        assert _problem(SECRET, jwt.encode(claims, SECRET, algorithm="HS256")) is TokenProblem.MALFORMED

    def test_garbage_is_malformed(self) -> None:
        assert _problem(SECRET, "not-a-jwt") is TokenProblem.MALFORMED


class TestBearerHeader:
    def test_the_bearer_scheme_yields_the_token(self) -> None:
        assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
        assert bearer_token("bearer  abc ") == "abc"

    def test_no_header_is_no_token(self) -> None:
        assert bearer_token(None) is None

    @pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "abc.def.ghi"])
    def test_another_scheme_is_malformed(self, value: str) -> None:
        with pytest.raises(TokenError) as refused:
            bearer_token(value)
        assert refused.value.problem is TokenProblem.MALFORMED
