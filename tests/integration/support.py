"""Helpers of the cross-process tests: writing sample events, reading projections, waiting."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_devstack import Infra
from modelyard_events.consumer import ProjectionRunner, SourceTopic
from modelyard_events.envelope import EventEnvelope
from modelyard_events.errors import SourceUnavailable
from modelyard_events.relay import Relay
from modelyard_events.store.ports import SignedPage
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.sample_events import (
    SAMPLE_REGISTRY,
    TEST_CONTEXT,
    CounterIncremented,
    CounterOpened,
)
from modelyard_events.testing.sample_projection import CounterTotals
from modelyard_events.testing.signing import TEST_KEYS
from modelyard_events.topics import dead_letter_topic, ensure_topics


def counters_topic(store: PostgresEventStore) -> str:
    """The topic a test's relay publishes `store` to (its schema keeps tests apart)."""
    return f"modelyard.{store.schema}.events"


def counter_runner(
    engine: AsyncEngine, store: PostgresEventStore, bootstrap: str, **options: Any
) -> ProjectionRunner:
    """CounterTotals over `store`'s topic, in a consumer group of its own."""
    return ProjectionRunner(
        engine,
        CounterTotals(schema=f"{store.schema}_read"),
        SAMPLE_REGISTRY,
        [SourceTopic("counters", counters_topic(store), store, TEST_KEYS)],
        bootstrap,
        group_id=f"g-{uuid.uuid4().hex}",
        **options,
    )


@asynccontextmanager
async def relayed_counters(
    stack: Infra, engine: AsyncEngine, store: PostgresEventStore, relay: Relay | None = None, **options: Any
) -> AsyncIterator[ProjectionRunner]:
    """A relay of `store` and a counter_runner, running for the block (topics and DLQ created first)."""
    bootstrap, topic = stack.kafka_bootstrap_servers, counters_topic(store)
    await ensure_topics(bootstrap, [topic, dead_letter_topic(topic)])
    runner = counter_runner(engine, store, bootstrap, **options)
    relay = relay or Relay(store, stack.database_url, bootstrap, topic)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(runner.run(stop))]
    try:
        yield runner
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def write_counters(
    store: PostgresEventStore, streams: int, increments: int, first_round: int = 0
) -> dict[str, int]:
    """Open `streams` counters (in round 0) and increment each once per round; return the added totals."""
    added = {f"counter-{s}": 0 for s in range(streams)}
    if first_round == 0:
        for counter in added:
            await store.append("counter", counter, 0, [CounterOpened(name=counter)], TEST_CONTEXT)
    for i in range(first_round, first_round + increments):
        for counter in added:
            await store.append("counter", counter, i + 1, [CounterIncremented(amount=i + 1)], TEST_CONTEXT)
            added[counter] += i + 1
    return added


async def write_counters_until(
    store: PostgresEventStore, streams: int, stop: asyncio.Event
) -> tuple[dict[str, int], int]:
    """Like write_counters, round after round until `stop` is set; return (totals, events written)."""
    totals = await write_counters(store, streams, increments=1)
    rounds = 1
    while not stop.is_set():
        added = await write_counters(store, streams, increments=1, first_round=rounds)
        totals = {c: totals[c] + added[c] for c in totals}
        rounds += 1
    return totals, streams * (rounds + 1)


async def application_counts(engine: AsyncEngine, schema: str) -> tuple[int, int]:
    """(events applied, the most times any one event was applied)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(text(f"SELECT count(*), coalesce(max(times), 0) FROM {schema}.applications"))
        ).one()
    return int(row[0]), int(row[1])


async def run_yard(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run the `yard` CLI in a process of its own with only `env`'s MODELYARD_ settings (none of the
    caller's), 200 columns wide; (exit code, stdout, stderr)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "modelyard_cli",
        *args,
        env={**clean, "COLUMNS": "200", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class DownSource:
    """A source whose service is restarting: every read is SourceUnavailable."""

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[EventEnvelope]:
        raise SourceUnavailable("ReadEvents failed: UNAVAILABLE: restarting")

    async def read_signed(self, after_position: int = 0, limit: int = 1000) -> SignedPage:
        raise SourceUnavailable("ReadEvents failed: UNAVAILABLE: restarting")

    async def head_position(self) -> int:
        raise SourceUnavailable("ReadEvents failed: UNAVAILABLE: restarting")
