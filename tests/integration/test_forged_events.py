"""Someone who can write to the broker, or rewrite the database, cannot get an event applied.

Each test rebuilds an attack from the security review of issue 11 on the real PostgreSQL and broker.
"""

import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_devstack import Infra
from modelyard_devstack.processes import eventually
from modelyard_events.consumer import ProjectionRunner, SourceTopic
from modelyard_events.consumer.verified_runs import SourceTampered
from modelyard_events.envelope import EventEnvelope
from modelyard_events.hashing import RowHasher, envelope_hash
from modelyard_events.relay import Relay
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.sample_events import (
    SAMPLE_REGISTRY,
    TEST_CONTEXT,
    CounterIncremented,
    CounterOpened,
)
from modelyard_events.testing.sample_projection import CounterTotals, projected_totals
from modelyard_events.testing.signing import OTHER_SIGNER, TEST_KEYS, TEST_SIGNER
from modelyard_events.topics import dead_letter_topic
from modelyard_events.verify import verify_chain
from modelyard_events.wire import encode_envelope, message_headers
from tests.integration.support import counters_topic, relayed_counters, write_counters
from tests.integration.test_poison_and_tamper import _read, _total_is

pytestmark = pytest.mark.integration


def _forged_increment(genuine_first: EventEnvelope, amount: int, how: str) -> EventEnvelope:
    """An event at position 2 that links to the genuine position 1 but was never appended."""
    forged = EventEnvelope(
        **{
            **genuine_first.model_dump(),
            "event_id": uuid.uuid4(),
            "stream_version": 2,
            "position": 2,
            "type": CounterIncremented.type_name,
            "data": {"amount": amount, "note": ""},
            "prev_hash": genuine_first.hash,
            "hash": "b" * 64,
        }
    )
    if how == "bogus-hash":
        return forged
    return EventEnvelope(**{**forged.model_dump(), "hash": envelope_hash(forged)})  # a forger can hash


@pytest.mark.parametrize("how", ["bogus-hash", "recomputed-hash", "signed-with-an-unpinned-key"])
async def test_a_forged_message_on_the_broker_is_dead_lettered_and_never_applied(
    stack: Infra, engine: AsyncEngine, store: PostgresEventStore, how: str
) -> None:
    bootstrap, topic = stack.kafka_bootstrap_servers, counters_topic(store)
    async with relayed_counters(stack, engine, store) as runner:
        opened = await store.append("counter", "c", 0, [CounterOpened(name="c")], TEST_CONTEXT)
        await eventually(lambda: _total_is(engine, runner, {"c": 0}), what="the genuine first event")
        forged = _forged_increment(opened[0], 1000, how)
        head = OTHER_SIGNER.sign(2, forged.hash) if how == "signed-with-an-unpinned-key" else None
        await _produce(bootstrap, topic, encode_envelope(forged), message_headers(forged, head))
        await store.append("counter", "c", 1, [CounterIncremented(amount=7)], TEST_CONTEXT)
        await store.append("counter", "c", 2, [CounterIncremented(amount=5)], TEST_CONTEXT)

        await eventually(lambda: _total_is(engine, runner, {"c": 12}), what="the genuine events only")
        letters = await _read(bootstrap, dead_letter_topic(topic), count=1)
    assert [value for value, _ in letters] == [encode_envelope(forged)]
    reason = dict(letters[0][1])["error"].decode()
    expected = {
        "bogus-hash": "does not match its hash",
        "recomputed-hash": "differs from",
        "signed-with-an-unpinned-key": "not pinned",
    }[how]
    assert expected in reason
    assert runner.halted == {}


async def test_verify_with_the_pinned_key_catches_a_rewritten_suffix_and_head_row(
    engine: AsyncEngine, store: PostgresEventStore
) -> None:
    await write_counters(store, streams=3, increments=3)  # positions 1..12
    await store.signatures.flush()
    assert (await verify_chain(store, keys=TEST_KEYS)).ok

    await _rewrite_suffix(engine, store, from_position=9)

    assert (await verify_chain(store)).ok  # the chain alone links again: this is the attack
    report = await verify_chain(store, keys=TEST_KEYS)
    assert not report.ok
    assert report.broken_position == report.signed_through + 1 <= 9  # signatures may cover several
    assert "rewritten" in report.reason

    await _sql(engine, f"DELETE FROM {store.schema}.event_signatures WHERE position >= 9")
    report = await verify_chain(store, keys=TEST_KEYS)
    assert not report.ok
    assert report.broken_position == report.signed_through + 1 <= 9  # signatures may cover several
    assert "not covered by a signed head" in report.reason


