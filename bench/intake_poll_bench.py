"""The projection runner's Kafka intake: FastStream's batch subscriber as shipped (a 10 ms nap after
an empty poll) against ours (`LongPollBatches`, no nap), one consumer, same broker, alternating.

Delivery latency = the intake handing a record to the runner − the moment it was produced. Run with
MODELYARD_KAFKA_FETCH_WAIT_MS=10 to compare with the numbers in bench/README.md:

    MODELYARD_KAFKA_FETCH_WAIT_MS=10 .venv/bin/python bench/intake_poll_bench.py
"""

from __future__ import annotations

import asyncio
import statistics
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream.kafka.subscriber.usecase import BatchSubscriber

from modelyard_devstack import EmbeddedBroker
from modelyard_events.consumer.kafka_intake import KafkaIntake
from modelyard_events.topics import ensure_topics

FASTSTREAM_NAP_MS = 10  # what the intake set before it had its own subscriber


async def _latencies(bootstrap: str, topic: str, *, nap: bool, interval_s: float, count: int) -> list[float]:
    latencies: list[float] = []

    async def handle(records: list[Any]) -> None:
        now = time.monotonic()
        latencies.extend((now - struct.unpack("d", record.value)[0]) * 1000 for record in records)

    intake = KafkaIntake(
        [topic],
        bootstrap_servers=bootstrap,
        security=None,
        group_id=f"g-{topic}",
        max_records=500,
        handle=handle,
        lock=asyncio.Lock(),
        on_assigned=lambda topics: None,
    )
    if nap:
        (subscriber,) = intake._broker.subscribers
        subscriber.__class__ = BatchSubscriber
        subscriber.batch_timeout_ms = FASTSTREAM_NAP_MS  # type: ignore[attr-defined]
    await intake.start()
    await asyncio.sleep(3)  # joined and assigned
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    for _ in range(count):
        await asyncio.sleep(interval_s)
        await producer.send_and_wait(topic, struct.pack("d", time.monotonic()))
    await asyncio.sleep(0.5)
    await producer.stop()
    await intake.stop()
    return latencies


async def main() -> None:
    broker = EmbeddedBroker(Path(tempfile.mkdtemp()))
    bootstrap = broker.start()
    try:
        for round_ in range(2):
            for nap in (True, False):
                for interval_s in (0.01, 0.3):
                    topic = f"poll-{round_}-{int(nap)}-{int(interval_s * 1000)}"
                    await ensure_topics(bootstrap, [topic], partitions=1)
                    count = 200 if interval_s < 0.1 else 25
                    got = sorted(
                        await _latencies(bootstrap, topic, nap=nap, interval_s=interval_s, count=count)
                    )
                    side = f"FastStream, {FASTSTREAM_NAP_MS} ms nap" if nap else "LongPollBatches"
                    print(
                        f"round {round_} {side:<24} an event every {interval_s * 1000:.0f} ms: "
                        f"p50 {statistics.median(got):.1f} ms, p99 {got[int(len(got) * 0.99) - 1]:.1f} ms",
                        flush=True,
                    )
    finally:
        broker.stop()


if __name__ == "__main__":
    asyncio.run(main())
