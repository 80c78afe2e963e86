"""The timed workloads: appends by our store and by eventsourcing, reads by our store and raw SQL."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.conninfo import conninfo_to_dict

from modelyard_events.canonical import canonical_json
from modelyard_events.db import create_engine
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.sample_events import TEST_CONTEXT, CounterIncremented
from modelyard_events.testing.signing import TEST_SIGNER
from modelyard_events.verify import verify_chain

EVENT = CounterIncremented(amount=1, note="x" * 1000)
# The peer stores exactly the bytes our store puts in its data column, so payloads match.
PAYLOAD = canonical_json(EVENT.model_dump(mode="json")).encode()
PEER_TOPIC = "bench:CounterIncremented"
PAGE = 1000


@dataclass(frozen=True)
class AppendRow:
    """One append configuration, run the same way against both stores."""

    writers: int
    events_per_append: int
    events: int

    @property
    def appends_per_writer(self) -> int:
        return self.events // (self.writers * self.events_per_append)

    @property
    def events_written(self) -> int:
        return self.events_per_append * self.appends_per_writer * self.writers

    @property
    def name(self) -> str:
        writers = f"{self.writers} writer{'s' if self.writers > 1 else ''}"
        events = f"{self.events_per_append} event{'s' if self.events_per_append > 1 else ''}"
        return f"append: {writers} × {events}/append"


@dataclass(frozen=True)
class Measurement:
    """How long it took to move `events` events (the median of `runs_s` when repeated)."""

    events: int
    seconds: float
    runs_s: tuple[float, ...] = ()

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def checkpoint(url: str) -> None:
    """Flush dirty pages so a timed run does not pay for the previous run's writes."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


async def ours_append(
    url: str, schema: str, row: AppendRow, warmup: AppendRow, *, signed: bool = True
) -> Measurement:
    """Our store: the writers are tasks sharing one store (and so its group commit).

    `signed=False` measures the same store without its head signatures (what they cost).
    """
    engine = create_engine(url, pool_size=10)
    store = PostgresEventStore(engine, schema, signer=TEST_SIGNER if signed else None)
    try:
        await store.create_schema()
        await _ours_writers(store, warmup, "warmup")
        await asyncio.to_thread(checkpoint, url)
        started = time.perf_counter()
        await _ours_writers(store, row, "timed")
        await store.signatures.flush()  # a signed run ends when its last head is signed
        return Measurement(row.events_written, _since(started))
    finally:
        await store.close()
        await engine.dispose()


async def _ours_writers(store: PostgresEventStore, row: AppendRow, tag: str) -> None:
    """Run `row.writers` concurrent writers, each appending to a stream of its own."""
    events = [EVENT] * row.events_per_append

    async def write(stream_id: str) -> None:
        version = 0
        for _ in range(row.appends_per_writer):
            await store.append("counter", stream_id, version, events, TEST_CONTEXT)
            version += len(events)

    await asyncio.gather(*(write(f"{tag}-{n}") for n in range(row.writers)))


def peer_append(url: str, schema: str, row: AppendRow, warmup: AppendRow) -> Measurement:
    """eventsourcing: the writers are threads sharing one recorder, one pooled connection each."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    params = conninfo_to_dict(url)
    datastore = PostgresDatastore(
        dbname=str(params["dbname"]),
        host=str(params["host"]),
        port=str(params["port"]),
        user=str(params["user"]),
        password=str(params.get("password", "")),
        pool_size=row.writers,
        schema=schema,
    )
    try:
        recorder = PostgresApplicationRecorder(datastore)
        recorder.create_table()
        _peer_writers(recorder, warmup)
        checkpoint(url)
        started = time.perf_counter()
        _peer_writers(recorder, row)
        return Measurement(row.events_written, _since(started))
    finally:
        datastore.close()


def _peer_writers(recorder: PostgresApplicationRecorder, row: AppendRow) -> None:
    def write() -> None:
        originator_id = uuid.uuid4()
        for n in range(row.appends_per_writer):
            first = n * row.events_per_append + 1
            recorder.insert_events(
                [
                    StoredEvent(originator_id, version, PEER_TOPIC, _serialized(EVENT))
                    for version in range(first, first + row.events_per_append)
                ]
            )

    with ThreadPoolExecutor(row.writers) as pool:
        for future in [pool.submit(write) for _ in range(row.writers)]:
            future.result()


_RAW_COLUMNS = (
    "event_id, stream_type, stream_id, stream_version, type, schema_version, occurred_at, actor, "
    "org_id, correlation_id, causation_id, data, prev_hash, hash"
)
_RAW_ACTOR = canonical_json(TEST_CONTEXT.actor.model_dump(mode="json"))
_RAW_HASH = "0" * 64


def raw_append(url: str, schema: str, row: AppendRow, warmup: AppendRow) -> Measurement:
    """The floor: psycopg writing rows into our store's own events table (same columns, keys and
    index; positions from an identity column) with no chain, lock or signature: one INSERT and
    COMMIT per single-event append, one COPY and COMMIT per batch. Threads with a connection each,
    as the eventsourcing peer runs."""
    asyncio.run(_raw_table(url, schema))
    _raw_writers(url, schema, warmup, "warmup")
    checkpoint(url)
    started = time.perf_counter()
    _raw_writers(url, schema, row, "timed")
    return Measurement(row.events_written, _since(started))


async def _raw_table(url: str, schema: str) -> None:
    """Our store's own events table (its DDL: columns, keys, index), positions from an identity."""
    engine = create_engine(url)
    try:
        await PostgresEventStore(engine, schema).create_schema()
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                f"ALTER TABLE {schema}.events ALTER COLUMN position ADD GENERATED ALWAYS AS IDENTITY"
            )
    finally:
        await engine.dispose()


