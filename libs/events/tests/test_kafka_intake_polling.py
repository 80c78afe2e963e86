"""The intake's batch subscriber polls without FastStream's nap after an empty poll.

The consumer here is a stand-in with only `getmany`: what is checked is how the subscriber calls it,
not Kafka (tests/integration/test_kafka_intake.py runs the intake on the real broker).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError
from faststream.kafka.subscriber import usecase
from faststream.kafka.subscriber.usecase import BatchSubscriber

from modelyard_events.consumer.kafka_intake import POLL_WAIT_MS, KafkaIntake, LongPollBatches, at_broker_end


class _Polled:
    def __init__(
        self,
        batches: dict[TopicPartition, list[str]],
        offsets: dict[TopicPartition, tuple[int, int | None]] | None = None,
        ends: dict[TopicPartition, int] | KafkaError | str | None = None,
    ) -> None:
        self.batches, self.calls = batches, list[tuple[int, int | None]]()
        self.offsets = offsets or {}  # partition → (position, high watermark)
        self.ends = ends or {}  # partition → its end on the broker now (or the error asking raises)
        self.asked = 0

    async def getmany(self, *, timeout_ms: int, max_records: int | None) -> dict[TopicPartition, list[str]]:
        self.calls.append((timeout_ms, max_records))
        return self.batches

    def assignment(self) -> set[TopicPartition]:
        return set(self.offsets)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.offsets[partition][1]

    async def position(self, partition: TopicPartition) -> int:
        return self.offsets[partition][0]

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked += 1
        if isinstance(self.ends, KafkaError):
            raise self.ends
        if self.ends == "hangs":
            await asyncio.Event().wait()
        assert isinstance(self.ends, dict)
        return {partition: self.ends[partition] for partition in partitions}


def _intake() -> KafkaIntake:
    async def handle(records: list[Any]) -> None:
        pass

    return KafkaIntake(
        ["t"],
        bootstrap_servers="127.0.0.1:1",  # never connected: start() is not called
        security=None,
        group_id="g",
        max_records=500,
        handle=handle,
        lock=asyncio.Lock(),
        on_assigned=lambda topics: None,
    )


def _subscriber(intake: KafkaIntake) -> BatchSubscriber:
    (subscriber,) = intake._broker.subscribers
    assert isinstance(subscriber, BatchSubscriber)
    return subscriber


@pytest.fixture
def naps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    taken: list[float] = []

    async def nap(seconds: float) -> None:
        taken.append(seconds)

    monkeypatch.setattr(usecase.anyio, "sleep", nap)  # the nap FastStream takes
    return taken


async def test_the_intake_subscribes_with_the_long_poll_subscriber() -> None:
    assert type(_subscriber(_intake())) is LongPollBatches


async def test_an_empty_poll_returns_at_once_without_a_nap(naps: list[float]) -> None:
    consumer = _Polled({})
    assert await _subscriber(_intake()).get_msg(consumer) == ()
    assert consumer.calls == [(POLL_WAIT_MS, 500)]
    assert naps == []


async def test_a_poll_returns_every_partition_s_records_in_one_batch(naps: list[float]) -> None:
    consumer = _Polled({TopicPartition("t", 0): ["a", "b"], TopicPartition("t", 1): ["c"]})
    assert await _subscriber(_intake()).get_msg(consumer) == ("a", "b", "c")
    assert naps == []


async def test_faststream_itself_still_naps_after_an_empty_poll(naps: list[float]) -> None:
    """The reason for LongPollBatches: when a FastStream upgrade drops the nap, this fails and the
    subclass can go."""
    subscriber = _subscriber(_intake())
    await BatchSubscriber.get_msg(subscriber, _Polled({}))
    assert naps, "FastStream no longer naps after an empty poll"
    assert naps[0] > 0


async def test_a_poll_that_leaves_a_partition_behind_its_high_watermark_is_not_drained() -> None:
    """A hole's event may be among the records still to take: the runner keeps waiting for Kafka."""
    intake = _intake()
    one, two = TopicPartition("t", 0), TopicPartition("t", 1)
    await _subscriber(intake).get_msg(_Polled({one: ["a"]}, {one: (10, 10), two: (3, 40)}))
    assert not intake.drained
    await _subscriber(intake).get_msg(_Polled({two: ["b"]}, {one: (10, 10), two: (40, 40)}))
    assert intake.drained


async def test_a_partition_not_fetched_yet_does_not_hold_the_intake_back() -> None:
    intake = _intake()
    await _subscriber(intake).get_msg(_Polled({}, {TopicPartition("t", 0): (0, None)}))
    assert intake.drained


ONE, TWO = TopicPartition("t", 0), TopicPartition("t", 1)


async def test_a_partition_behind_its_end_on_the_broker_is_not_at_the_end() -> None:
    """The last fetch's high watermark says drained; the broker has been written to since."""
    at_watermark = {ONE: (10, 10), TWO: (40, 40)}
    assert await at_broker_end(_Polled({}, at_watermark, {ONE: 10, TWO: 40}), {"t"})  # type: ignore[arg-type]
    assert not await at_broker_end(_Polled({}, at_watermark, {ONE: 10, TWO: 771}), {"t"})  # type: ignore[arg-type]
    assert await at_broker_end(_Polled({}, {}), {"t"})  # type: ignore[arg-type]  # nothing assigned


async def test_a_busy_topic_does_not_hold_back_a_quiet_topic_s_hole() -> None:
    busy = TopicPartition("busy", 0)
    consumer = _Polled({}, {ONE: (10, 10), busy: (5, 900)}, {ONE: 10, busy: 2000})
    assert await at_broker_end(consumer, {"t"})  # type: ignore[arg-type]
    assert consumer.asked == 1
    assert not await at_broker_end(consumer, {"t", "busy"})  # type: ignore[arg-type]
    assert consumer.asked == 1  # the last fetch already showed "busy" behind: no round trip


async def test_the_intake_asks_the_broker_only_when_the_last_fetch_looked_drained() -> None:
    intake, behind = _intake(), _Polled({}, {ONE: (3, 40)}, {ONE: 40})
    await _subscriber(intake).get_msg(behind)
    _subscriber(intake).consumer = behind  # type: ignore[assignment]
    assert not await intake.drained_at_broker({"t"})
    assert behind.asked == 0  # the last fetch already said so
    written_since = _Polled({}, {ONE: (40, 40)}, {ONE: 90})
    await _subscriber(intake).get_msg(written_since)
    _subscriber(intake).consumer = written_since  # type: ignore[assignment]
    assert intake.drained
    assert not await intake.drained_at_broker({"t"})
    assert written_since.asked == 1


async def test_the_intake_falls_back_on_its_last_poll_when_the_broker_cannot_say() -> None:
    intake, unreachable = _intake(), _Polled({}, {ONE: (40, 40)}, KafkaConnectionError())
    await _subscriber(intake).get_msg(unreachable)
    _subscriber(intake).consumer = unreachable  # type: ignore[assignment]
    assert await intake.drained_at_broker({"t"})
    assert unreachable.asked == 1
    hung = _Polled({}, {ONE: (40, 40)}, "hangs")
    await _subscriber(intake).get_msg(hung)
    _subscriber(intake).consumer = hung  # type: ignore[assignment]
    assert await asyncio.wait_for(intake.drained_at_broker({"t"}), timeout=10)
