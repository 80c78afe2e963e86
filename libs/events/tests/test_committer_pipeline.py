"""The committer's two batches in flight, against an in-memory append function (no I/O).

PostgresEventStore's committer (group commit, two batches in flight, send order kept by `o_after`,
hashes guessed from the head, a lost connection retried) runs unchanged; only the connection is
fake: `FakeLog` does what the append function does (store/postgres_schema.py) in a few lines. Its
calls take a random number of the event loop's turns (seeded, so a failure repeats), so the second
batch often reaches the head row before the first, and a connection is lost before or after a
commit. Each seed's run must leave a log that chains, hold every event whose caller was told it was
written, none whose caller was told it was refused, and have committed the batches in the order
they were sent. The integration tests run the same code against PostgreSQL
(tests/integration/test_store_concurrency.py, test_store_restart.py).
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from modelyard_events.envelope import GENESIS_HASH, EventEnvelope
from modelyard_events.errors import ConcurrencyConflict, EventStoreError
from modelyard_events.hashing import chain_hash
from modelyard_events.signing import HeadSigner
from modelyard_events.store.chain_guess import ChainGuess, Head
from modelyard_events.store.pending import AppendRequest
from modelyard_events.store.postgres import PostgresEventStore, _Queued
from modelyard_events.store.postgres_rows import RECORD_SEPARATOR
from modelyard_events.testing.sample_events import TEST_CONTEXT, CounterIncremented
from modelyard_events.testing.signing import TEST_SIGNER

_CALL: contextvars.ContextVar[tuple[list[_Queued], ChainGuess | None, str | None]] = contextvars.ContextVar(
    "call"
)
_QUEUED: contextvars.ContextVar[_Queued] = contextvars.ContextVar("queued")  # a writer's last append


class Row(NamedTuple):
    """A row of the append function's result, one per request."""

    first_position: int | None
    first_prev_hash: str | None
    last_hash: str | None
    actual_version: int


@dataclass
class FakeLog:
    """The append function's effect, one call at a time (the head row's lock), with random delays
    before the lock and after the commit, and connections lost on purpose."""

    rng: random.Random
    lose_before: float = 0.0  # chance a call's connection is lost before it writes
    lose_after: float = 0.0  # ... or after it committed
    events: list[EventEnvelope] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)  # event ids of requests a call refused
    committed: list[str] = field(default_factory=list)  # each written call's first event id
    too_early: int = 0
    guesses_used: int = 0
    problems: list[str] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    connections: list[FakeConnection] = field(default_factory=list)
    signing: asyncio.Event = field(default_factory=asyncio.Event)  # a head's signature is being written
    signed: asyncio.Event = field(default_factory=asyncio.Event)  # ... and may be (never, unless set)

    @property
    def head(self) -> Head:
        return Head(len(self.events), self.events[-1].hash if self.events else GENESIS_HASH)

    async def call(self, batch: list[_Queued], guess: ChainGuess | None, after: str | None) -> list[Row]:
        await self._take_a_while()
        if self.rng.random() < self.lose_before:
            raise _lost()
        async with self.lock:
            ids = {str(e.event_id) for e in self.events}
            if after is not None and not any(first in ids for first in after.split(RECORD_SEPARATOR)):
                self.too_early += 1
                return []  # the batch ahead has not committed: nothing written
            rows = self._write([q.request for q in batch], guess)
        await self._take_a_while()
        if self.rng.random() < self.lose_after:
            raise _lost()  # committed, and the caller never heard
        return rows

    async def _take_a_while(self) -> None:
        # Turns of the event loop, not wall-clock time: asyncio runs ready tasks in order, so a
        # seed's schedule, and a failure, repeat.
        for _ in range(self.rng.randrange(12)):
            await asyncio.sleep(0)

    def _write(self, requests: Sequence[AppendRequest], guess: ChainGuess | None) -> list[Row]:
        # Like the function: the guessed hashes are trusted only while the head is where the guess
        # starts and every request so far was accepted; this fake checks them instead.
        trusting = guess is not None and guess.head == self.head
        self.guesses_used += trusting
        rows: list[Row] = []
        for index, request in enumerate(requests):
            version = self.versions.get(request.stream_id, 0)
            if version != request.expected_version:
                self.refused.update(str(e.event_id) for e in request.events)
                rows.append(Row(None, None, None, version))
                trusting = False
                continue
            first, first_prev = self.head.position, self.head.hash
            for pending in request.events:
                position, prev = self.head.position, self.head.hash
                digest = chain_hash(prev, pending.halves, position + 1)
                self.events.append(pending.recorded(position + 1, prev, digest))
            if trusting and guess is not None:
                guessed = guess.hashes_for(index, first + 1, first_prev)
                written = tuple(e.hash for e in self.events[first:])
                if guessed != written:
                    self.problems.append(f"guessed {guessed} for request {index}, wrote {written}")
            self.versions[request.stream_id] = version + len(request.events)
            rows.append(Row(first + 1, first_prev, self.events[-1].hash, version))
        if any(row.first_position is not None for row in rows):
            self.committed.append(str(requests[0].events[0].event_id))
        return rows


