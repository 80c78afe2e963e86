"""Signatures as text (base64url, no padding), read back strictly so one signature has one spelling."""

from __future__ import annotations

import base64
import binascii

from modelyard_events.signing import encode_key

ED25519_SIGNATURE_BYTES = 64


def signature_text(raw: bytes) -> str:
    """A signature as it travels in manifests and URLs: base64url without padding."""
    return encode_key(raw)


def signature_bytes(text: str) -> bytes:
    """The 64 signature bytes `text` spells; ValueError unless it is exactly `signature_text` of them.

    Lenient base64 would skip foreign characters and ignore the unused low bits of the last one, so
    several texts would carry the same signature; comparing with the re-encoding leaves only one.
    """
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"the signature is not base64url: {error}") from error
    if len(raw) != ED25519_SIGNATURE_BYTES or signature_text(raw) != text:
        raise ValueError("the signature is not the base64url of 64 bytes")
    return raw
