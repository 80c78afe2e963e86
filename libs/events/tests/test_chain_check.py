"""The chain checker on hand-built logs, without I/O: every kind of break is named at its position."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from modelyard_events.chain_check import BreakKind, ChainChecker
from modelyard_events.envelope import GENESIS_HASH, Actor, EventEnvelope
from modelyard_events.hashing import envelope_hash
from modelyard_events.signing import SignedHead
from modelyard_events.testing.signing import OTHER_SIGNER, TEST_KEYS, TEST_SIGNER


def _log(count: int, signed_every: int = 3) -> tuple[list[EventEnvelope], list[SignedHead]]:
    """`count` linked events, a signed head every `signed_every` events and on the last one."""
    events: list[EventEnvelope] = []
    prev = GENESIS_HASH
    for position in range(1, count + 1):
        event = _event(position, prev, {"n": position})
        events.append(event)
        prev = event.hash
    heads = [TEST_SIGNER.sign(e.position, e.hash) for e in events if e.position % signed_every == 0]
    if count % signed_every:
        heads.append(TEST_SIGNER.sign(events[-1].position, events[-1].hash))
    return events, heads


def _event(position: int, prev_hash: str, data: dict[str, object]) -> EventEnvelope:
    unhashed = EventEnvelope(
        event_id=uuid.UUID(int=position),
        stream_type="counter",
        stream_id="c",
        stream_version=position,
        position=position,
        type="CounterIncremented",
        schema_version=1,
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        actor=Actor(subject="alice", roles=("super_admin",)),
        org_id="acme",
        correlation_id="corr",
        causation_id=None,
        data=data,
        prev_hash=prev_hash,
        hash="",
    )
    return unhashed.model_copy(update={"hash": envelope_hash(unhashed)})


def _check(
    events: list[EventEnvelope], heads: list[SignedHead], page: int = 4, *, keys: bool = True
) -> ChainChecker[EventEnvelope]:
    checker = ChainChecker(envelope_hash, TEST_KEYS if keys else None)
    for start in range(0, len(events), page):
        chunk = events[start : start + page]
        if checker.feed(chunk, [h for h in heads if chunk[0].position <= h.position <= chunk[-1].position]):
            break
    checker.finish()
    return checker


def test_an_intact_log_verifies_through_its_last_signed_head() -> None:
    events, heads = _log(10)
    checker = _check(events, heads)
    assert checker.broken is None
    assert (checker.checked, checker.signed_through, checker.last_hash) == (10, 10, events[-1].hash)


def test_an_edited_event_is_named() -> None:
    events, heads = _log(10)
    events[6] = events[6].model_copy(update={"data": {"n": 700}})
    broken = _check(events, heads).broken
    assert broken is not None
    assert (broken.position, broken.kind) == (7, BreakKind.EDITED)


def test_a_deleted_event_is_a_missing_position() -> None:
    events, heads = _log(10)
    del events[4]
    broken = _check(events, heads).broken
    assert broken is not None
    assert (broken.position, broken.kind) == (5, BreakKind.MISSING)


def test_swapped_events_are_named_where_the_first_goes_missing() -> None:
    events, heads = _log(10)
    events[3], events[6] = events[6], events[3]
    broken = _check(events, heads).broken
    assert broken is not None
    assert (broken.position, broken.kind) == (4, BreakKind.MISSING)
    assert "moved" in broken.reason


def test_a_position_going_back_is_reordered() -> None:
    events, heads = _log(10)
    events.insert(5, events[2])
    broken = _check(events, heads).broken
    assert broken is not None
    assert (broken.position, broken.kind) == (6, BreakKind.REORDERED)


def test_swapped_positions_that_keep_their_numbers_break_the_link() -> None:
    events, heads = _log(10)
    # Rows 4 and 7 swap contents but keep dense positions (an UPDATE of the position column).
    events[3], events[6] = (
        events[6].model_copy(update={"position": 4}),
        events[3].model_copy(update={"position": 7}),
    )
    broken = _check(events, heads).broken
    assert broken is not None
    assert (broken.position, broken.kind) == (4, BreakKind.REORDERED)


def test_a_rewritten_suffix_links_but_differs_from_what_was_signed() -> None:
    events, heads = _log(10)
    prev = events[6].prev_hash
    for i in range(6, 10):  # rewrite 7..10 with recomputed hashes: the chain alone links again
        events[i] = _event(i + 1, prev, {"n": -i})
        prev = events[i].hash
    assert _check(events, heads, keys=False).broken is None
    broken = _check(events, heads).broken
    assert broken is not None
    assert (broken.position, broken.kind) == (7, BreakKind.REWRITTEN)
    assert "rewritten" in broken.reason


def test_a_head_signed_with_an_unpinned_key_is_named_from_the_last_good_head() -> None:
    events, heads = _log(10)
    heads = [OTHER_SIGNER.sign(h.position, h.hash) if h.position == 9 else h for h in heads]
    broken = _check(events, heads).broken
    assert broken is not None
    assert (broken.position, broken.kind) == (7, BreakKind.SIGNATURE)
    assert "not pinned" in broken.reason


def test_a_head_with_a_changed_signature_does_not_verify() -> None:
    events, heads = _log(10)
    heads = [SignedHead(h.position, h.hash, h.key_id, "A" * 86) if h.position == 6 else h for h in heads]
    broken = _check(events, heads).broken
    assert broken is not None
    assert (broken.position, broken.kind) == (4, BreakKind.SIGNATURE)


def test_an_unsigned_tail_is_named() -> None:
    events, heads = _log(10)
    heads = [h for h in heads if h.position <= 6]
    broken = _check(events, heads).broken
    assert broken is not None
    assert (broken.position, broken.kind) == (7, BreakKind.UNSIGNED)
    assert "7..10" in broken.reason


def test_a_log_shorter_than_its_head_is_named() -> None:
    events, heads = _log(9)
    checker = ChainChecker(envelope_hash, TEST_KEYS)
    checker.feed(events, heads)
    broken = checker.finish(head_position=12)
    assert broken is not None
    assert (broken.position, broken.kind) == (10, BreakKind.SHORT)


@pytest.mark.parametrize("page", [1, 2, 5, 100])
def test_the_state_between_pages_is_the_last_position_hash_and_signed_head(page: int) -> None:
    events, heads = _log(12, signed_every=5)
    checker = _check(events, heads, page)
    assert checker.broken is None
    assert vars(checker).keys() <= {"_hash_of", "_keys", "last_position", "last_hash", "signed_through",
                                    "checked", "broken"}  # fmt: skip


def test_an_anchored_range_takes_its_first_prev_hash_as_given() -> None:
    events, heads = _log(10)
    checker = ChainChecker(envelope_hash, TEST_KEYS, after_position=4, prev_hash=None)
    checker.feed(events[4:], [h for h in heads if h.position > 4])
    assert checker.finish() is None
    assert checker.signed_through == 10

    wrong_start = ChainChecker(envelope_hash, TEST_KEYS, after_position=4, prev_hash=None)
    wrong_start.feed(events[5:], heads)
    broken = wrong_start.finish()
    assert broken is not None
    assert (broken.position, broken.kind) == (5, BreakKind.MISSING)


def test_a_checker_stops_at_its_first_break() -> None:
    events, heads = _log(10)
    checker = ChainChecker(envelope_hash, TEST_KEYS)
    first = checker.feed([events[0], events[2]], heads)
    assert first is not None
    assert checker.feed(events[3:], heads) is first
    assert checker.finish() is first
