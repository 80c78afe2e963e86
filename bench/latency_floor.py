"""The floor of a latency through our stack: one PostgreSQL commit, then N raw Kafka hops.

Issue 16: absolute latencies do not hold on these machines (58 ms one day, 121 ms another, same
code), so a latency benchmark measures this floor in the same run and reports its ratio to it. One
sample: INSERT + COMMIT a row into a plain table, then N times produce it (aiokafka, acks=all) to a
topic and take it with a consumer already positioned at the topic's end, one sample at a time. It is
what any design that commits and then hands over through Kafka N times pays, without our store,
relay, projections or services around it.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text

from modelyard_events.db import create_engine
from modelyard_events.topics import ensure_topics, fetch_max_wait_ms


async def floor_latencies_ms(
    url: str, bootstrap: str, hops: int, samples: int, warmup: int = 5
) -> list[float]:
    """`samples` measurements (ms) of one commit followed by `hops` produce → consume hops."""
    run = uuid.uuid4().hex[:8]
    topics = [f"floor-{run}-{hop}" for hop in range(hops)]
    await ensure_topics(bootstrap, topics)
    engine = create_engine(url)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=fetch_max_wait_ms()
    )
    await producer.start()
    await consumer.start()
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE TABLE floor_{run} (id text PRIMARY KEY, data text NOT NULL)"))
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or {0}]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        measured = []
        for i in range(warmup + samples):
            key = f"s-{i}".encode()
            began = time.monotonic()
            async with engine.begin() as conn:
                await conn.execute(
                    text(f"INSERT INTO floor_{run} VALUES (:k, :d)"), {"k": key.decode(), "d": "x" * 200}
                )
            for topic in topics:
                await producer.send_and_wait(topic, b"x" * 200, key=key)
                await _received(consumer, topic, key)
            if i >= warmup:
                measured.append((time.monotonic() - began) * 1000)
        return measured
    finally:
        await consumer.stop()
        await producer.stop()
        await engine.dispose()


async def _received(consumer: AIOKafkaConsumer, topic: str, key: bytes) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=1000)
        if any(r.topic == topic and r.key == key for records in batches.values() for r in records):
            return


def run_floor(url: str, bootstrap: str, hops: int, samples: int) -> list[float]:
    """`floor_latencies_ms` from synchronous code."""
    return asyncio.run(floor_latencies_ms(url, bootstrap, hops, samples))
