"""EarlyArrivals: messages ahead of a hole wait for it to fill, and give up on it in time."""

from __future__ import annotations

import json

import pytest

from modelyard_events.consumer.arrivals import MAX_WAIT_S, EarlyArrivals, held_footprint
from modelyard_events.envelope import GENESIS_HASH, EventEnvelope, stored_payload
from modelyard_events.store import InMemoryEventStore
from modelyard_events.testing.sample_events import TEST_CONTEXT, CounterIncremented, CounterOpened

GAP_WAIT_S = 0.05


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def log() -> list[EventEnvelope]:
    """Positions 1..6 of one chained log."""
    store = InMemoryEventStore()
    await store.append("counter", "c", 0, [CounterOpened(name="c")], TEST_CONTEXT)
    for version in range(1, 6):
        await store.append("counter", "c", version, [CounterIncremented(amount=version)], TEST_CONTEXT)
    return await store.read_all()


def positions(envelopes: list[EventEnvelope]) -> list[int]:
    return [envelope.position for envelope in envelopes]


def altered(envelope: EventEnvelope, **changes: object) -> EventEnvelope:
    return EventEnvelope.model_validate({**envelope.model_dump(), **changes})


def signed(log: list[EventEnvelope], clock: Clock | None = None) -> EarlyArrivals:
    """Arrivals that know a verified signed head for every event of `log` (one append each)."""
    early = EarlyArrivals(GAP_WAIT_S, clock or Clock())
    for envelope in log:
        early.note_head("s", envelope.position, envelope.hash)
    return early


def test_messages_after_a_hole_wait_until_it_is_filled(log: list[EventEnvelope]) -> None:
    early = signed(log)

    first = early.chain("s", [log[0], log[3], log[4]], 0, GENESIS_HASH)
    assert positions(first) == [1]
    assert early.waiting("s")

    rest = early.chain("s", [log[2], log[1]], 1, log[0].hash)
    assert positions(rest) == [2, 3, 4, 5]
    assert not early.waiting("s")


def test_duplicates_and_messages_applied_elsewhere_are_dropped(log: list[EventEnvelope]) -> None:
    early = signed(log)
    early.chain("s", [log[4]], 0, GENESIS_HASH)  # held: 2..4 are missing

    chained = early.chain("s", [log[0], log[1], log[5]], 5, log[4].hash)  # catch-up applied up to 5

    assert positions(chained) == [6]
    assert not early.waiting()


def test_a_message_that_does_not_chain_to_the_last_applied_one_is_not_applied(
    log: list[EventEnvelope],
) -> None:
    early = signed(log)

    assert early.chain("s", [log[1]], 1, "f" * 64) == []
    assert early.waiting("s")


def test_a_hole_is_given_up_after_the_wait_once_the_consumer_has_drained_its_fetch(
    log: list[EventEnvelope],
) -> None:
    clock = Clock()
    early = signed(log, clock)
    early.chain("s", [log[2], log[3]], 1, log[0].hash)

    assert early.overdue("s", drained=True) == {}  # too soon
    clock.now += GAP_WAIT_S * 1.5
    assert early.overdue("s", drained=False) == {}  # more may sit in the consumer's buffer
    assert sorted(early.overdue("s", drained=True)) == [3, 4]
    assert not early.waiting("s")


def test_a_hole_is_due_once_it_has_waited_the_gap_wait(log: list[EventEnvelope]) -> None:
    """From then on the runner asks the broker whether the consumer is drained (a round trip)."""
    clock = Clock()
    early = signed(log, clock)
    assert not early.due()
    early.chain("s", [log[2]], 1, log[0].hash)
    clock.now += GAP_WAIT_S / 2
    assert not early.due()
    clock.now += GAP_WAIT_S
    assert early.due()
    early.chain("s", [log[1]], 1, log[0].hash)  # the hole filled: nothing waits
    assert not early.due()


def test_a_hole_is_given_up_after_the_longest_wait_even_while_messages_keep_coming(
    log: list[EventEnvelope],
) -> None:
    clock = Clock()
    early = signed(log, clock)
    early.chain("s", [log[2]], 1, log[0].hash)
    clock.now += MAX_WAIT_S / 2
    early.chain("s", [log[3]], 1, log[0].hash)  # the same hole: its wait goes on

    clock.now += MAX_WAIT_S / 2
    assert sorted(early.overdue("s", drained=False)) == [3, 4]


