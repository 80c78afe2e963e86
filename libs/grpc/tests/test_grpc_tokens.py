"""Bearer tokens: minting, verifying, and telling why a token is refused (EdDSA, pinned keys)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from modelyard_grpc import Principal, Role, TokenError, TokenIssuer, TokenProblem, TokenVerifier, mint_token
from modelyard_grpc.auth import SERVICES, bearer_token
from modelyard_grpc.testing import OTHER_ISSUER, TEST_ISSUER, TEST_TOKEN_PUBLIC_KEYS, verifier_for


def _problem(token: str | None, verifier: TokenVerifier | None = None) -> TokenProblem:
    with pytest.raises(TokenError) as refused:
        (verifier or verifier_for()).verify(token)
    return refused.value.problem


def _signed(claims: dict[str, object], issuer: TokenIssuer = TEST_ISSUER) -> str:
    return jwt.encode(claims, issuer.private_key, algorithm="EdDSA", headers={"kid": issuer.key_id})


def _claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "a",
        "iat": now,
        "exp": now + 60,
        "iss": "modelyard",
        "aud": ["job-svc"],
        "roles": ["super_admin"],
    }
    return {k: v for k, v in (claims | changes).items() if v is not None}


class TestMintAndVerify:
    def test_a_minted_token_names_its_subject_organization_and_roles(self) -> None:
        token = mint_token(TEST_ISSUER, "alice", "org-1", ["org_admin", "auditor"], ttl_s=60)
        assert verifier_for().verify(token) == Principal(
            "alice", "org-1", frozenset({Role.ORG_ADMIN, Role.AUDITOR})
        )

    def test_the_claims_and_header_are_those_of_the_contract(self) -> None:
        token = mint_token(TEST_ISSUER, "alice", None, ["super_admin"], ttl_s=60)
        claims = jwt.decode(token, TEST_ISSUER.public_key, algorithms=["EdDSA"], audience="job-svc")
        assert set(claims) == {"sub", "org", "roles", "exp", "iat", "iss", "aud"}
        assert (claims["iss"], claims["aud"], claims["exp"] - claims["iat"]) == (
            "modelyard",
            list(SERVICES),
            60,
        )
        assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "typ": "JWT", "kid": TEST_ISSUER.key_id}

    def test_a_principal_becomes_the_actor_of_its_events(self) -> None:
        principal = verifier_for().verify(
            mint_token(TEST_ISSUER, "alice", "org-1", ["super_admin", "auditor"], 60)
        )
        actor = principal.as_actor()
        assert (actor.subject, actor.roles) == ("alice", ("auditor", "super_admin"))
        assert all(type(role) is str for role in actor.roles)

    def test_unknown_roles_grant_nothing(self) -> None:
        token = mint_token(TEST_ISSUER, "bob", "org-1", ["superadmin", "edge"], ttl_s=60)
        assert verifier_for().verify(token).roles == frozenset({Role.EDGE})

    def test_several_issuer_keys_may_be_pinned_for_a_rotation(self) -> None:
        both = TokenVerifier([TEST_ISSUER.public_key, OTHER_ISSUER.public_key], "job-svc")
        for issuer in (TEST_ISSUER, OTHER_ISSUER):
            assert both.verify(mint_token(issuer, "alice", None, ["auditor"], 60)).subject == "alice"

    def test_keys_come_from_configuration_as_a_json_list(self) -> None:
        verifier = TokenVerifier.from_config(TEST_TOKEN_PUBLIC_KEYS, "dataset-svc")
        assert verifier.verify(mint_token(TEST_ISSUER, "a", None, ["auditor"], 60)).subject == "a"
        for bad in ("{}", "[1]", "not json", '["c2hvcnQ"]'):
            with pytest.raises(ValueError, match=r"MODELYARD_TOKEN_PUBLIC_KEYS|32 bytes"):
                TokenVerifier.from_config(bad, "job-svc")


class TestRefusals:
    def test_no_token_is_missing(self) -> None:
        assert _problem(None) is TokenProblem.MISSING
        assert _problem("") is TokenProblem.MISSING

    def test_an_expired_token_is_expired(self) -> None:
        assert (
            _problem(mint_token(TEST_ISSUER, "alice", None, ["super_admin"], ttl_s=-60))
            is TokenProblem.EXPIRED
        )

    def test_a_token_just_past_expiry_passes_within_the_clock_skew_leeway(self) -> None:
        token = mint_token(TEST_ISSUER, "alice", None, ["super_admin"], ttl_s=-2)
        assert verifier_for(leeway_s=10).verify(token).subject == "alice"
        with pytest.raises(TokenError):
            verifier_for(leeway_s=0).verify(token)

    def test_a_token_verified_once_is_refused_once_it_has_expired(self) -> None:
        # verified tokens are remembered (a fleet heartbeats with the same token); the expiry is not
        verifier = verifier_for(leeway_s=0)
        token = mint_token(TEST_ISSUER, "alice", None, ["super_admin"], ttl_s=1)
        assert verifier.verify(token).subject == "alice"
        assert verifier.verify(token).subject == "alice"
        time.sleep(1.1)  # the expiry is judged on the wall clock (PyJWT reads it too): let it pass
        with pytest.raises(TokenError) as refused:
            verifier.verify(token)
        assert refused.value.problem is TokenProblem.EXPIRED

    def test_a_refused_token_stays_refused(self) -> None:
        verifier = verifier_for()
        forged = jwt.encode(
            _claims(), OTHER_ISSUER.private_key, algorithm="EdDSA", headers={"kid": TEST_ISSUER.key_id}
        )
        for _ in range(2):
            assert _problem(forged, verifier) is TokenProblem.BAD_SIGNATURE

    def test_a_token_from_an_issuer_this_service_does_not_pin_is_refused(self) -> None:
        token = mint_token(OTHER_ISSUER, "alice", None, ["super_admin"], ttl_s=60)
        assert _problem(token) is TokenProblem.BAD_SIGNATURE

    def test_a_token_signed_by_another_key_under_a_pinned_kid_has_a_bad_signature(self) -> None:
        forged = jwt.encode(
            _claims(), OTHER_ISSUER.private_key, algorithm="EdDSA", headers={"kid": TEST_ISSUER.key_id}
        )
        assert _problem(forged) is TokenProblem.BAD_SIGNATURE

    def test_a_token_whose_claims_were_edited_has_a_bad_signature(self) -> None:
        header, payload, signature = mint_token(TEST_ISSUER, "eve", "org-1", ["auditor"], ttl_s=60).split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["roles"] = ["super_admin"]
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        assert _problem(f"{header}.{forged}.{signature}") is TokenProblem.BAD_SIGNATURE

    def test_hs256_signed_with_the_public_key_is_refused(self) -> None:
        # The classic algorithm confusion: the public key is no secret, so HS256 must never pass.
        public = TEST_ISSUER.public_text().encode()
        confused = jwt.encode(_claims(), public * 2, algorithm="HS256", headers={"kid": TEST_ISSUER.key_id})
        assert _problem(confused) is TokenProblem.MALFORMED

    def test_an_unsigned_token_is_refused(self) -> None:
        unsigned = jwt.encode(_claims(), None, algorithm="none", headers={"kid": TEST_ISSUER.key_id})
        assert _problem(unsigned) in {TokenProblem.MALFORMED, TokenProblem.BAD_SIGNATURE}

    def test_a_token_for_another_service_is_refused(self) -> None:
        token = mint_token(TEST_ISSUER, "alice", None, ["super_admin"], ttl_s=60, audience=["dataset-svc"])
        with pytest.raises(TokenError, match="not for job-svc"):
            verifier_for("job-svc").verify(token)
        assert verifier_for("dataset-svc").verify(token).subject == "alice"

    def test_a_token_that_lives_longer_than_the_service_allows_is_refused(self) -> None:
        token = mint_token(TEST_ISSUER, "alice", None, ["super_admin"], ttl_s=7 * 24 * 3600)
        with pytest.raises(TokenError, match="longer than the 86400 s"):
            verifier_for(max_lifetime_s=86400).verify(token)

    @pytest.mark.parametrize(
        "changes",
        [
            {"exp": None},
            {"aud": None},
            {"iss": "someone-else"},
            {"roles": "super_admin"},
            {"org": 7},
            {"sub": "a" * 201},  # longer than events hold
            {"org": "o" * 201},
        ],
        ids=[
            "no-exp",
            "no-aud",
            "other-issuer",
            "roles-not-a-list",
            "org-not-a-string",
            "long-sub",
            "long-org",
        ],
    )
    def test_a_token_with_wrong_claims_is_malformed(self, changes: dict[str, object]) -> None:
        assert _problem(_signed(_claims(**changes))) is TokenProblem.MALFORMED

    def test_garbage_is_malformed(self) -> None:
        assert _problem("not-a-jwt") is TokenProblem.MALFORMED


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
