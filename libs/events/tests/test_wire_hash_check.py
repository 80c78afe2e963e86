"""decode_message checks a message's hash from its own bytes when they are what encode_envelope sends."""

from __future__ import annotations

import json
import pickle
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given

from modelyard_events.canonical import canonical_json
from modelyard_events.envelope import GENESIS_HASH, Actor, EventEnvelope, StoredPayload, stored_payload
from modelyard_events.errors import MalformedEvent
from modelyard_events.hashing import envelope_hash
from modelyard_events.signing import ForgedEvent
from modelyard_events.testing.strategies import envelopes
from modelyard_events.wire import KEPT_MESSAGE_BYTES, decode_message, encode_envelope, hash_field_at


def _hashed(envelope: EventEnvelope) -> EventEnvelope:
    return envelope.model_copy(update={"hash": envelope_hash(envelope)})


@given(envelopes)
def test_what_encode_envelope_sends_is_checked_from_its_bytes(envelope: EventEnvelope) -> None:
    envelope = _hashed(envelope)
    value = encode_envelope(envelope)
    assert hash_field_at(value, envelope) >= 0
    assert decode_message(value).envelope == envelope


@given(envelopes)
def test_other_bytes_of_a_genuine_envelope_are_checked_from_its_content(envelope: EventEnvelope) -> None:
    envelope = _hashed(envelope)
    loose = json.dumps(json.loads(encode_envelope(envelope)), indent=1).encode()  # spaces, newlines
    assert hash_field_at(loose, envelope) == -1
    assert decode_message(loose).envelope == envelope


@given(envelopes)
def test_a_changed_message_with_the_old_hash_is_refused(envelope: EventEnvelope) -> None:
    envelope = _hashed(envelope)
    fields = json.loads(encode_envelope(envelope))
    fields["stream_id"] += "!"
    changed = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    with pytest.raises(ForgedEvent, match="does not match its hash"):
        decode_message(changed)


@given(envelopes)
def test_the_hash_field_moved_into_the_payload_is_no_envelope(envelope: EventEnvelope) -> None:
    envelope = _hashed(envelope)
    value = encode_envelope(envelope)
    field = f'"hash":"{envelope.hash}",'.encode()
    without = value.replace(field, b"")
    moved = without.replace(b'"data":{', b'"data":{' + field, 1)
    with pytest.raises(MalformedEvent, match="not an event envelope"):
        decode_message(moved)


@given(envelopes)
def test_an_envelope_read_from_a_store_is_sent_as_the_same_bytes(envelope: EventEnvelope) -> None:
    """encode_envelope splices a stored payload's text in: the bytes are those of the parsed payload."""
    stored = envelope.model_copy(update={"data": stored_payload(canonical_json(envelope.data))})
    assert type(stored.data) is StoredPayload
    assert encode_envelope(stored) == encode_envelope(envelope)


@given(envelopes)
def test_a_message_checked_from_its_bytes_keeps_its_payload_text(envelope: EventEnvelope) -> None:
    """Decoding it again (registry) and sending it on (a job's timeline) then start from that text."""
    envelope = _hashed(envelope)
    value = encode_envelope(envelope)
    decoded = decode_message(value).envelope
    assert type(decoded.data) is StoredPayload
    assert decoded.data.json == canonical_json(envelope.data)
    assert encode_envelope(decoded) == value


@given(envelopes)
def test_a_decoded_message_is_sent_on_as_its_own_bytes(envelope: EventEnvelope) -> None:
    value = encode_envelope(_hashed(envelope))
    decoded = decode_message(value).envelope
    assert encode_envelope(decoded) is value  # not encoded again
    assert encode_envelope(decoded.model_copy()) == value  # what encoding it again gives


@given(envelopes)
def test_a_copy_with_other_fields_is_encoded_from_its_own_fields(envelope: EventEnvelope) -> None:
    """The copy shares the payload, and the payload the message of the envelope it came with."""
    envelope = _hashed(envelope)
    decoded = decode_message(encode_envelope(envelope)).envelope
    changed = decoded.model_copy(update={"stream_id": decoded.stream_id + "!"})
    assert changed.data is decoded.data
    assert encode_envelope(changed) == encode_envelope(
        envelope.model_copy(update={"stream_id": envelope.stream_id + "!"})
    )


@given(envelopes)
def test_a_pickled_payload_is_its_text_again(envelope: EventEnvelope) -> None:
    decoded = decode_message(encode_envelope(_hashed(envelope))).envelope
    assert isinstance(decoded.data, StoredPayload)
    assume(decoded.data.message is not None)  # not a message over 16 KB
    again = pickle.loads(pickle.dumps(decoded.data))
    assert type(again) is StoredPayload
    assert again == decoded.data
    assert again.json == decoded.data.json
    assert again.message is None


def test_a_large_message_does_not_keep_its_bytes() -> None:
    envelope = _hashed(
        EventEnvelope(
            event_id=uuid.uuid4(),
            stream_type="counter",
            stream_id="c-1",
            stream_version=1,
            position=1,
            type="CounterIncremented",
            schema_version=1,
            occurred_at=datetime.now(UTC),
            actor=Actor(subject="tester"),
            org_id=None,
            correlation_id="c",
            causation_id=None,
            data={"note": "x" * KEPT_MESSAGE_BYTES},
            prev_hash=GENESIS_HASH,
            hash=GENESIS_HASH,
        )
    )
    value = encode_envelope(envelope)
    decoded = decode_message(value).envelope
    assert type(decoded.data) is StoredPayload
    assert decoded.data.message is None
    assert encode_envelope(decoded) == value
