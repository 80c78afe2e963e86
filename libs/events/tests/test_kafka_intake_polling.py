"""The intake's batch subscriber polls without FastStream's nap after an empty poll.

The consumer here is a stand-in with only `getmany`: what is checked is how the subscriber calls it,
not Kafka (tests/integration/test_kafka_intake.py runs the intake on the real broker).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition
from faststream.kafka.subscriber import usecase
from faststream.kafka.subscriber.usecase import BatchSubscriber

from modelyard_events.consumer.kafka_intake import POLL_WAIT_MS, KafkaIntake, LongPollBatches


class _Polled:
    def __init__(self, batches: dict[TopicPartition, list[str]]) -> None:
        self.batches, self.calls = batches, list[tuple[int, int | None]]()

    async def getmany(self, *, timeout_ms: int, max_records: int | None) -> dict[TopicPartition, list[str]]:
        self.calls.append((timeout_ms, max_records))
        return self.batches


def _intake() -> KafkaIntake:
    async def handle(records: list[Any], drained: bool) -> None:
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
