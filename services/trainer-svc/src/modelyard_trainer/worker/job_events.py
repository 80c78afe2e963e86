"""The job events a trainer reads: every partition of `modelyard.job.events`, from the end, no group.

Raw aiokafka, not FastStream's subscriber: it must seek to the end and resolve its positions
before it returns, which a subscriber that starts consuming on its own does not offer.

No consumer group, because every trainer must see the dispatches addressed to it;
from the end, because a dispatch made before this trainer announced itself cannot
name it (a restarted trainer with the same id lets its old leases lapse).

The broker is not trusted: a message acts only once a head signed with job-svc's pinned key links
to it (libs/events SignedTail), so a forged dispatch (another dataset, another trainer) is never
run. A bad message is logged and skipped here; job-svc's own views consume the same topic and
dead-letter it, so the DLQ holds it once, not once per trainer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from modelyard_events.consumer.signed_tail import SignedTail
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.errors import EventStoreError
from modelyard_events.kafka_security import KafkaSecurity, kafka_consumer
from modelyard_events.schemas.jobs import JOB_EVENTS
from modelyard_events.signing import HeadVerifier
from modelyard_events.topics import ensure_topics, events_topic, fetch_max_wait_ms
from modelyard_events.wire import decode_message

log = logging.getLogger(__name__)

JOB_TOPIC = events_topic("job")
_METADATA_WAIT_S = 30.0
_LOST_LOG_CHECK_S = 2.0


async def positioned_consumer(
    bootstrap_servers: str, topic: str = JOB_TOPIC, *, security: KafkaSecurity | None = None
) -> AIOKafkaConsumer:
    """A started consumer of all partitions of `topic`, its position fixed at the current end.

    The positions are resolved before this returns, so everything published after
    it (a dispatch made after our first heartbeat) will be read. `security`: how it connects
    (plaintext when None).
    """
    await ensure_topics(bootstrap_servers, [topic], security=security)
    consumer = kafka_consumer(
        bootstrap_servers=bootstrap_servers,
        security=security,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=fetch_max_wait_ms(),
        # Only a position the broker no longer has is reset (ours is set by seek_to_end): one that
        # came back empty has a new log below it, all of it published since (rewind_if_log_lost).
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def job_events(
    consumer: AIOKafkaConsumer, keys: HeadVerifier
) -> AsyncIterator[tuple[EventEnvelope, DomainEvent]]:
    """Each job event that job-svc's signed head proves, in log order, with its envelope.

    Anything else (undecodable, a hash or signature that does not verify, an unknown type) is
    skipped with a log line.
    """
    tail = SignedTail(keys)
    watchdog = asyncio.create_task(_watch_for_lost_logs(consumer))
    try:
        async for message in consumer:
            for envelope, event in _proven(tail, message):
                yield envelope, event
    finally:
        watchdog.cancel()


def _proven(tail: SignedTail, message: Any) -> Iterator[tuple[EventEnvelope, DomainEvent]]:
    try:
        proven = tail.offer(decode_message(message.value, message.headers or ()))
    except EventStoreError as error:
        log.warning("skipped message %s[%d]@%d: %s", message.topic, message.partition, message.offset, error)
        return
    for envelope in proven:
        try:
            event = JOB_EVENTS.decode(envelope)
        except EventStoreError as error:
            log.warning("skipped job event at position %d: %s", envelope.position, error)
            continue
        yield envelope, event


async def rewind_if_log_lost(consumer: AIOKafkaConsumer) -> list[TopicPartition]:
    """Move each partition whose position lies beyond its log's end to the log's start; those moved.

    A position past the end means the broker lost the log (restarted empty) and everything in the
    new one was published since. Kafka answers such a fetch with OFFSET_OUT_OF_RANGE, and
    `auto_offset_reset` rewinds; Tansu answers with nothing until the new log grows past the old
    position, which skipped what came before (a dispatch whose job then waited for its lease to
    lapse, ~30 s, in make chaos).
    """
    partitions = sorted(consumer.assignment())
    # Positions before ends: a log only grows, so a position read first can pass an end read after
    # it only if the log was lost (the other order would take records consumed meanwhile for a loss).
    positions = {partition: await consumer.position(partition) for partition in partitions}
    ends = await consumer.end_offsets(partitions)
    lost = [partition for partition in partitions if positions[partition] > ends[partition]]
    for partition in lost:
        log.warning(
            "the broker lost %s (now ends at %d): reading it from its start", partition, ends[partition]
        )
    if lost:
        await consumer.seek_to_beginning(*lost)
    return lost


async def _watch_for_lost_logs(consumer: AIOKafkaConsumer) -> None:
    while True:
        await asyncio.sleep(_LOST_LOG_CHECK_S)
        try:
            await rewind_if_log_lost(consumer)
        except (KafkaError, OSError) as error:
            log.debug("lost-log check skipped: %r", error)  # the broker is away; try again later


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    # A topic created a moment ago may take a metadata refresh or two to show its partitions.
    deadline = time.monotonic() + _METADATA_WAIT_S
    while True:
        await consumer.topics()  # refreshes the cluster metadata
        numbers = consumer.partitions_for_topic(topic)
        if numbers:
            return [TopicPartition(topic, number) for number in sorted(numbers)]
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} has no partitions after {_METADATA_WAIT_S:.0f} s")
        await asyncio.sleep(0.2)
