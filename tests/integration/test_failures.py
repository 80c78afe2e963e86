"""The relay killed mid-stream and the broker losing everything: the projection still converges."""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_devstack import EmbeddedBroker, Infra
from modelyard_devstack.processes import eventually
from modelyard_events.consumer import ProjectionRunner
from modelyard_events.relay import Relay
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.sample_projection import projected_totals
from modelyard_events.wire import decode_envelope
from tests.integration.support import (
    application_counts,
    counter_runner,
    counters_topic,
    write_counters,
    write_counters_until,
)

pytestmark = pytest.mark.integration
STREAMS, INCREMENTS = 10, 60  # 610 events


@pytest.fixture
async def running() -> AsyncIterator[list[asyncio.Task[None]]]:
    """Background tasks of a test, stopped through `stop` and awaited at the end."""
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _start_relay(stack: Infra, schema: str, topic: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": stack.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap_servers,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "modelyard_events.run_relay", "--schema", schema, "--topic", topic], env=env
    )


@pytest.fixture
def relay_processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.kill()
        process.wait()


async def test_relay_killed_mid_stream_loses_nothing_and_projects_each_event_once(
    stack: Infra,
    engine: AsyncEngine,
    store: PostgresEventStore,
    running: list[asyncio.Task[None]],
    relay_processes: list[subprocess.Popen[bytes]],
) -> None:
    topic = counters_topic(store)
    relay = Relay(
        store, stack.database_url, stack.kafka_bootstrap_servers, topic
    )  # reads the checkpoint only
    runner = counter_runner(engine, store, stack.kafka_bootstrap_servers, reconcile_every_s=1.0)
    stop = asyncio.Event()
    running.append(asyncio.create_task(runner.run(stop)))
    relay_processes.append(_start_relay(stack, store.schema, topic))
    # The writer keeps going through the kill and the restart, so the relay dies mid-stream.
    stop_writing = asyncio.Event()
    writer = asyncio.create_task(write_counters_until(store, STREAMS, stop_writing))

    await eventually(lambda: _published_some(relay), what="the relay to publish")
    relay_processes[0].send_signal(signal.SIGKILL)
    assert relay_processes[0].wait() == -signal.SIGKILL
    killed_at = await relay.checkpoint()
    await eventually(lambda: _written_more(store, killed_at + 5 * STREAMS), what="writes to go on")
    relay_processes.append(_start_relay(stack, store.schema, topic))
    await eventually(lambda: _published_beyond(relay, killed_at), what="the new relay to publish")
    stop_writing.set()
    expected, total = await writer

    await eventually(lambda: _projected(engine, runner, expected), what="the projection to converge")
    assert await application_counts(engine, runner.projection.schema) == (total, 1)
    positions = await _positions_on_topic(stack.kafka_bootstrap_servers, topic, total)
    assert set(positions) == set(range(1, total + 1))
    stop.set()


async def test_broker_restarted_empty_while_events_flow_projection_converges(
    stack: Infra,
    engine: AsyncEngine,
    store: PostgresEventStore,
    running: list[asyncio.Task[None]],
    tmp_path: Path,
) -> None:
    broker = EmbeddedBroker(tmp_path / "broker")  # a broker of its own, to restart
    bootstrap = broker.start()
    try:
        topic = counters_topic(store)
        relay = Relay(store, stack.database_url, bootstrap, topic, idle_check_s=1.0)
        first = counter_runner(engine, store, bootstrap, reconcile_every_s=1.0)
        stop, first_stop = asyncio.Event(), asyncio.Event()
        first_task = asyncio.create_task(first.run(first_stop))
        running.extend([asyncio.create_task(relay.run(stop)), first_task])
        half = INCREMENTS // 2
        before = await write_counters(store, STREAMS, half)
        await eventually(lambda: _applied_some(engine, first), what="the projection to start")
        stop_writing = asyncio.Event()  # writes go on until the new runner is reading
        writer = asyncio.create_task(_write_rounds_until(store, half, stop_writing))
        await eventually(lambda: _written_more(store, STREAMS * (half + 1)), what="writes to go on")
        # The consumer stops while the relay goes on, so the broker holds events nobody has read
        # when it loses everything: those can only come back from the store.
        # Awaited, not only told: a runner still stopping reads on, and could apply every event
        # the broker is about to lose before it goes.
        first_stop.set()
        await first_task
        published = await relay.checkpoint()
        await eventually(lambda: _published_beyond(relay, published), what="events only the broker holds")
        broker.restart_empty()
        assert not writer.done(), "events stopped flowing before the broker restarted"
        runner = counter_runner(engine, store, bootstrap, reconcile_every_s=1.0)
        running.append(asyncio.create_task(runner.run(stop)))
        restarted_at = await relay.checkpoint()
        await eventually(lambda: _published_beyond(relay, restarted_at), what="events through the new broker")
        stop_writing.set()
        after = await writer
        expected = {c: before[c] + after[c] for c in before}
        await eventually(lambda: _projected(engine, runner, expected), what="the projection to converge")
        assert (await application_counts(engine, runner.projection.schema))[1] == 1
        assert runner.caught_up > 0, "no event was lost with the broker: catch-up was not exercised"
        print(f"healed by catch-up from the store: {runner.caught_up} events")
        stop.set()
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        broker.stop()


async def _write_rounds_until(
    store: PostgresEventStore, first_round: int, stop: asyncio.Event
) -> dict[str, int]:
    """Rounds of write_counters from `first_round` on until `stop`; the totals added."""
    totals = {f"counter-{s}": 0 for s in range(STREAMS)}
    round_ = first_round
    while not stop.is_set():
        added = await write_counters(store, STREAMS, 1, first_round=round_)
        totals = {c: totals[c] + added[c] for c in totals}
        round_ += 1
    return totals


async def _published_beyond(relay: Relay, position: int) -> bool:
    return await relay.checkpoint() > position


async def _published_some(relay: Relay) -> bool:
    return await relay.checkpoint() >= 50


async def _written_more(store: PostgresEventStore, than: int) -> bool:
    return await store.head_position() > than


async def _applied_some(engine: AsyncEngine, runner: ProjectionRunner) -> bool:
    try:
        return (await application_counts(engine, runner.projection.schema))[0] >= 50
    except Exception:
        return False


async def _projected(engine: AsyncEngine, runner: ProjectionRunner, expected: dict[str, int]) -> bool:
    try:
        return await projected_totals(engine, runner.projection.schema) == expected
    except Exception:
        return False


async def _positions_on_topic(bootstrap: str, topic: str, at_least: int) -> list[int]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"check-{uuid.uuid4().hex}",
        enable_auto_commit=False,
    )
    await consumer.start()
    positions: list[int] = []
    try:

        async def enough() -> bool:
            batches = await consumer.getmany(timeout_ms=200)
            positions.extend(decode_envelope(r.value).position for rs in batches.values() for r in rs)
            return len(set(positions)) >= at_least

        await eventually(enough, what=f"{at_least} distinct positions on {topic}")
    finally:
        await consumer.stop()
    return positions
