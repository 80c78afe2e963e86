"""How an envelope travels on Kafka: canonical JSON bytes, keyed by stream id.

The last event of each signed run carries its source's signature over its hash in the
`head_signature` header. Kafka is not trusted: `decode_message` recomputes the hash of every
message, and a consumer applies an event only once a signed head that verifies links to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from modelyard_events.canonical import canonical_json
from modelyard_events.envelope import EventEnvelope
from modelyard_events.errors import MalformedEvent
from modelyard_events.hashing import canonical_envelope_fields, envelope_hash
from modelyard_events.signing import ForgedEvent, SignedHead

HEAD_SIGNATURE = "head_signature"


def encode_envelope(envelope: EventEnvelope) -> bytes:
    """The message value for an envelope (every field, hash included)."""
    fields = canonical_envelope_fields(envelope)
    fields["hash"] = envelope.hash
    return canonical_json(fields).encode()


def decode_envelope(value: bytes | None) -> EventEnvelope:
    """Parse and validate a message value; anything else is MalformedEvent."""
    if not value:
        raise MalformedEvent("empty message value")
    try:
        return EventEnvelope.model_validate_json(value)
    except ValidationError as error:
        raise MalformedEvent(f"not an event envelope: {error.errors()[0]['msg']}") from error


def message_headers(envelope: EventEnvelope, head: SignedHead | None = None) -> list[tuple[str, bytes]]:
    """Headers that let a router look at a message without parsing it, and the signed head if any."""
    headers = [
        ("type", envelope.type.encode()),
        ("schema_version", str(envelope.schema_version).encode()),
        ("position", str(envelope.position).encode()),
    ]
    if head is not None:
        headers.append((HEAD_SIGNATURE, head.header()))
    return headers


@dataclass(frozen=True, slots=True)
class Delivered:
    """An envelope whose hash matches its content, and the signed head its message claims."""

    envelope: EventEnvelope
    head: SignedHead | None


def checked_envelope(envelope: EventEnvelope) -> EventEnvelope:
    """`envelope` when its hash recomputes from its content; ForgedEvent otherwise."""
    try:
        recomputed = envelope_hash(envelope)
    except ValueError as error:  # a payload with no canonical form (an infinite float)
        raise ForgedEvent(f"event at position {envelope.position} has no canonical form: {error}") from error
    if recomputed != envelope.hash:
        raise ForgedEvent(f"event at position {envelope.position} does not match its hash")
    return envelope


def decode_message(value: bytes | None, headers: Sequence[tuple[str, bytes]] = ()) -> Delivered:
    """A message's envelope, hash checked, and its claimed head (its signature is not checked here).

    MalformedEvent for bytes that are no envelope, ForgedEvent for a hash that does not match.
    """
    envelope = checked_envelope(decode_envelope(value))
    claimed = next((v for k, v in headers if k == HEAD_SIGNATURE), None)
    head = None if claimed is None else SignedHead.from_header(envelope.position, envelope.hash, claimed)
    return Delivered(envelope, head)