def test_the_wait_restarts_when_the_chain_moves_on_to_a_new_hole(log: list[EventEnvelope]) -> None:
    clock = Clock()
    early = signed(log, clock)
    early.chain("s", [log[1], log[3]], 0, GENESIS_HASH)  # hole at 1
    clock.now += GAP_WAIT_S * 1.5

    early.chain("s", [log[0]], 0, GENESIS_HASH)  # 1 and 2 arrive: the hole is now at 3

    assert early.overdue("s", drained=True) == {}


def test_a_linked_run_waits_until_a_signed_head_names_its_last_event(log: list[EventEnvelope]) -> None:
    early = EarlyArrivals(GAP_WAIT_S, Clock())
    early.note_head("s", 3, log[2].hash)

    assert positions(early.chain("s", log[:5], 0, GENESIS_HASH)) == [1, 2, 3]
    assert early.waiting("s")  # 4 and 5 link, but no head vouches for them yet

    early.note_head("s", 5, log[4].hash)
    assert positions(early.chain("s", [], 3, log[2].hash)) == [4, 5]


def test_a_forgery_that_links_is_never_released(log: list[EventEnvelope]) -> None:
    forged = altered(log[1], data={"amount": 1000}, hash="f" * 64)  # its prev_hash links
    early = EarlyArrivals(GAP_WAIT_S, Clock())
    early.note_head("s", 1, log[0].hash)
    early.note_head("s", 2, log[1].hash)

    assert positions(early.chain("s", [log[0], forged], 0, GENESIS_HASH)) == [1]
    # The genuine event, whose hash the head names, takes the forgery's place.
    assert early.chain("s", [log[1]], 1, log[0].hash) == [log[1]]


def test_the_first_message_at_a_position_stays_until_a_head_names_another(log: list[EventEnvelope]) -> None:
    impostor = altered(log[1], hash="e" * 64)
    early = EarlyArrivals(GAP_WAIT_S, Clock())

    early.chain("s", [log[1]], 1, log[0].hash)
    assert early.chain("s", [impostor], 1, log[0].hash) == []  # held: the genuine one stays
    early.note_head("s", 2, log[1].hash)
    assert early.chain("s", [], 1, log[0].hash) == [log[1]]


def test_held_messages_past_the_runners_byte_budget_are_given_up_at_once(log: list[EventEnvelope]) -> None:
    """A broker sending large messages cannot make a runner hold them until the count limit."""
    budget = held_footprint(log[2]) + held_footprint(log[3]) + held_footprint(log[4])
    early = EarlyArrivals(GAP_WAIT_S, Clock(), max_bytes=budget)
    for envelope in log:
        early.note_head("s", envelope.position, envelope.hash)
        early.note_head("t", envelope.position, envelope.hash)
    early.chain("s", [log[2], log[3]], 1, log[0].hash)
    assert early.footprint() == held_footprint(log[2]) + held_footprint(log[3])
    assert early.overdue("s", drained=False) == {}  # under the budget, fresh: it waits

    early.chain("t", [log[4]], 1, log[0].hash)  # another source's: the budget is the runner's
    assert sorted(early.overdue("s", drained=False)) == [3, 4]
    assert early.footprint() == held_footprint(log[4])


def test_the_footprint_follows_what_is_held(log: list[EventEnvelope]) -> None:
    early = signed(log)
    early.chain("s", [log[2], log[3], log[2]], 1, log[0].hash)  # a duplicate is held once
    assert early.footprint() == held_footprint(log[2]) + held_footprint(log[3])
    assert positions(early.chain("s", [log[1]], 1, log[0].hash)) == [2, 3, 4]
    assert early.footprint() == 0


def test_a_held_envelope_is_estimated_from_its_payload_text() -> None:
    small, large = stored_payload('{"note":"x"}'), stored_payload(json.dumps({"note": "x" * 100_000}))
    assert held_footprint(_with_data(small)) < 5_000
    assert held_footprint(_with_data(large)) > 300_000  # its text is parsed into a dict as well
    assert held_footprint(_with_data({"note": "x" * 100_000})) > 300_000  # a loose message's dict


def _with_data(data: dict[str, object]) -> EventEnvelope:
    envelope = EventEnvelope.model_validate(
        {
            "event_id": "00000000-0000-0000-0000-000000000001",
            "stream_type": "counter",
            "stream_id": "c",
            "stream_version": 1,
            "position": 1,
            "type": "CounterIncremented",
            "schema_version": 1,
            "occurred_at": "2026-12-04T00:00:00Z",
            "actor": {"subject": "tester"},
            "org_id": None,
            "correlation_id": "c",
            "causation_id": None,
            "data": {},
            "prev_hash": GENESIS_HASH,
            "hash": GENESIS_HASH,
        }
    )
    envelope.__dict__["data"] = data  # as decode_message swaps in a StoredPayload
    return envelope
