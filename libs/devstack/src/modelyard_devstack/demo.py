"""`make demo`: start the stack and walk events through store, relay, Kafka and a projection.

Printed step by step so a new user sees what the foundation does: appends
land hash-chained in PostgreSQL, the relay publishes them, a projection applies
each exactly once, a stale writer is refused, and `verify` catches an edited row.
Then, driven with the `yard` CLI, scikit-learn's digits become a dataset version
in dataset-svc (upload, two annotators, review, publish, readiness), and job-svc,
trainer-svc and a trainer worker train on that version for real; registry-svc registers the model,
has it evaluated, refuses a self-approval and a failing gate, approves it as a second admin,
releases it, and the downloaded artifact is verified against its signed manifest. Last, deploy-svc rolls
it out to three edge agents in two waves, an agent refuses a tampered artifact, and a rollout halts and
rolls back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_devstack.demo_training import walk_training
from modelyard_devstack.processes import eventually
from modelyard_devstack.stack import Infra, infra
from modelyard_events.canonical import canonical_json
from modelyard_events.consumer import ProjectionRunner, SourceTopic
from modelyard_events.db import create_engine
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.relay import Relay
from modelyard_events.signing import HeadSigner, HeadVerifier
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.sample_events import (
    SAMPLE_REGISTRY,
    TEST_CONTEXT,
    CounterIncremented,
    CounterOpened,
)
from modelyard_events.testing.sample_projection import CounterTotals, projected_totals
from modelyard_events.topics import events_topic
from modelyard_events.verify import verify_chain

_SCHEMA = "demo_events"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the walk on a fresh embedded stack (or on DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS)."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="stop everything at the end of the walk (default: keep the stack and console up until Ctrl-C)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    with infra() as servers:
        print(f"[stack] {servers.kind}")
        print(f"[stack] PostgreSQL {servers.database_url}")
        print(f"[stack] Kafka-compatible broker {servers.kafka_bootstrap_servers}")
        print(f"[stack] ready in {time.monotonic() - started:.1f} s\n")
        asyncio.run(_walk(servers))
        walk_training(servers, until=None if args.no_wait else _interrupted, started=started)
    print("\n[stack] stopped; nothing left running")


def _interrupted() -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()
    print("\n[stack] stopping …")


async def _walk(servers: Infra) -> None:
    engine = create_engine(servers.database_url)
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {_SCHEMA} CASCADE"))
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {_SCHEMA}_read CASCADE"))
    # The demo's own key: a service's comes from MODELYARD_EVENT_SIGNING_KEY.
    signer = HeadSigner.generate()
    keys = HeadVerifier([signer.public_key])
    store = PostgresEventStore(engine, _SCHEMA, signer=signer)
    await store.create_schema()
    try:
        expected = await _append(store)
        await _project(servers, engine, store, expected, keys)
        await _verify(engine, store, keys)
    finally:
        await store.close()
        await engine.dispose()


async def _append(store: PostgresEventStore) -> dict[str, int]:
    print("1. Appending events (one atomic append per line, expected stream version checked):")
    totals: dict[str, int] = {}
    for name, steps in {"gpu-hours": [3, 5], "labels": [120, 80, 40]}.items():
        batch = [CounterOpened(name=name)] + [CounterIncremented(amount=a) for a in steps]
        for envelope in await store.append("counter", name, 0, batch, TEST_CONTEXT):
            where = f"{envelope.stream_id}@v{envelope.stream_version}"
            print(
                f"   position {envelope.position:>2}  {where:<12} {envelope.type:<18} "
                f"{canonical_json(envelope.data):<26} hash {envelope.hash[:12]}…"
                f" (prev {envelope.prev_hash[:12]}…)"
            )
        totals[name] = sum(steps)
    try:
        await store.append("counter", "labels", 1, [CounterIncremented(amount=1)], TEST_CONTEXT)
    except ConcurrencyConflict as conflict:
        print(f"   a writer holding a stale version is refused: {conflict}")
    return totals


async def _project(
    servers: Infra,
    engine: AsyncEngine,
    store: PostgresEventStore,
    expected: dict[str, int],
    keys: HeadVerifier,
) -> None:
    topic = events_topic("demo")
    print(f"\n2. Relay (LISTEN/NOTIFY, checkpointed) publishes to {topic}; a projection consumes it:")
    relay = Relay(store, servers.database_url, servers.kafka_bootstrap_servers, topic)
    projection = CounterTotals(schema=f"{_SCHEMA}_read")
    runner = ProjectionRunner(
        engine,
        projection,
        SAMPLE_REGISTRY,
        [SourceTopic("demo", topic, store, keys)],
        servers.kafka_bootstrap_servers,
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(runner.run(stop))]
    try:
        await eventually(lambda: _shows(engine, projection.schema, expected), what="the projection")
        totals = await projected_totals(engine, projection.schema)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    async with engine.connect() as conn:
        applied = (
            await conn.execute(text(f"SELECT max(times) FROM {projection.schema}.applications"))
        ).scalar()
    for counter, total in sorted(totals.items()):
        print(f"   counter_totals: {counter:<10} = {total}")
    print(f"   relay checkpoint at position {await relay.checkpoint()}; every event applied {applied}×")


async def _shows(engine: AsyncEngine, schema: str, expected: dict[str, int]) -> bool:
    try:
        return await projected_totals(engine, schema) == expected
    except DBAPIError:
        return False  # the projection has not created its tables yet


async def _verify(engine: AsyncEngine, store: PostgresEventStore, keys: HeadVerifier) -> None:
    print("\n3. verify walks the hash chain and checks the signed heads (Ed25519, the service's key):")
    report = await verify_chain(store, keys=keys)
    print(
        f"   ok={report.ok}, {report.checked} events checked up to head {report.head_position}, "
        f"signed through {report.signed_through}"
    )
    async with engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE {_SCHEMA}.events SET data = :data WHERE position = 3"),
            {"data": '{"amount":500,"note":""}'},
        )
    print('   someone edits position 3 in the database ("amount":5 -> "amount":500) ...')
    report = await verify_chain(store, keys=keys)
    print(f"   ok={report.ok}, first broken position {report.broken_position}: {report.reason}")


if __name__ == "__main__":
    main()
