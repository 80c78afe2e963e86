"""Canonical JSON and the envelope's wire form: round trips and stability under hypothesis."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard_events.canonical import canonical_json, canonical_timestamp, parse_timestamp
from modelyard_events.envelope import EventEnvelope
from modelyard_events.errors import MalformedEvent
from modelyard_events.hashing import (
    HalvesTemplate,
    actor_canonical_json,
    canonical_envelope_fields,
    envelope_hash,
    halves_of,
)
from modelyard_events.testing.strategies import aware_datetimes, envelopes, json_objects, json_values
from modelyard_events.wire import decode_envelope, encode_envelope


@given(json_values)
def test_canonical_text_parses_back_to_the_same_value(value: Any) -> None:
    assert json.loads(canonical_json(value)) == value


@given(json_values)
def test_canonical_text_is_a_fixed_point(value: Any) -> None:
    text = canonical_json(value)
    assert canonical_json(json.loads(text)) == text


@given(json_objects, st.randoms())
def test_key_order_does_not_change_the_text(obj: dict[str, Any], rnd: Any) -> None:
    keys = list(obj)
    rnd.shuffle(keys)
    assert canonical_json({key: obj[key] for key in keys}) == canonical_json(obj)


@given(json_values)
def test_the_encoder_built_once_writes_what_json_dumps_writes(value: Any) -> None:
    reference = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    assert canonical_json(value) == reference


@pytest.mark.parametrize("bad", [object(), {1, 2}, b"bytes", {"nested": [datetime(2026, 1, 1)]}])
def test_values_that_are_not_json_are_refused_and_the_next_encodes(bad: Any) -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        canonical_json({"x": bad})
    assert canonical_json({"x": [1, {"y": None}]}) == '{"x":[1,{"y":null}]}'


def test_a_value_that_holds_itself_or_nests_too_deeply_is_refused_as_not_json() -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    deep: Any = None
    for _ in range(100_000):
        deep = [deep]
    for bad in (cyclic, {"x": deep}):
        with pytest.raises(ValueError, match="nests too deeply or holds itself"):
            canonical_json(bad)
    assert canonical_json([[[1]]]) == "[[[1]]]"


def test_canonical_form_is_compact_sorted_and_unescaped() -> None:
    assert canonical_json({"b": [1, 2.5], "a": "é", "É": None}) == '{"a":"é","b":[1,2.5],"É":null}'


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        canonical_json({"x": bad})


@given(aware_datetimes)
def test_timestamps_round_trip_to_the_same_instant(moment: datetime) -> None:
    text = canonical_timestamp(moment)
    assert text.endswith("Z")
    assert len(text) == 27
    assert parse_timestamp(text) == moment


@given(aware_datetimes)
def test_timestamps_are_utc_with_six_digits_and_a_z(moment: datetime) -> None:
    assert canonical_timestamp(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        canonical_timestamp(datetime(2026, 1, 1))


@given(envelopes)
def test_envelope_survives_the_wire(envelope: EventEnvelope) -> None:
    decoded = decode_envelope(encode_envelope(envelope))
    assert decoded == envelope
    assert decoded.occurred_at.tzinfo is not None


@given(envelopes)
def test_hash_covers_exactly_the_canonical_envelope(envelope: EventEnvelope) -> None:
    """The spliced halves the database hashes are the canonical JSON of every field but `hash`."""
    text = envelope.prev_hash + canonical_json(canonical_envelope_fields(envelope))
    assert envelope_hash(envelope) == hashlib.sha256(text.encode()).hexdigest()


@given(envelopes, st.sampled_from(["stream_id", "type", "org_id", "correlation_id"]))
def test_changing_any_field_changes_the_hash(envelope: EventEnvelope, field: str) -> None:
    changed = envelope.model_copy(update={field: f"{getattr(envelope, field)}!"})
    assert envelope_hash(changed) != envelope_hash(envelope)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty message value"),
        (b"", "empty message value"),
        (b"\xff\xfe not json", "not an event envelope"),
        (b'{"type": "CounterOpened"}', "not an event envelope"),
        (b"[1, 2, 3]", "not an event envelope"),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason):
        decode_envelope(value)


def test_unknown_envelope_fields_are_refused() -> None:
    envelope = EventEnvelope.model_validate(
        {
            "event_id": "0190b3a0-0000-7000-8000-000000000000",
            "stream_type": "counter",
            "stream_id": "c-1",
            "stream_version": 1,
            "position": 1,
            "type": "CounterOpened",
            "schema_version": 1,
            "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
            "actor": {"subject": "alice", "roles": []},
            "org_id": None,
            "correlation_id": "c",
            "causation_id": None,
            "data": {"name": "x"},
            "prev_hash": "0" * 64,
            "hash": "1" * 64,
        }
    )
    fields = json.loads(encode_envelope(envelope))
    fields["sneaky"] = True
    with pytest.raises(MalformedEvent, match="not an event envelope"):
        decode_envelope(json.dumps(fields).encode())


@given(envelopes)
def test_the_per_append_template_gives_the_same_halves(envelope: EventEnvelope) -> None:
    template = HalvesTemplate(
        actor_json=canonical_json(envelope.actor.model_dump(mode="json")),
        causation_id=envelope.causation_id,
        correlation_id=envelope.correlation_id,
        occurred_at=canonical_timestamp(envelope.occurred_at),
        org_id=envelope.org_id,
        stream_id=envelope.stream_id,
        stream_type=envelope.stream_type,
    )
    assert halves_of(envelope) == template.halves(
        data_json=canonical_json(envelope.data),
        event_id=str(envelope.event_id),
        schema_version=envelope.schema_version,
        stream_version=envelope.stream_version,
        type_name=envelope.type,
    )


@given(envelopes)
def test_the_cached_actor_text_is_the_actors_canonical_json(envelope: EventEnvelope) -> None:
    actor = envelope.actor
    assert actor_canonical_json(actor.subject, actor.roles) == canonical_json(actor.model_dump(mode="json"))
