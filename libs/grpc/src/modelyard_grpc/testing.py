"""For tests: serve a fake servicer on a free local port (no auth, no interceptors); test token keys."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc import aio

from modelyard_grpc.auth import TokenIssuer, TokenVerifier

# Fixed (derived from constants) so processes a test starts can be handed them; never use outside tests.
TEST_ISSUER = TokenIssuer(
    Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"modelyard test issuer").digest())
)
OTHER_ISSUER = TokenIssuer(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"not our issuer").digest()))
TEST_TOKEN_PUBLIC_KEYS = json.dumps([TEST_ISSUER.public_text()])


def verifier_for(audience: str = "job-svc", **limits: float) -> TokenVerifier:
    """A verifier that pins TEST_ISSUER, for `audience`."""
    return TokenVerifier([TEST_ISSUER.public_key], audience, **limits)


@asynccontextmanager
async def serving_fake(add_to_server: Callable[[Any, aio.Server], None], servicer: Any) -> AsyncIterator[str]:
    """Serve `servicer` (added with the generated `add_…_to_server`) on 127.0.0.1; yield its target."""
    server = aio.server()
    add_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)
