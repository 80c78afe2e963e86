"""How an envelope travels on Kafka: canonical JSON bytes, keyed by stream id.

The last event of each signed run carries its source's signature over its hash in the
`head_signature` header. Kafka is not trusted: `decode_message` recomputes the hash of every
message, and a consumer applies an event only once a signed head that verifies links to it.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from modelyard_events.canonical import canonical_json
from modelyard_events.envelope import EventEnvelope, StoredPayload
from modelyard_events.errors import MalformedEvent
from modelyard_events.hashing import canonical_envelope_fields, envelope_hash, halves_of
from modelyard_events.signing import ForgedEvent, SignedHead

HEAD_SIGNATURE = "head_signature"
# A decoded message up to this size keeps its bytes for encode_envelope (a projection that stores or
# forwards the envelope: job-svc's timeline, 14 µs a trainer report to encode again); larger ones, whose
# payload text is spliced in cheaply anyway, are not held twice.
KEPT_MESSAGE_BYTES = 16 * 1024


def encode_envelope(envelope: EventEnvelope) -> bytes:
    """The message value for an envelope (every field, hash included)."""
    data = envelope.data
    if type(data) is StoredPayload:  # its text is the hashed one (checked_envelope)
        if data.message is not None and data.message[0]() is envelope:
            return data.message[1]  # the message it arrived in (decode_message)
        return _stored_message(envelope, data.json).encode()
    fields = canonical_envelope_fields(envelope)
    fields["hash"] = envelope.hash
    return canonical_json(fields).encode()


def _stored_message(envelope: EventEnvelope, data_json: str) -> str:
    """encode_envelope's text, spliced from the payload's canonical text and the other fields (a
    relay sends every event it reads: re-encoding the parsed payload was most of its work)."""
    halves = halves_of(envelope, data_json)
    # The halves' head ends with the fields after event_id, where "hash" sorts in.
    cut = halves.head.index(',"occurred_at":', halves.head.rindex(',"event_id":'))
    return (
        f'{halves.head[:cut]},"hash":"{envelope.hash}"{halves.head[cut:]}'
        f'"position":{envelope.position},"prev_hash":"{envelope.prev_hash}",{halves.tail}'
    )


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
    is hashed as that text, without re-encoding it, and must be exactly the text its source hashed:
    that text is what the registry decodes and what is sent on, so one that merely parses to the
    same payload (other spacing, escapes, a duplicate key) is refused. The text around it is the
    canonical encoding of the other fields, in which a bare `","data":` cannot occur, and a proper
    part of an object's text does not parse, so a text that hashes to the source's hash is the
    source's payload text byte for byte.
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
    if type(data) is StoredPayload:
        raise ForgedEvent(
            f"event at position {envelope.position}: its payload is not the text its source hashed"
        )
    return envelope


def decode_message(value: bytes | None, headers: Sequence[tuple[str, bytes]] = ()) -> Delivered:
    """A message's envelope, hash checked, and its claimed head (its signature is not checked here).

    MalformedEvent for bytes that are no envelope, ForgedEvent for a hash that does not match.
    """
    envelope = decode_envelope(value)
    assert value is not None  # decode_envelope refuses an empty value
    at = hash_field_at(value, envelope)
    if at < 0:
        checked_envelope(envelope)  # not the bytes encode_envelope makes: check the content itself
    elif payload := _payload_text(value, at):
        # The hash field sits where encode_envelope puts it and the rest hashes to the hash: once a
        # signed head vouches for that hash (every envelope a projection applies), the rest is the
        # source's canonical text and `value` is encode_envelope(envelope) to the byte. A message
        # the broker made up with a self-consistent hash is never applied; dead-lettered, it goes
        # out as the bytes it came as.
        stored = envelope.__dict__["data"] = _stored(envelope.data, payload)
        if len(value) <= KEPT_MESSAGE_BYTES:
            stored.message = (weakref.ref(envelope), value)
    claimed = claimed_head(headers)
    head = None if claimed is None else SignedHead.from_header(envelope.position, envelope.hash, claimed)
    return Delivered(envelope, head)


def claimed_head(headers: Sequence[tuple[str, bytes]]) -> bytes | None:
    """The `head_signature` header's value a message carries, if any (the first, as decoding reads it)."""
    return next((v for k, v in headers if k == HEAD_SIGNATURE), None)


def hash_field_at(value: bytes, envelope: EventEnvelope) -> int:
    """Where the hash field is in `value` if it is the hashed text with that field added, else -1.

    encode_envelope sends the canonical text, "hash" among its sorted keys; without that field it is
    the very text the source hashed, so the message is checked by one sha256 of its own bytes instead
    of re-encoding what it parsed to (most of a consumer's decoding time). It proves the same thing:
    bytes that hash to a hash a signed head vouches for (through the chain, which also fixes the
    prev_hash hashed in front of them) are the source's own text, and parsing them with the hash
    field anywhere at the top level gives the source's envelope. Any other placement fails to parse
    as an envelope, whose hash field is required. Only then does the payload keep its text.
    """
    field = b'"hash":"' + envelope.hash.encode() + b'",'
    at = value.find(field)
    if at < 0:
        return -1
    hashed = envelope.prev_hash.encode() + value[:at] + value[at + len(field) :]
    return at if hashlib.sha256(hashed).hexdigest() == envelope.hash else -1


_EVENT_ID = b',"event_id":"'
_AFTER_PAYLOAD = len(_EVENT_ID) + 36 + 2  # the event id (a UUID's 36 characters), its quote and comma


def _payload_text(value: bytes, hash_at: int) -> str | None:
    """The payload's text in a message that is its source's hashed text (hash field at `hash_at`).

    The first `"data":` is the payload's key (the fields before it are the actor's two and two ids,
    and no JSON string holds an unescaped quote); the event id and the hash come right after it.
    """
    start, end = value.find(b'"data":') + len(b'"data":'), hash_at - _AFTER_PAYLOAD
    if start < len(b'"data":') or end <= start or value[end : end + len(_EVENT_ID)] != _EVENT_ID:
        return None
    return value[start:end].decode()


def _stored(data: dict[str, object], text: str) -> StoredPayload:
    payload = StoredPayload(data)
    payload.json, payload.event, payload.message = text, None, None
    return payload
