"""How an envelope travels on Kafka: canonical JSON bytes, keyed by stream id."""

from __future__ import annotations

from pydantic import ValidationError

from modelyard_events.canonical import canonical_json
from modelyard_events.envelope import EventEnvelope
from modelyard_events.errors import MalformedEvent
from modelyard_events.hashing import canonical_envelope_fields


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


def message_headers(envelope: EventEnvelope) -> list[tuple[str, bytes]]:
    """Headers that let a router look at a message without parsing it."""
    return [
        ("type", envelope.type.encode()),
        ("schema_version", str(envelope.schema_version).encode()),
        ("position", str(envelope.position).encode()),
    ]
