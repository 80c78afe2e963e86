"""The catch-up's read-ahead: pages in order up to `through`, one read ahead of the one applied,
and a read left in flight is cancelled when the caller stops."""

from __future__ import annotations

import asyncio

from modelyard_events.consumer.runner import SourceTopic, _Prefetch
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_events.testing.sample_events import TEST_CONTEXT, CounterIncremented
from modelyard_events.testing.signing import TEST_KEYS, TEST_SIGNER

GENESIS = "0" * 64


async def _source(events: int) -> SourceTopic:
    store = InMemoryEventStore(signer=TEST_SIGNER)
    for n in range(events // 100):
        await store.append("counter", "c", n * 100, [CounterIncremented(amount=1)] * 100, TEST_CONTEXT)
    return SourceTopic("counter", "counter-topic", store, TEST_KEYS)


async def test_pages_come_in_order_up_to_through_and_then_none() -> None:
    pages = _Prefetch(await _source(2500), 0, GENESIS, through=2300)
    positions = []
    while page := await pages.next():
        positions += [e.position for e in page]
    await pages.close()
    assert positions == list(range(1, 2301))


class _SlowStore(InMemoryEventStore):
    """A source whose second read never answers until cancelled; events say when it hangs and ends."""

    def __init__(self) -> None:
        super().__init__(signer=TEST_SIGNER)
        self.reads = 0
        self.hanging, self.cancelled = asyncio.Event(), asyncio.Event()

    async def read_signed(self, after_position: int = 0, limit: int = 1000):  # type: ignore[no-untyped-def]
        self.reads += 1
        if self.reads > 1:
            self.hanging.set()
            try:
                await asyncio.Event().wait()  # nothing ever sets it: only a cancel ends this read
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        return await super().read_signed(after_position, limit)


async def test_a_read_ahead_still_in_flight_is_cancelled_when_the_caller_stops() -> None:
    store = _SlowStore()
    for n in range(11):
        await store.append("counter", "c", n * 100, [CounterIncremented(amount=1)] * 100, TEST_CONTEXT)
    pages = _Prefetch(SourceTopic("counter", "t", store, TEST_KEYS), 0, GENESIS, through=1100)

    first = await pages.next()  # a page of 1,000 arrives; the read of the next one hangs
    await asyncio.wait_for(store.hanging.wait(), timeout=5)
    await pages.close()

    assert [e.position for e in first] == list(range(1, 1001))
    assert store.cancelled.is_set()