def _raw_writers(url: str, schema: str, row: AppendRow, tag: str) -> None:
    insert = f"INSERT INTO {schema}.events ({_RAW_COLUMNS}) VALUES ({', '.join(['%s'] * 14)})"
    copy = f"COPY {schema}.events ({_RAW_COLUMNS}) FROM STDIN"

    def values(stream_id: str, version: int) -> tuple[object, ...]:
        # Serialized per event, as both stores do, so the floor pays for the payload too.
        data = _serialized(EVENT).decode()
        now = datetime.now(UTC)
        return (
            uuid.uuid4(), "counter", stream_id, version, "CounterIncremented", 1, now, _RAW_ACTOR,
            "org-1", "c-1", None, data, _RAW_HASH, _RAW_HASH,
        )  # fmt: skip

    def write(stream_id: str) -> None:
        with psycopg.connect(url) as conn:
            for n in range(row.appends_per_writer):
                first = n * row.events_per_append + 1
                versions = range(first, first + row.events_per_append)
                if row.events_per_append == 1:
                    conn.execute(insert, values(stream_id, first))
                else:
                    with conn.cursor().copy(copy) as rows:
                        for version in versions:
                            rows.write_row(values(stream_id, version))
                conn.commit()

    with ThreadPoolExecutor(row.writers) as pool:
        for future in [pool.submit(write, f"{tag}-{n}") for n in range(row.writers)]:
            future.result()


def _serialized(event: CounterIncremented) -> bytes:
    # Both sides start from a domain event object, so the peer pays for serializing it too
    # (ours does the same model_dump + canonical JSON inside append()).
    return canonical_json(event.model_dump(mode="json")).encode()


async def ours_reads(url: str, schema: str, events: int, repeats: int) -> dict[str, Measurement]:
    """Fill a fresh store with `events` events, then time read_all paging and verify_chain."""
    engine = create_engine(url, pool_size=10)
    store = PostgresEventStore(engine, schema, signer=TEST_SIGNER)
    try:
        await store.create_schema()
        await _ours_writers(store, AppendRow(8, 100, events), "fill")
        await asyncio.to_thread(checkpoint, url)
        return {
            "read_all": await _median_async(lambda: _read_all(store), repeats),
            "verify_chain": await _median_async(lambda: _verify(store), repeats),
        }
    finally:
        await store.close()
        await engine.dispose()


async def _read_all(store: PostgresEventStore) -> int:
    position, count = 0, 0
    while page := await store.read_all(position, limit=PAGE):
        position, count = page[-1].position, count + len(page)
    return count


async def _verify(store: PostgresEventStore) -> int:
    report = await verify_chain(store)
    if not report.ok:
        raise RuntimeError(f"the benchmark's own log does not verify: {report}")
    return report.checked


def raw_select(url: str, schema: str, repeats: int) -> Measurement:
    """The floor: keyset-paged SELECT * over the same table, rows left as tuples."""
    sql = f"SELECT * FROM {schema}.events WHERE position > %s ORDER BY position LIMIT {PAGE}"

    def read() -> int:
        with psycopg.connect(url) as conn:
            position, count = 0, 0
            while rows := conn.execute(sql, (position,)).fetchall():
                position, count = rows[-1][0], count + len(rows)
            return count

    return median([_timed(read) for _ in range(repeats + 1)][1:])


async def _median_async(read: Callable[[], Awaitable[int]], repeats: int) -> Measurement:
    # The first pass warms caches and connections and is not counted.
    runs = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        count = await read()
        runs.append(Measurement(count, _since(started)))
    return median(runs[1:])


def _timed(read: Callable[[], int]) -> Measurement:
    started = time.perf_counter()
    count = read()
    return Measurement(count, _since(started))


def median(runs: list[Measurement]) -> Measurement:
    """The median run, keeping every run's time for the record."""
    seconds = tuple(run.seconds for run in runs)
    return Measurement(runs[0].events, statistics.median(seconds), seconds)


def _since(started: float) -> float:
    return time.perf_counter() - started
