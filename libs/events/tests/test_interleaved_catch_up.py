"""How an interleaved catch-up orders several sources' events: by the time they were recorded,
never reordering a source's own events, and never past a source that has more to read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelyard_events.consumer.runner import SourceTopic, _Cursor, next_run
from modelyard_events.envelope import EventEnvelope
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_events.testing.signing import TEST_KEYS

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _event(position: int, seconds: float) -> EventEnvelope:
    return EventEnvelope.model_validate(
        {
            "event_id": f"00000000-0000-0000-0000-{position:012d}",
            "stream_type": "s",
            "stream_id": "s",
            "stream_version": position,
            "position": position,
            "type": "T",
            "schema_version": 1,
            "occurred_at": T0 + timedelta(seconds=seconds),
            "actor": {"subject": "a", "roles": []},
            "org_id": None,
            "correlation_id": "c",
            "causation_id": None,
            "data": {},
            "prev_hash": "p",
            "hash": "h",
        }
    )


def _cursor(name: str, *seconds: float, done: bool = True) -> _Cursor:
    cursor = _Cursor(SourceTopic(name, name, InMemoryEventStore(), TEST_KEYS), 0, "")
    cursor.buffer = [_event(n + 1, s) for n, s in enumerate(seconds)]
    cursor.done = done
    return cursor


def _drain(cursors: list[_Cursor]) -> list[tuple[str, float]]:
    order = []
    while run := next_run(cursors):
        cursor, events = run
        order += [(cursor.source.name, (e.occurred_at - T0).total_seconds()) for e in events]
    return order


def test_events_go_in_the_order_they_were_recorded_across_sources() -> None:
    jobs, trainer = _cursor("job", 1, 2, 5), _cursor("trainer", 3, 4, 6)
    assert _drain([trainer, jobs]) == [
        ("job", 1),
        ("job", 2),
        ("trainer", 3),
        ("trainer", 4),
        ("job", 5),
        ("trainer", 6),
    ]


def test_a_source_own_order_is_kept_even_when_its_clock_went_back() -> None:
    # Positions are given at commit, times before it: a later position may carry an earlier time.
    jobs, trainer = _cursor("job", 1, 4, 2), _cursor("trainer", 3)
    assert _drain([jobs, trainer]) == [("job", 1), ("trainer", 3), ("job", 4), ("job", 2)]


def test_ties_go_to_the_source_listed_first() -> None:
    a, b = _cursor("a", 1, 2), _cursor("b", 1, 2)
    assert _drain([a, b]) == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_nothing_passes_a_source_that_has_more_to_read() -> None:
    ready, unread = _cursor("ready", 1), _cursor("unread", done=False)
    assert next_run([ready, unread]) is None
    unread.done = True
    assert _drain([ready, unread]) == [("ready", 1)]
