"""Runners of one process that consume a topic decode each of its messages once (SharedDecodes)."""

from __future__ import annotations

import pytest
from hypothesis import given

from modelyard_events.consumer.shared_decodes import FOOTPRINT_PER_BYTE, SharedDecodes
from modelyard_events.envelope import EventEnvelope
from modelyard_events.errors import MalformedEvent
from modelyard_events.hashing import envelope_hash
from modelyard_events.signing import ForgedEvent
from modelyard_events.testing.signing import OTHER_SIGNER, TEST_SIGNER
from modelyard_events.testing.strategies import envelopes
from modelyard_events.wire import HEAD_SIGNATURE, encode_envelope, message_headers

TOPIC = "modelyard.trainer.events"


def _message(envelope: EventEnvelope) -> bytes:
    return encode_envelope(envelope.model_copy(update={"hash": envelope_hash(envelope)}))


def _readers(count: int, budget: int = 1 << 20, largest: int = 1 << 16) -> SharedDecodes:
    decodes = SharedDecodes(budget, largest)
    for _ in range(count):
        decodes.join([TOPIC])
    return decodes


@given(envelopes)
def test_the_other_runners_take_what_the_first_decoded_and_the_entry_goes_with_the_last(
    envelope: EventEnvelope,
) -> None:
    decodes, value = _readers(3), _message(envelope)
    first = decodes.decode(TOPIC, value, ())
    assert len(decodes) == 1
    assert decodes.decode(TOPIC, bytes(value), ()) is first  # equal bytes of another fetch
    assert decodes.decode(TOPIC, value, ()) is first
    assert len(decodes) == 0
    assert (decodes.decoded, decodes.shared) == (1, 2)


@given(envelopes)
def test_a_topic_with_one_runner_keeps_nothing(envelope: EventEnvelope) -> None:
    decodes, value = _readers(1), _message(envelope)
    assert decodes.decode(TOPIC, value, ()) is not decodes.decode(TOPIC, value, ())
    assert len(decodes) == 0
    other = _readers(2)
    other.decode("modelyard.job.events", value, ())  # a topic no runner joined
    assert len(other) == 0


@given(envelopes)
def test_a_message_differing_in_any_byte_or_in_its_claimed_head_is_decoded_again(
    envelope: EventEnvelope,
) -> None:
    """A broker that serves one consumer group other bytes than another gets no shortcut."""
    decodes, value = _readers(2), _message(envelope)
    hashed = envelope.model_copy(update={"hash": envelope_hash(envelope)})
    genuine = message_headers(hashed, TEST_SIGNER.sign(hashed.position, hashed.hash))
    claimed = dict(genuine)[HEAD_SIGNATURE]
    forged = [(HEAD_SIGNATURE, OTHER_SIGNER.sign(hashed.position, hashed.hash).header())]
    assert claimed != forged[0][1]
    signed = decodes.decode(TOPIC, value, genuine)
    other = decodes.decode(TOPIC, value, forged)
    assert other is not signed
    assert other.head is not None
    assert other.head.header() == forged[0][1]
    assert signed.head is not None
    assert signed.head.header() == claimed
    tampered = value.replace(b'"stream_version":', b'"stream_version":1', 1)
    with pytest.raises(ForgedEvent):
        decodes.decode(TOPIC, tampered, genuine)
    assert decodes.decoded == 3


def test_bytes_that_fail_to_decode_are_refused_to_every_runner_and_not_kept() -> None:
    decodes = _readers(2)
    for _ in range(2):
        with pytest.raises(MalformedEvent):
            decodes.decode(TOPIC, b"{not json", ())
    with pytest.raises(MalformedEvent):
        decodes.decode(TOPIC, None, ())
    assert len(decodes) == 0


@given(envelopes)
def test_the_oldest_entries_go_when_the_budget_is_spent(envelope: EventEnvelope) -> None:
    values = [_message(envelope.model_copy(update={"position": p})) for p in (1, 2, 3)]
    decodes = _readers(2, budget=FOOTPRINT_PER_BYTE * (len(values[0]) + len(values[1])))
    decoded = [decodes.decode(TOPIC, value, ()) for value in values]
    assert len(decodes) == 2
    assert decodes.footprint <= FOOTPRINT_PER_BYTE * (len(values[0]) + len(values[1]))
    assert decodes.decode(TOPIC, values[0], ()) is not decoded[0]  # dropped: decoded again
    assert decodes.decode(TOPIC, values[2], ()) is decoded[2]


@given(envelopes)
def test_entries_no_other_runner_takes_stay_within_the_budget(envelope: EventEnvelope) -> None:
    """Two replicas: this pod's other runner was given other partitions, and never takes them."""
    budget = 10 * FOOTPRINT_PER_BYTE * len(_message(envelope))
    decodes = _readers(2, budget=budget)
    for position in range(1, 101):
        decodes.decode(TOPIC, _message(envelope.model_copy(update={"position": position})), ())
    assert 0 < len(decodes) <= 11
    assert decodes.footprint <= budget


@given(envelopes)
def test_a_large_message_is_decoded_by_each_runner_alone(envelope: EventEnvelope) -> None:
    value = _message(envelope)
    decodes = _readers(2, largest=len(value) - 1)
    assert decodes.decode(TOPIC, value, ()) is not decodes.decode(TOPIC, value, ())
    assert len(decodes) == 0
    assert decodes.footprint == 0


@given(envelopes)
def test_a_runner_that_leaves_takes_its_topic_s_entries_when_it_was_the_last_but_one(
    envelope: EventEnvelope,
) -> None:
    decodes, value = _readers(2), _message(envelope)
    decodes.join(["modelyard.job.events"])
    decodes.join(["modelyard.job.events"])
    decodes.decode(TOPIC, value, ())
    decodes.decode("modelyard.job.events", value, ())
    assert len(decodes) == 2
    decodes.leave([TOPIC])  # one runner of the trainers' topic left: the other decodes alone now
    assert len(decodes) == 1
    assert decodes.footprint == FOOTPRINT_PER_BYTE * len(value)
    assert decodes.decode(TOPIC, value, ()) is not decodes.decode(TOPIC, value, ())
    decodes.leave([TOPIC])
    decodes.leave([TOPIC])  # more leaves than joins change nothing
    decodes.join([TOPIC])
    assert decodes.decode(TOPIC, value, ()) is not decodes.decode(TOPIC, value, ())
