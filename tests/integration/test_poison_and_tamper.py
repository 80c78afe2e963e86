"""Poison messages go to the DLQ and the consumer goes on; a tampered log is caught by verify."""

import uuid
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_devstack import Infra
from modelyard_devstack.processes import eventually
from modelyard_events.consumer import BatchProjection, Decoded, ProjectionRunner, SourceTopic
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.replay import rebuild_projection
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.sample_events import (
    SAMPLE_REGISTRY,
    TEST_CONTEXT,
    CounterIncremented,
    CounterOpened,
)
from modelyard_events.testing.sample_projection import CounterTotals, projected_totals
from modelyard_events.testing.signing import TEST_KEYS
from modelyard_events.topics import dead_letter_topic
from modelyard_events.verify import verify_chain
from tests.integration.support import counters_topic, relayed_counters, write_counters

pytestmark = pytest.mark.integration


class CounterRenamed(DomainEvent):
    """A type the projection's registry has never heard of (a newer producer)."""

    type_name = "CounterRenamed"
    name: str


async def test_malformed_bytes_and_unknown_types_land_in_the_dlq_and_the_consumer_goes_on(
    stack: Infra, engine: AsyncEngine, store: PostgresEventStore
) -> None:
    bootstrap, topic = stack.kafka_bootstrap_servers, counters_topic(store)
    async with relayed_counters(stack, engine, store) as runner:
        await store.append("counter", "c", 0, [CounterOpened(name="c")], TEST_CONTEXT)
        await _produce(bootstrap, topic, [b"\x00\xffnot json", b'{"type": "CounterOpened"}'])
        await store.append("counter", "c", 1, [CounterRenamed(name="d")], TEST_CONTEXT)  # unknown downstream
        await store.append("counter", "c", 2, [CounterIncremented(amount=7)], TEST_CONTEXT)

        await eventually(lambda: _total_is(engine, runner, {"c": 7}), what="events after the poison")
        letters = await _read(bootstrap, dead_letter_topic(topic), count=3)
    errors = sorted(dict(headers)["error"].decode().split(":")[0] for _, headers in letters)
    assert errors == ["MalformedEvent", "MalformedEvent", "UnknownEventType"]
    assert b"\x00\xffnot json" in [value for value, _ in letters]


async def test_verify_names_an_edited_position(engine: AsyncEngine, store: PostgresEventStore) -> None:
    await write_counters(store, streams=3, increments=3)  # positions 1..12
    assert (await verify_chain(store)).ok

    edit = f"UPDATE {store.schema}.events SET data = replace(data, ':2', ':20') WHERE position = 9"
    await _sql(engine, edit)
    report = await verify_chain(store)
    assert (report.broken_position, report.ok) == (9, False)
    assert "edited" in report.reason


@pytest.mark.parametrize(
    ("tamper", "broken"),
    [
        ("DELETE FROM {s}.events WHERE position = 5", 5),
        ("DELETE FROM {s}.events WHERE position = 12", 12),
        (
            "UPDATE {s}.events SET position = -4 WHERE position = 4; "
            "UPDATE {s}.events SET position = 4 WHERE position = 7; "
            "UPDATE {s}.events SET position = 7 WHERE position = -4",
            4,
        ),
    ],
    ids=["deleted", "deleted-last", "swapped"],
)
async def test_verify_names_deleted_and_swapped_rows(
    engine: AsyncEngine, store: PostgresEventStore, tamper: str, broken: int
) -> None:
    await write_counters(store, streams=3, increments=3)
    await _sql(engine, tamper.format(s=store.schema))
    report = await verify_chain(store)
    assert report.broken_position == broken, report


async def _sql(engine: AsyncEngine, statement: str) -> None:
    async with engine.begin() as conn:
        await conn.exec_driver_sql(statement)


async def _total_is(engine: AsyncEngine, runner: ProjectionRunner, expected: dict[str, int]) -> bool:
    try:
        return await projected_totals(engine, runner.projection.schema) == expected
    except Exception:
        return False


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"c")
    finally:
        await producer.stop()


async def _read(bootstrap: str, topic: str, count: int) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=f"dlq-{uuid.uuid4().hex}"
    )
    await consumer.start()
    got: list[tuple[bytes, list[tuple[str, bytes]]]] = []
    try:

        async def enough() -> bool:
            batches = await consumer.getmany(timeout_ms=200)
            got.extend((r.value, list(r.headers)) for rs in batches.values() for r in rs)
            return len(got) >= count

        await eventually(enough, what=f"{count} dead letters")
    finally:
        await consumer.stop()
    return got


class CounterTotalsInBatches(CounterTotals):
    """CounterTotals as a BatchProjection that fails on an increment of 13 (batch or alone)."""

    batches = 0

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        if isinstance(event, CounterIncremented) and event.amount == 13:
            raise ValueError("13 is poison here")
        await super().apply(event, envelope, conn)

    async def apply_batch(self, events: Sequence[Decoded], conn: AsyncConnection) -> None:
        self.batches += 1
        for event, envelope in events:
            await self.apply(event, envelope, conn)


async def test_a_failing_batch_is_applied_one_by_one_and_only_the_poison_is_dead_lettered(
    engine: AsyncEngine, store: PostgresEventStore
) -> None:
    await store.append("counter", "c", 0, [CounterOpened(name="c")], TEST_CONTEXT)
    amounts = [1, 2, 13, 4, 5]
    for version, amount in enumerate(amounts, start=1):
        await store.append("counter", "c", version, [CounterIncremented(amount=amount)], TEST_CONTEXT)
    projection = CounterTotalsInBatches(schema=f"{store.schema}_read")
    assert isinstance(projection, BatchProjection)

    dead = await rebuild_projection(
        engine, projection, SAMPLE_REGISTRY, [SourceTopic("c", "t", store, TEST_KEYS)]
    )

    assert (dead, projection.batches) == (1, 1)
    assert await projected_totals(engine, projection.schema) == {"c": 1 + 2 + 4 + 5}
    async with engine.connect() as conn:
        times = (await conn.execute(text(f"SELECT times FROM {projection.schema}.applications"))).scalars()
        assert sorted(times) == [1] * 5  # the rolled-back batch left no trace
