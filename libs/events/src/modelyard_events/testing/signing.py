"""A fixed signing key for tests: stores sign with TEST_SIGNER, consumers pin TEST_KEYS.

Fixed (derived from a constant), so processes a test starts can be handed the same key. Never use
it outside tests: anyone can read it here.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelyard_events.signing import HeadSigner, HeadVerifier

TEST_SIGNER = HeadSigner(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"modelyard tests").digest()))
TEST_KEYS = HeadVerifier([TEST_SIGNER.public_key])
OTHER_SIGNER = HeadSigner(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"not pinned").digest()))
