"""The behaviour every EventStore adapter promises; subclass with a `store` fixture."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from modelyard_events.envelope import GENESIS_HASH, Actor, CommandContext
from modelyard_events.errors import ConcurrencyConflict, MalformedEvent
from modelyard_events.hashing import envelope_hash
from modelyard_events.store.pending import MAX_PAYLOAD_BYTES
from modelyard_events.store.ports import EventStore, SignedPage
from modelyard_events.testing.sample_events import (
    SAMPLE_REGISTRY,
    TEST_CONTEXT,
    CounterIncremented,
    CounterOpened,
)
from modelyard_events.testing.signing import TEST_KEYS


class EventStoreContract:
    """Subclasses provide an async `store` fixture returning an empty store signing with TEST_SIGNER."""

    async def test_signed_pages_end_at_heads_that_verify(self, store: EventStore) -> None:
        await store.append("counter", "c-1", 0, [CounterOpened(name="a")], TEST_CONTEXT)
        await store.append(
            "counter", "c-1", 1, [CounterIncremented(amount=1), CounterIncremented(amount=2)], TEST_CONTEXT
        )
        page = await _signed_through(store, 3)
        assert [e.position for e in page.events] == [1, 2, 3]
        assert page.heads[-1].position == 3
        assert page.heads[-1].hash == page.events[-1].hash
        assert all(TEST_KEYS.verifies(head) for head in page.heads)
        later = await store.read_signed(1, 1)  # one append of two events: the page ends at its head
        assert [e.position for e in later.events] == [2, 3]
        assert (await store.read_signed(3)).events == []
        assert (await store.read_signed(2**63 - 1, 1)).events == []  # how ReadEvents asks for the head

    async def test_append_assigns_versions_positions_and_a_hash_chain(self, store: EventStore) -> None:
        first = await store.append("counter", "c-1", 0, [CounterOpened(name="a")], TEST_CONTEXT)
        more = await store.append(
            "counter", "c-1", 1, [CounterIncremented(amount=1), CounterIncremented(amount=2)], TEST_CONTEXT
        )
        log = await store.read_all()
        assert [e.position for e in log] == [1, 2, 3]
        assert [e.stream_version for e in log] == [1, 2, 3]
        assert log == first + more
        assert log[0].prev_hash == GENESIS_HASH
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(log))
        assert all(envelope_hash(e) == e.hash for e in log)

    async def test_read_streams_returns_each_stream_in_order_and_empty_for_unknown(
        self, store: EventStore
    ) -> None:
        await store.append("counter", "c-1", 0, [CounterOpened(name="a")], TEST_CONTEXT)
        await store.append("counter", "c-2", 0, [CounterOpened(name="b")], TEST_CONTEXT)
        await store.append("counter", "c-1", 1, [CounterIncremented(amount=3)], TEST_CONTEXT)
        streams = await store.read_streams(["c-1", "c-2", "nope"])
        assert [e.stream_version for e in streams["c-1"]] == [1, 2]
        assert streams["c-1"] == await store.read_stream("c-1")
        assert [e.stream_id for e in streams["c-2"]] == ["c-2"]
        assert streams["nope"] == []
        assert await store.read_streams([]) == {}

    async def test_stale_expected_version_is_a_conflict_and_writes_nothing(self, store: EventStore) -> None:
        await store.append("counter", "c-1", 0, [CounterOpened(name="a")], TEST_CONTEXT)
        with pytest.raises(ConcurrencyConflict) as raised:
            await store.append("counter", "c-1", 0, [CounterOpened(name="b")], TEST_CONTEXT)
        assert raised.value.actual_version == 1
        assert raised.value.retryable
        assert len(await store.read_all()) == 1

    async def test_concurrent_appends_to_one_stream_write_each_version_once(self, store: EventStore) -> None:
        await store.append("counter", "c-1", 0, [CounterOpened(name="a")], TEST_CONTEXT)
        attempts = [
            store.append("counter", "c-1", 1, [CounterIncremented(amount=i)], TEST_CONTEXT) for i in range(8)
        ]
        outcomes = await asyncio.gather(*attempts, return_exceptions=True)
        winners = [o for o in outcomes if isinstance(o, list)]
        assert len(winners) == 1
        assert all(isinstance(o, ConcurrencyConflict) for o in outcomes if o not in winners)
        assert [e.stream_version for e in await store.read_stream("c-1")] == [1, 2]

    async def test_read_stream_and_read_all_page_in_order(self, store: EventStore) -> None:
        await store.append("counter", "a", 0, [CounterOpened(name="a")], TEST_CONTEXT)
        await store.append("counter", "b", 0, [CounterOpened(name="b")], TEST_CONTEXT)
        await store.append("counter", "a", 1, [CounterIncremented(amount=5)], TEST_CONTEXT)
        assert [e.stream_version for e in await store.read_stream("a", after_version=1)] == [2]
        assert [e.position for e in await store.read_all(after_position=1, limit=1)] == [2]
        assert await store.head_position() == 3

    async def test_read_stream_reads_at_most_its_limit(self, store: EventStore) -> None:
        events = [CounterOpened(name="a"), *[CounterIncremented(amount=n) for n in range(1, 6)]]
        await store.append("counter", "a", 0, events, TEST_CONTEXT)
        assert [e.stream_version for e in await store.read_stream("a", 2, limit=1)] == [3]
        assert [e.stream_version for e in await store.read_stream("a", limit=2)] == [1, 2]
        assert [e.stream_version for e in await store.read_stream("a", 4, limit=None)] == [5, 6]
        assert await store.read_stream("a", 6, limit=1) == []

    async def test_envelope_carries_context_and_decodes(self, store: EventStore) -> None:
        [recorded] = await store.append("counter", "c-1", 0, [CounterOpened(name="x")], TEST_CONTEXT)
        [read] = await store.read_stream("c-1")
        assert read == recorded
        assert read.actor.subject == "tester"
        assert read.org_id == "org-1"
        assert read.correlation_id == str(read.event_id)
        assert SAMPLE_REGISTRY.decode(read) == CounterOpened(name="x")

    @pytest.mark.parametrize(
        "awkward",
        ['q"uo\\te', "{br,aces}", "NULL", " spaced ", 'é 𝄞 \\"', ""],
        ids=["quote-backslash", "braces-comma", "null-word", "spaces", "unicode-escapes", "empty"],
    )
    async def test_any_text_in_any_field_is_stored_as_given(self, store: EventStore, awkward: str) -> None:
        """Per-request fields travel as PostgreSQL array literals: quoting must not bend any text."""
        context = CommandContext(
            actor=Actor(subject=f"s{awkward}", roles=(f"r{awkward}",)),
            org_id=awkward,
            correlation_id=f"c{awkward}",
            causation_id=f"k{awkward}",
        )
        stream = f"stream{awkward}"
        recorded = await store.append(
            f"type{awkward}", stream, 0, [CounterOpened(name=awkward), CounterIncremented(amount=1)], context
        )
        read = await store.read_stream(stream)
        assert read == recorded
        assert (read[0].org_id, read[0].correlation_id, read[0].causation_id) == (
            awkward,
            f"c{awkward}",
            f"k{awkward}",
        )
        assert (read[0].stream_type, read[0].actor) == (f"type{awkward}", context.actor)
        assert all(envelope_hash(e) == e.hash for e in read)

    async def test_an_empty_append_is_refused(self, store: EventStore) -> None:
        with pytest.raises(MalformedEvent):
            await store.append("counter", "c-1", 0, [], TEST_CONTEXT)

    async def test_an_event_over_the_size_cap_is_refused_and_nothing_is_written(
        self, store: EventStore
    ) -> None:
        huge = CounterIncremented(amount=1, note="x" * (MAX_PAYLOAD_BYTES + 1))
        with pytest.raises(MalformedEvent, match="holds at most 262,144"):
            await store.append("counter", "c-1", 0, [CounterOpened(name="c"), huge], TEST_CONTEXT)
        assert await store.read_all() == []


async def _signed_through(store: EventStore, position: int, timeout_s: float = 10.0) -> SignedPage:
    """The first page, once the store's signature (written just after the append) covers `position`."""
    async with asyncio.timeout(timeout_s):
        while True:
            page = await store.read_signed()
            if page.heads and page.heads[-1].position >= position:
                return page
            await asyncio.sleep(0.01)