def _lost() -> DBAPIError:
    return DBAPIError(
        "SELECT append_events(...)", None, OSError("connection lost"), connection_invalidated=True
    )


class FakeConnection:
    def __init__(self, log: FakeLog) -> None:
        self.log, self.closed = log, False
        log.connections.append(self)

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if self.closed:
            raise _lost()
        if "sign_head" in str(statement):
            self.log.signing.set()
            await self.log.signed.wait()
            return _Result([])
        try:
            rows = await self.log.call(*_CALL.get())
        except DBAPIError:
            self.closed = True
            raise
        return _Result(rows)

    async def close(self) -> None:
        self.closed = True


@dataclass
class _Result:
    rows: list[Row]

    def all(self) -> list[Row]:
        return self.rows


class PipelinedStore(PostgresEventStore):
    """The real committer; the append function's calls go to a FakeLog."""

    def __init__(self, log: FakeLog, signer: HeadSigner | None = None) -> None:
        # Nothing connects through the engine but close(), writing a pending signature: refused at once.
        engine = create_async_engine(
            "postgresql+psycopg://nobody@127.0.0.1:1/unused", connect_args={"connect_timeout": 1}
        )
        super().__init__(engine, "fake", signer=signer)
        self.log = log
        self.sent: list[str] = []  # each batch's first event id, in the order batches were sent
        self.recovered = 0  # appends a lost attempt had written, found after the retry
        put = self._queue.put_nowait

        def queue(queued: _Queued) -> None:
            _QUEUED.set(queued)  # in the appending writer's task: it learns its events' ids
            put(queued)

        self._queue.put_nowait = queue  # type: ignore[method-assign]

    def _launch(self, batch: list[_Queued], spare: list[Any], ahead: Any) -> Any:
        self.sent.append(str(batch[0].request.events[0].event_id))
        return super()._launch(batch, spare, ahead)

    async def _execute(
        self, conn: Any, batch: list[_Queued], guess: ChainGuess | None, after: str | None
    ) -> tuple[Any, Sequence[Any], bool]:
        _CALL.set((batch, guess, after))  # this flight's task only
        return await super()._execute(conn, batch, guess, after)

    async def _connect(self) -> Any:
        return FakeConnection(self.log)

    async def _call_append(self, conn: Any, parameters: Any) -> Sequence[Any]:
        # The real store runs the statement through psycopg itself; the fake is SQLAlchemy-shaped.
        return (await conn.execute(self._ordered_append, parameters)).all()  # type: ignore[no-any-return]

    async def _own_appends(
        self, conn: Any, batch: list[_Queued], rows: Sequence[Any]
    ) -> dict[int, list[EventEnvelope]]:
        by_id = {e.event_id: e for e in self.log.events}
        recovered: dict[int, list[EventEnvelope]] = {}
        for index, (queued, row) in enumerate(zip(batch, rows, strict=True)):
            found = [by_id[e.event_id] for e in queued.request.events if e.event_id in by_id]
            if row.first_position is None and len(found) == len(queued.request.events):
                recovered[index] = found
        self.recovered += len(recovered)
        return recovered


@dataclass
class Outcomes:
    written: list[list[EventEnvelope]] = field(default_factory=list)
    conflicts: list[list[str]] = field(default_factory=list)  # the refused appends' event ids
    unknown: int = 0
    other: list[str] = field(default_factory=list)  # any other error: none is expected


async def _writer(store: PipelinedStore, rng: random.Random, appends: int, outcomes: Outcomes) -> None:
    """Appends to a few shared streams at the versions it last saw: many conflict."""
    seen: dict[str, int] = {}
    for _ in range(appends):
        stream = f"s-{rng.randrange(4)}"
        events = [CounterIncremented(amount=n) for n in range(rng.choice((1, 1, 2, 5)))]
        try:
            outcomes.written.append(
                await store.append("counter", stream, seen.get(stream, 0), events, TEST_CONTEXT)
            )
            seen[stream] = outcomes.written[-1][-1].stream_version
        except ConcurrencyConflict as conflict:
            seen[stream] = conflict.actual_version
            outcomes.conflicts.append([str(e.event_id) for e in _QUEUED.get().request.events])
        except EventStoreError as error:
            if "append outcome unknown" in str(error):
                outcomes.unknown += 1
            else:
                outcomes.other.append(repr(error))
        if rng.random() < 0.3:
            await asyncio.sleep(0)


