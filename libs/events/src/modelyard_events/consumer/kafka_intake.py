"""The projection runner's Kafka intake: a FastStream batch subscriber, acknowledged by hand.

A batch's offsets are committed (`ack`) only after the runner's transaction for it has committed. A
batch whose handling fails is `nack`ed, which rewinds each of its partitions to the batch's first
record, so it is read again after a backoff; nothing past it is committed meanwhile. On a rebalance
the partitions leave only once the batch being applied has finished, and the topics assigned are
handed to the runner, which reads their sources at once (a replica that left may have left a hole).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from itertools import chain
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.message import StreamMessage

from modelyard_events.kafka_security import KafkaSecurity, faststream_security
from modelyard_events.topics import fetch_max_wait_ms

log = logging.getLogger(__name__)
# FastStream's own lines (a consumer's partitions, its tasks at shutdown) only when they warn.
_FASTSTREAM_LOG = logging.getLogger(f"{__name__}.faststream")
_FASTSTREAM_LOG.setLevel(logging.WARNING)

BatchHandler = Callable[[list[ConsumerRecord[Any, Any]]], Awaitable[None]]
"""Apply a poll's records (whether the partitions are drained is `drained_at_broker`'s to say)."""

_MAX_BACKOFF_S = 5.0
_END_OFFSETS_TIMEOUT_S = 1.0
# How long one poll waits for records; it returns as soon as any arrive, so this only sets how often
# an idle consumer's loop turns (the broker is still asked every fetch_max_wait_ms() by aiokafka's
# fetcher). It also bounds how long a stop waits for the loop.
POLL_WAIT_MS = 200


class LongPollBatches(BatchSubscriber):
    """FastStream's batch subscriber, less its nap after an empty poll.

    FastStream's `get_msg` sleeps `batch_timeout_ms` after a poll that found nothing, and a record
    landing meanwhile waits out the nap: at 100 events/s that cost the projections 3-5 ms at p50
    (10-20%). A poll that waits `POLL_WAIT_MS` but returns on the first record needs no nap: the
    loop never spins, as aiokafka's `getmany` blocks until records or the timeout.
    """

    __slots__ = ()
    caught_up = True  # set on each poll (an instance attribute: FastStream's classes have a __dict__)

    async def get_msg(self, consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord[Any, Any], ...]:
        batches = await consumer.getmany(timeout_ms=POLL_WAIT_MS, max_records=self.max_records)
        self.caught_up = await caught_up(consumer)
        return tuple(chain.from_iterable(batches.values()))


async def at_broker_end(consumer: AIOKafkaConsumer, topics: Collection[str]) -> bool:
    """Whether the consumer's assigned partitions of `topics` have reached their ends on the broker now.

    `caught_up` compares with the high watermarks of the last fetch, which are stale as soon as a
    producer writes again; a broker that answers a fetch at the end of its wait (Tansu, every
    100 ms) leaves them stale most of the time. Under a metrics load the consumer then looked drained
    while the broker held hundreds more of a partition's records, the hole among them (measured: 7 of
    54 checks, a partition 731 records behind). One ListOffsets request asks the broker itself, for
    the topics whose holes are due only: a busy topic must not hold back a quiet one's hole.
    """
    partitions = [partition for partition in consumer.assignment() if partition.topic in topics]
    for partition in partitions:  # behind what the last fetch saw: no need to ask
        highwater = consumer.highwater(partition)
        if highwater is not None and await consumer.position(partition) < highwater:
            return False
    if not partitions:
        return True
    ends = await consumer.end_offsets(partitions)
    for partition in partitions:
        if await consumer.position(partition) < ends[partition]:
            return False
    return True


async def caught_up(consumer: AIOKafkaConsumer) -> bool:
    """Whether the consumer has taken every record its partitions held at their last fetch.

    A partition behind its high watermark has records in the consumer's buffer or still on the
    broker: a hole may well be among them. One not fetched yet counts as caught up (nothing known).
    """
    try:
        for partition in consumer.assignment():
            highwater = consumer.highwater(partition)
            if highwater is not None and await consumer.position(partition) < highwater:
                return False
    except (AssertionError, IllegalStateError):  # a rebalance took the partition meanwhile
        pass
    return True


class KafkaIntake:
    """One consumer group's subscription to `topics`, delivering batches to `handle` under `lock`.

    The lock is the runner's: its timers (the gap deadline, the reconcile) take it too, so a batch, a
    deadline and a reconcile never interleave in one read model.
    """

    def __init__(
        self,
        topics: list[str],
        *,
        bootstrap_servers: str,
        security: KafkaSecurity | None,
        group_id: str,
        max_records: int,
        handle: BatchHandler,
        lock: asyncio.Lock,
        on_assigned: Callable[[set[str]], None],
    ) -> None:
        self._handle, self._lock, self._max_records = handle, lock, max_records
        self._backoff = 0.0
        self._offsets_failing = False
        self._broker = KafkaBroker(
            bootstrap_servers,
            security=faststream_security(security),
            logger=_FASTSTREAM_LOG,
            log_level=logging.DEBUG,  # its line per batch; its consumer errors still log at ERROR
            client_id=group_id,
        )
        subscriber = self._broker.subscriber(
            *topics,
            batch=True,
            group_id=group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_max_wait_ms(),
            max_records=max_records,
            listener=_Rebalance(lock, on_assigned),
            decoder=_undecoded,
        )
        # FastStream has no option for how a batch subscriber polls; the subclass changes only
        # that (libs/events/tests/test_kafka_intake_polling.py checks it against the FastStream installed).
        subscriber.__class__ = LongPollBatches
        subscriber(self._on_batch)
        self._subscriber: LongPollBatches = subscriber  # type: ignore[assignment]

    @property
    def drained(self) -> bool:
        """Whether the last poll left nothing to read: every assigned partition at its high watermark."""
        return self._subscriber.caught_up

    async def drained_at_broker(self, topics: Collection[str]) -> bool:
        """Whether the partitions of `topics` are drained, asking the broker's end offsets (a round
        trip: for a hole's deadline, not for every batch); the last poll's answer when the broker
        cannot say."""
        consumer = self._subscriber.consumer
        if consumer is None:
            return self.drained
        try:
            async with asyncio.timeout(_END_OFFSETS_TIMEOUT_S):  # the timers must not stall on it
                drained = await at_broker_end(consumer, topics)
        except (AssertionError, IllegalStateError):  # a rebalance took a partition meanwhile
            return self.drained
        except (KafkaError, TimeoutError) as error:
            if not self._offsets_failing:  # once per failing spell, not at every timer tick
                log.warning("end offsets unavailable (%r): using the last fetch's", error)
            self._offsets_failing = True
            return self.drained
        self._offsets_failing = False
        return drained

    async def start(self) -> None:
        """Join the group and start delivering (raises when the brokers cannot be reached)."""
        await self._broker.start()

    async def stop(self) -> None:
        """Leave the group once the batch in flight is done."""
        await self._broker.stop()

    async def _on_batch(self, message: KafkaMessage) -> None:
        records: list[ConsumerRecord[Any, Any]] = list(message.raw_message)
        try:
            async with self._lock:
                await self._handle(records)
        except Exception as error:
            await message.nack()
            self._backoff = min(max(self._backoff * 2, 0.1), _MAX_BACKOFF_S)
            log.warning(
                "a batch of %d failed (%r); reading it again in %.1f s", len(records), error, self._backoff
            )
            await asyncio.sleep(self._backoff)
            return
        self._backoff = 0.0
        # Held early arrivals are committed too: the source, not Kafka, is the record, and a hole
        # they leave after a crash is found and read from the source.
        await message.ack()


async def _undecoded(message: StreamMessage[Any]) -> None:
    """No body for the handler: the runner decodes and checks each record's bytes itself (FastStream's
    default decoder would parse every message as JSON first, a twentieth of a busy consumer's time)."""
    return None


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, lock: asyncio.Lock, on_assigned: Callable[[set[str]], None]) -> None:
        self._lock, self._on_assigned = lock, on_assigned

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:  # the batch being applied finishes its transaction first
            pass

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._on_assigned({partition.topic for partition in assigned})
