"""How an envelope travels on Kafka: canonical JSON bytes, keyed by stream id.

The last event of each signed run carries its source's signature over its hash in the
`head_signature` header. Kafka is not trusted: `decode_message` recomputes the hash of every
message, and a consumer applies an event only once a signed head that verifies links to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from modelyard_events.canonical import canonical_json
from modelyard_events.envelope import EventEnvelope, StoredPayload
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
    """`envelope` when its hash recomputes from its content; ForgedEvent otherwise.

    A payload that kept the text it was read as (a StoredPayload: a store's row, a ReadEvents reply)
    is hashed as that text when it matches, without re-encoding it: the text around it is the
    canonical encoding of the other fields, in which a bare `","data":` cannot occur, and a proper
    part of an object's text does not parse, so a text that hashes to the source's hash holds the
    source's payload text exactly. Otherwise the parsed payload is encoded and hashed.
    """
    data = envelope.data
    if type(data) is StoredPayload and envelope_hash(envelope, data.json) == envelope.hash:
        return envelope
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
    envelope = decode_envelope(value)
    if not (value is not None and hashes_as_sent(value, envelope)):
        checked_envelope(envelope)  # not the bytes encode_envelope makes: check the content itself
    claimed = next((v for k, v in headers if k == HEAD_SIGNATURE), None)
    head = None if claimed is None else SignedHead.from_header(envelope.position, envelope.hash, claimed)
    return Delivered(envelope, head)


def hashes_as_sent(value: bytes, envelope: EventEnvelope) -> bool:
    """Whether `value` (which parsed as `envelope`) is its hashed text with the hash field added.

    encode_envelope sends the canonical text, "hash" among its sorted keys; without that field it is
    the very text the source hashed, so the message is checked by one sha256 of its own bytes instead
    of re-encoding what it parsed to (most of a consumer's decoding time). It proves the same thing:
    bytes that hash to a hash a signed head vouches for are the source's own text (the chain starts
    them at the prev_hash it names, and an object's text can only start with its brace), and parsing
    them with the hash field anywhere at the top level gives the source's envelope. Any other
    placement fails to parse as an envelope, whose hash field is required.
    """
    field = b'"hash":"' + envelope.hash.encode() + b'",'
    at = value.find(field)
    if at < 0:
        return False
    hashed = envelope.prev_hash.encode() + value[:at] + value[at + len(field) :]
    return hashlib.sha256(hashed).hexdigest() == envelope.hash
