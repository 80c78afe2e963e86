"""Time travel's pure parts: which events count at an instant, and an aggregate as JSON values."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from modelyard_events.as_of import plain, recorded_by
from modelyard_events.envelope import EventEnvelope
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_events.testing.sample_events import TEST_CONTEXT, CounterIncremented, CounterOpened

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class Colour(enum.Enum):
    RED = "red"


@dataclass(frozen=True)
class Inner:
    at: datetime
    tags: frozenset[str]


@dataclass(frozen=True)
class Aggregate:
    name: str
    colour: Colour
    inner: Inner
    opened: CounterOpened
    running: dict[str, str] = field(default_factory=dict)
    history: tuple[int, ...] = ()


def test_an_aggregate_becomes_json_values_with_sets_sorted_and_times_in_iso() -> None:
    value = Aggregate(
        "a", Colour.RED, Inner(T0, frozenset({"b", "a"})), CounterOpened(name="c"), {"m": "v1"}, (1, 2)
    )
    assert plain(value) == {
        "name": "a",
        "colour": "red",
        "inner": {"at": "2026-12-02T12:00:00+00:00", "tags": ["a", "b"]},
        "opened": {"name": "c"},
        "running": {"m": "v1"},
        "history": [1, 2],
    }
    json.dumps(plain(value))  # nothing left that JSON cannot hold


async def test_only_the_events_recorded_by_the_instant_count() -> None:
    store = InMemoryEventStore()
    await store.append("counter", "c1", 0, [CounterOpened(name="c")], TEST_CONTEXT)
    await store.append("counter", "c1", 1, [CounterIncremented(amount=1)], TEST_CONTEXT)
    opened, incremented = await store.read_stream("c1")
    stream = [
        EventEnvelope.model_validate({**opened.model_dump(), "occurred_at": T0}),
        EventEnvelope.model_validate({**incremented.model_dump(), "occurred_at": T0 + timedelta(seconds=10)}),
    ]
    assert [e.type for e in recorded_by(stream, T0 - timedelta(seconds=1))] == []
    assert [e.type for e in recorded_by(stream, T0)] == ["CounterOpened"]
    later = recorded_by(stream, T0 + timedelta(seconds=10))
    assert [e.type for e in later] == ["CounterOpened", "CounterIncremented"]