async def test_a_service_restarting_signs_a_tail_a_crash_left_unsigned_but_not_an_altered_one(
    engine: AsyncEngine, store: PostgresEventStore
) -> None:
    await write_counters(store, streams=2, increments=2)  # positions 1..6
    await store.signatures.flush()
    await _sql(engine, f"DELETE FROM {store.schema}.event_signatures WHERE position > 4")  # the crash

    assert await store.sign_tail() >= 2  # 5 and 6 at least (signatures may cover several appends)
    assert (await verify_chain(store, keys=TEST_KEYS)).ok

    await store.append("counter", "counter-0", 3, [CounterIncremented(amount=1)], TEST_CONTEXT)
    await store.signatures.flush()
    await _sql(engine, f"DELETE FROM {store.schema}.event_signatures WHERE position = 7")
    await _rewrite_suffix(engine, store, from_position=6)
    with pytest.raises(Exception, match="altered"):
        await store.sign_tail()


async def test_a_source_whose_log_does_not_verify_is_halted_while_the_others_go_on(
    engine: AsyncEngine, store: PostgresEventStore, unique_schema: str
) -> None:
    other = PostgresEventStore(engine, f"{unique_schema}_b", signer=TEST_SIGNER)
    await other.create_schema()
    try:
        await store.append("counter", "a", 0, [CounterOpened(name="a")], TEST_CONTEXT)
        await store.append("counter", "a", 1, [CounterIncremented(amount=2)], TEST_CONTEXT)
        await other.append("counter", "b", 0, [CounterOpened(name="b")], TEST_CONTEXT)
        await other.append("counter", "b", 1, [CounterIncremented(amount=3)], TEST_CONTEXT)
        await store.signatures.flush()
        await other.signatures.flush()
        await _sql(engine, f"UPDATE {store.schema}.events SET data = replace(data, ':2', ':20')")
        projection = CounterTotals(schema=f"{unique_schema}_read")
        sources = [SourceTopic("a", "ta", store, TEST_KEYS), SourceTopic("b", "tb", other, TEST_KEYS)]
        runner = ProjectionRunner(engine, projection, SAMPLE_REGISTRY, sources, bootstrap_servers=None)
        await runner.create_tables()

        with pytest.raises(SourceTampered, match="does not match its hash"):
            await runner.catch_up()

        assert await projected_totals(engine, projection.schema) == {"b": 3}  # a page of a: none of it
        assert list(runner.halted) == ["a"]
    finally:
        await other.close()


async def _rewrite_suffix(engine: AsyncEngine, store: PostgresEventStore, from_position: int) -> None:
    """Edit the event at `from_position`, recompute every hash after it and update the head row."""
    rows = await store.read_rows(from_position - 1, 1000)
    previous = (await store.read_rows(from_position - 2, 1))[0].hash if from_position > 1 else "0" * 64
    hasher, changes = RowHasher(), []
    for index, row in enumerate(rows):
        data = row.data.replace('"amount":', '"amount":9') if index == 0 else row.data
        fields: dict[str, Any] = {**row._asdict(), "data": data, "prev_hash": previous}
        previous = hasher.hash(tuple(fields.values()))  # in COLUMNS order, as read
        changes.append({"p": row.position, "d": data, "pv": fields["prev_hash"], "h": previous})
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"UPDATE {store.schema}.events SET data = :d, prev_hash = :pv, hash = :h WHERE position = :p"
            ),
            changes,
        )
        await conn.execute(text(f"UPDATE {store.schema}.event_head SET last_hash = :h"), {"h": previous})


async def _produce(bootstrap: str, topic: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"c", headers=headers)
    finally:
        await producer.stop()


async def _sql(engine: AsyncEngine, statement: str) -> None:
    async with engine.begin() as conn:
        await conn.exec_driver_sql(statement)


async def test_an_event_the_broker_refuses_is_skipped_recorded_and_read_from_the_source(
    stack: Infra, engine: AsyncEngine, store: PostgresEventStore
) -> None:
    # A relay whose records may hold 4 kB stands for a broker whose message.max.bytes is below an event.
    relay = Relay(
        store,
        stack.database_url,
        stack.kafka_bootstrap_servers,
        counters_topic(store),
        max_request_bytes=4000,
    )
    async with relayed_counters(stack, engine, store, relay, reconcile_every_s=0.5) as runner:
        await store.append("counter", "c", 0, [CounterOpened(name="c")], TEST_CONTEXT)
        await store.append("counter", "c", 1, [CounterIncremented(amount=2, note="x" * 10_000)], TEST_CONTEXT)
        for version, amount in enumerate([3, 4], start=2):
            await store.append("counter", "c", version, [CounterIncremented(amount=amount)], TEST_CONTEXT)

        await eventually(lambda: _total_is(engine, runner, {"c": 9}), what="every event, the big one too")

        async def published_beyond_it() -> bool:
            return await relay.checkpoint() == 4

        await eventually(published_beyond_it, what="the relay to go past the refused event")
    async with engine.connect() as conn:
        skipped = (
            await conn.execute(text(f"SELECT position, error FROM {store.schema}.relay_skipped"))
        ).all()
    assert [row.position for row in skipped] == [2]
    assert "MessageSizeTooLarge" in skipped[0].error
    assert relay.skipped == 1