async def _run(seed: int, lose_before: float, lose_after: float) -> tuple[FakeLog, PipelinedStore, Outcomes]:
    rng = random.Random(seed)
    log = FakeLog(rng, lose_before, lose_after)
    store = PipelinedStore(log)
    outcomes = Outcomes()
    try:
        writers = [_writer(store, random.Random(seed * 100 + w), 12, outcomes) for w in range(24)]
        await asyncio.wait_for(asyncio.gather(*writers), timeout=30)
    finally:
        await store.close()
    return log, store, outcomes


def _check(log: FakeLog, store: PipelinedStore, outcomes: Outcomes) -> None:
    assert log.problems == []
    assert outcomes.other == []
    prev = GENESIS_HASH
    for position, envelope in enumerate(log.events, start=1):  # the log chains
        assert (envelope.position, envelope.prev_hash) == (position, prev)
        prev = envelope.hash
    by_id = {e.event_id: e for e in log.events}
    for envelopes in outcomes.written:  # what a caller was told was written is in the log, as told
        assert [by_id.get(e.event_id) for e in envelopes] == envelopes
    told_written = {e.event_id for envelopes in outcomes.written for e in envelopes}
    assert len(told_written) == sum(len(e) for e in outcomes.written)
    unaccounted = [e for e in log.events if e.event_id not in told_written]
    if outcomes.unknown == 0:
        assert unaccounted == []  # nothing written behind a caller's back
    refused = {event_id for ids in outcomes.conflicts for event_id in ids}
    assert refused <= log.refused
    assert not refused & {str(e.event_id) for e in log.events}  # a caller told 'conflict' was not written
    per_stream: dict[str, list[int]] = {}
    for envelope in log.events:
        per_stream.setdefault(envelope.stream_id, []).append(envelope.stream_version)
    for versions in per_stream.values():
        assert versions == list(range(1, len(versions) + 1))
    # Batches committed in the order they were sent (a batch that wrote nothing is not in `committed`).
    assert log.committed == [first for first in store.sent if first in log.committed]


@pytest.mark.parametrize("seed", range(12))
async def test_two_batches_in_flight_commit_in_send_order_and_every_caller_hears_the_truth(seed: int) -> None:
    log, store, outcomes = await _run(seed, 0.0, 0.0)
    _check(log, store, outcomes)
    assert outcomes.unknown == 0
    assert len(outcomes.written) + len(outcomes.conflicts) == 24 * 12
    assert sum(len(e) for e in outcomes.written) == len(log.events)


async def test_the_pipeline_is_exercised_overtaking_guessing_and_conflicting() -> None:
    """Across the seeds the batch behind does reach the lock first, guesses are used, appends conflict."""
    too_early = guesses = conflicts = 0
    for seed in range(12):
        log, _, outcomes = await _run(seed, 0.0, 0.0)
        too_early, guesses = too_early + log.too_early, guesses + log.guesses_used
        conflicts += len(outcomes.conflicts)
    assert too_early > 0
    assert guesses > 0
    assert conflicts > 0


@pytest.mark.parametrize("seed", range(12))
async def test_connections_lost_before_and_after_commits_lose_and_double_nothing(seed: int) -> None:
    """A lost attempt that had committed is recovered (its callers get their events, signed like the
    rest); one whose retry is lost too is 'outcome unknown'; nobody is told 'written' wrongly."""
    log, store, outcomes = await _run(seed, 0.08, 0.08)
    _check(log, store, outcomes)
    assert len(outcomes.written) + len(outcomes.conflicts) + outcomes.unknown == 24 * 12


async def test_lost_connections_are_exercised_recovered_and_unknown() -> None:
    recovered = unknown = 0
    for seed in range(12):
        _, store, outcomes = await _run(seed, 0.08, 0.08)
        recovered, unknown = recovered + store.recovered, unknown + outcomes.unknown
    assert recovered > 0
    assert unknown > 0


async def test_closing_while_a_head_is_signed_alone_closes_its_connection() -> None:
    """The committer signs the last head on its own once appends pause; close() then cancels it."""
    log = FakeLog(random.Random(0))
    store = PipelinedStore(log, signer=TEST_SIGNER)
    await store.append("counter", "s-1", 0, [CounterIncremented(amount=1)], TEST_CONTEXT)
    await asyncio.wait_for(log.signing.wait(), timeout=10)
    await store.close()
    assert log.connections
    assert all(conn.closed for conn in log.connections)
