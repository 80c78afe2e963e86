"""Fixtures of the gRPC layer's tests."""

from __future__ import annotations

import pytest
from grpc_support import MintToken

from modelyard_grpc import mint_token
from modelyard_grpc.testing import TEST_ISSUER


@pytest.fixture
def token() -> MintToken:
    """mint_token with the test secret: token(subject, org_id, roles, ttl_s=300)."""

    def mint(subject: str, org_id: str | None, roles: list[str], ttl_s: float = 300) -> str:
        return mint_token(TEST_ISSUER, subject, org_id, roles, ttl_s)

    return mint
