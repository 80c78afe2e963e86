"""Signed heads: a service vouches for its log up to a position with an Ed25519 signature (DESIGN §3).

The hash chain makes any edit of a stored event visible, but only to someone who knows what the
chain should end in: a process that writes to the broker, or a database owner who rewrites a suffix
and its head row, can build a new chain that links. A signed head closes that: the store signs the
hash of the last event it committed (one signature covers every append before it; see
store/head_signatures.py for how often), with a key only the service holds.
An event is authentic when a chain of hashes links it to a head whose signature verifies under a
public key pinned in the consumer's configuration. Keys are named by `key_id` (the first 16 hex
digits of the SHA-256 of the raw public key), so several keys can be pinned during a rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from modelyard_events.errors import EventStoreError, MalformedEvent

_DOMAIN = b"modelyard.v1.signed-head\n"


class SigningKeyError(EventStoreError, ValueError):
    """A signing or public key that cannot be parsed."""


class ForgedEvent(MalformedEvent):
    """An event or signed head that its claimed source did not write (bad hash or signature)."""


@dataclass(frozen=True, slots=True)
class SignedHead:
    """A source's signature over (position, hash of the event at position)."""

    position: int
    hash: str
    key_id: str
    signature: str  # base64url of the 64-byte Ed25519 signature

    def header(self) -> bytes:
        """The Kafka header value that carries this head on the event at `position`."""
        return f"{self.key_id}:{self.signature}".encode()

    @classmethod
    def from_header(cls, position: int, hash_: str, value: bytes) -> SignedHead:
        """The head a message's `head_signature` header claims for the event it is on."""
        key_id, _, signature = value.decode(errors="replace").partition(":")
        return cls(position, hash_, key_id, signature)


def _signed_text(position: int, hash_: str) -> bytes:
    return _DOMAIN + f"{position}\n{hash_}".encode()


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """The id a public key is known by: 16 hex digits of the SHA-256 of its raw bytes."""
    return hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def encode_key(raw: bytes) -> str:
    """Key bytes as they are written in configuration: base64url, no padding."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_key(text: str, what: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError) as error:
        raise SigningKeyError(f"{what} is not base64: {error}") from error
    if len(raw) != 32:
        raise SigningKeyError(f"{what} must be 32 bytes (base64url of a raw Ed25519 key), not {len(raw)}")
    return raw


class Ed25519Key:
    """A private Ed25519 key with its configuration text and id (event heads and bearer tokens)."""

    what = "the private key"

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self.private_key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id_of(self.public_key)

    @classmethod
    def from_text(cls, text: str) -> Self:
        """A key from configuration: base64url of the raw 32-byte private key."""
        return cls(Ed25519PrivateKey.from_private_bytes(_decode_key(text, cls.what)))

    @classmethod
    def generate(cls) -> Self:
        """A new random key (dev stacks and tests)."""
        return cls(Ed25519PrivateKey.generate())

    def private_text(self) -> str:
        """The private key as configuration text (to hand to the one process that holds it)."""
        return encode_key(self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

    def public_text(self) -> str:
        """The public key as configuration text (to pin where signatures are checked)."""
        return encode_key(self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def public_key_from_text(text: str, what: str = "a public key") -> Ed25519PublicKey:
    """A public key from configuration: base64url of its raw 32 bytes; SigningKeyError otherwise."""
    return Ed25519PublicKey.from_public_bytes(_decode_key(text, what))


class HeadSigner(Ed25519Key):
    """Signs heads with a service's private key (held only by the service that owns the log)."""

    what = "the event signing key"

    def sign(self, position: int, hash_: str) -> SignedHead:
        """Vouch that the log holds, at `position`, the event whose hash is `hash_`."""
        signature = self.private_key.sign(_signed_text(position, hash_))
        return SignedHead(position, hash_, self.key_id, encode_key(signature))


class HeadVerifier:
    """Checks heads against the public keys pinned for one source."""

    def __init__(self, public_keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id_of(key): key for key in public_keys}
        if not self._keys:
            raise SigningKeyError("a verifier needs at least one pinned public key")

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> HeadVerifier:
        """A verifier from configuration: base64url raw public keys."""
        return cls(public_key_from_text(t, "an event public key") for t in texts)

    def check(self, head: SignedHead) -> None:
        """Return when `head` is signed by a pinned key; ForgedEvent otherwise."""
        key = self._keys.get(head.key_id)
        if key is None:
            raise ForgedEvent(
                f"head at position {head.position} is signed by key {head.key_id!r}, "
                f"which is not pinned for this source (pinned: {', '.join(sorted(self._keys))})"
            )
        try:
            signature = base64.urlsafe_b64decode(head.signature + "=" * (-len(head.signature) % 4))
            key.verify(signature, _signed_text(head.position, head.hash))
        except (InvalidSignature, binascii.Error, ValueError) as error:
            raise ForgedEvent(
                f"the signature of the head at position {head.position} does not verify"
            ) from error

    def verifies(self, head: SignedHead) -> bool:
        """Whether `head` is signed by a pinned key."""
        try:
            self.check(head)
        except ForgedEvent:
            return False
        return True


def keyring_from_json(text: str) -> dict[str, HeadVerifier]:
    """Pinned public keys per source from configuration JSON: {"job": ["<base64url>", ...], ...}."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise SigningKeyError(f"the event public keys are not JSON: {error}") from error
    if not isinstance(parsed, Mapping) or not all(isinstance(v, list) for v in parsed.values()):
        raise SigningKeyError('the event public keys must be a JSON object {"<source>": ["<key>", ...]}')
    return {str(source): HeadVerifier.from_texts(keys) for source, keys in parsed.items()}
