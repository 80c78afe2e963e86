"""The trainer's positioned consumer of job events, when the broker comes back empty.

It starts at the end of every partition; after the broker lost everything, that position lies
beyond the new log's end. What was published since must still be read (from the new log's start):
Tansu does not answer such a fetch with OFFSET_OUT_OF_RANGE, so the consumer waited for the new log
to grow past its old position, skipping a dispatch (its job waited ~30 s for the lease to lapse in
make chaos). The worker checks every 2 s (rewind_if_log_lost); here it is called at once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from modelyard_devstack import EmbeddedBroker
from modelyard_trainer.worker.job_events import positioned_consumer, rewind_if_log_lost

pytestmark = pytest.mark.integration
TOPIC = "modelyard.trainer-test.events"


async def _publish(bootstrap: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(TOPIC, value, partition=0)
    finally:
        await producer.stop()


async def _read(consumer: object, count: int) -> list[bytes]:
    got: list[bytes] = []
    async with asyncio.timeout(60):
        while len(got) < count:
            batches = await consumer.getmany(timeout_ms=500)  # type: ignore[attr-defined]
            got.extend(record.value for records in batches.values() for record in records)
    return got


async def test_after_the_broker_restarts_empty_the_consumer_reads_what_was_published_since(
    tmp_path: Path,
) -> None:
    broker = EmbeddedBroker(tmp_path / "broker")
    bootstrap = broker.start()
    try:
        await _publish(bootstrap, [b"old"] * 5)
        consumer = await positioned_consumer(bootstrap, TOPIC)
        try:
            await _publish(bootstrap, [b"before"])
            assert await _read(consumer, 1) == [b"before"]  # from the end: position 6
            consumer.pause(*consumer.assignment())  # no fetch until the new broker has records
            broker.restart_empty()
            await _publish(bootstrap, [b"after-1", b"after-2"])  # offsets 0 and 1, below position 6
            assert [p.partition for p in await rewind_if_log_lost(consumer)] == [0]
            consumer.resume(*consumer.assignment())
            assert await _read(consumer, 2) == [b"after-1", b"after-2"]
            assert await rewind_if_log_lost(consumer) == []  # a position at the end is not lost
        finally:
            await consumer.stop()
    finally:
        broker.stop()
