"""The PostgreSQL event store: single-round-trip appends with in-process group commit, two batches
in flight (docs/events.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_events.db import checked_schema
from modelyard_events.envelope import (
    GENESIS_HASH,
    CommandContext,
    DomainEvent,
    EventEnvelope,
)
from modelyard_events.errors import ConcurrencyConflict, EventStoreError, StoreBusy
from modelyard_events.hashing import RowHasher, chain_hash
from modelyard_events.signing import HeadSigner, HeadVerifier
from modelyard_events.store.chain_guess import NO_GUESS, ChainGuess, Head
from modelyard_events.store.head_signatures import HeadSignatures
from modelyard_events.store.pending import AppendRequest, prepare_append
from modelyard_events.store.ports import SignedPage
from modelyard_events.store.postgres_rows import (
    COLUMNS,
    HASH_COLUMN,
    RECORD_SEPARATOR,
    append_parameters,
    call_driver,
    envelope_from_row,
    fetch_tuples,
)
from modelyard_events.store.postgres_schema import ensure_store_schema

log = logging.getLogger(__name__)
_LOCK_NOT_AVAILABLE = "55P03"
_MAX_BATCH_EVENTS = 2000
_PIPELINE = 2  # batches in flight at once (see PostgresEventStore._commit_forever)
# Below this many queued events one batch beats two: a call's fixed cost (~0.5 ms: the head row,
# the commit) outweighs the Python work the second batch would overlap (8 x 1: 4.2k vs 3.3k events/s).
_SPLIT_AT_EVENTS = 64


@dataclass(frozen=True)
class _Outcome:
    """A batch's call, done: the connection to reuse, and the rows (None when the batch failed)."""

    conn: AsyncConnection | None
    rows: Sequence[Any] | None = None
    recovered: Mapping[int, list[EventEnvelope]] = field(default_factory=dict)
    retried: bool = False  # a lost attempt may have written some of it: where the head is, is unknown


@dataclass(frozen=True)
class _Flight:
    """A batch sent and not yet answered."""

    batch: list[_Queued]
    guess: ChainGuess | None
    task: asyncio.Future[_Outcome]


@dataclass
class _Queued:
    request: AppendRequest
    done: asyncio.Future[list[EventEnvelope]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PostgresEventStore:
    """A service's event log in its own PostgreSQL schema.

    Concurrent `append` calls in one process are batched into one call of the
    append function (group commit): one round trip and one commit for the batch,
    while each append keeps its own expected-version check and atomicity. With a
    `signer` (the service's private key) every committed batch's last event is
    signed right after the commit (store/head_signatures.py); a store without one
    writes a log that no consumer will apply.
    """

    def __init__(self, engine: AsyncEngine, schema: str, *, signer: HeadSigner | None = None) -> None:
        self.engine = engine
        self.schema = checked_schema(schema)
        self.signatures = HeadSignatures(self.schema, signer)
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self._committer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # set when an append is queued
        self._queued_events = 0
        self._head: Head | None = None  # where the committer's last append left the log
        # The arrays arrive as literals (postgres_rows.append_parameters).
        arguments = (
            "CAST(:a_stream_id AS text[]), "
            "CAST(:a_expected AS bigint[]), CAST(:a_count AS int[]), CAST(:a_stream_type AS text[]), "
            "CAST(:a_occurred_at AS timestamptz[]), CAST(:a_actor AS jsonb[]), CAST(:a_org_id AS text[]), "
            "CAST(:a_correlation_id AS text[]), CAST(:a_causation_id AS text[]), :j_event_id, "
            "CAST(:e_type AS text[]), CAST(:e_schema_version AS int[]), :j_data, :j_head, :j_tail, "
            ":s_position, :s_hash, :s_key_id, :s_signature, :g_position, :g_hash, :j_hash"
        )
        self.append_statement = text(f"SELECT * FROM {self.schema}.append_events({arguments})")
        # The committer's: with o_after, the batch a batch sent behind another must not overtake
        # (see the DDL).
        self._ordered_append = text(
            f"SELECT * FROM {self.schema}.append_events({arguments}, CAST(:o_after AS text))"
        )
        self._ordered_append_sql = re.sub(r":(\w+)", r"%(\1)s", str(self._ordered_append))  # psycopg's

    async def create_schema(self) -> None:
        """Create this store's tables and function if they do not exist."""
        await ensure_store_schema(self.engine, self.schema)

    async def close(self) -> None:
        """Stop the committer; appends still queued fail with EventStoreError; sign the last head."""
        if self._committer is not None:
            self._committer.cancel()
            await asyncio.gather(self._committer, return_exceptions=True)
            self._committer = None
        while not self._queue.empty():
            self._queue.get_nowait().done.set_exception(EventStoreError("event store closed"))
        self._queued_events = 0
        if self.signatures.pending is not None:
            with contextlib.suppress(DBAPIError, OSError):  # written again at the next start
                async with self.engine.connect() as conn:
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                    await self.signatures.write_pending(conn)

    async def append(
        self,
        stream_type: str,
        stream_id: str,
        expected_version: int,
        events: Sequence[DomainEvent],
        context: CommandContext,
    ) -> list[EventEnvelope]:
        """Append atomically if the stream is at expected_version; see EventStore."""
        queued = _Queued(prepare_append(stream_type, stream_id, expected_version, events, context))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_forever(), name="event-committer")
        self._queue.put_nowait(queued)
        self._queued_events += len(queued.request.events)
        self._wake.set()
        return await queued.done

    async def _commit_forever(self) -> None:
        """Take queued appends in batches and commit them, up to _PIPELINE batches in flight.

        While PostgreSQL runs one batch, the next is built and sent on a second connection, where
        it waits for the head row's lock: the Python work of one batch overlaps the server's work
        on the other. Batches land (callers answered) in the order they were sent.
        """
        spare: list[AsyncConnection] = []
        flights: deque[_Flight] = deque()
        try:
            while True:
                while len(flights) < _PIPELINE and not self._queue.empty():
                    # Alone, a batch of every queued append would leave the next one nothing to
                    # overlap with: when there are many events, half go now, the rest right behind.
                    split = not flights and self._queued_events >= _SPLIT_AT_EVENTS
                    ahead = flights[-1] if flights else None
                    flights.append(self._launch(self._take(split=split), spare, ahead))
                if not flights:
                    await asyncio.sleep(0)  # callers just answered may queue their next append
                    if self._queue.empty():
                        if self.signatures.pending is not None:
                            conn = await self._sign_alone(spare.pop() if spare else None)
                            spare.extend([conn] if conn is not None else [])
                        if self._queue.empty():
                            self._wake.clear()
                            await self._wake.wait()
                    continue
                first = flights[0].task
                if not first.done():
                    self._wake.clear()
                    if len(flights) == _PIPELINE or self._queue.empty():  # nothing to send meanwhile
                        await self._wake.wait()  # an append queued, or a flight done
                if first.done():
                    outcome = first.result()
                    self._land(flights.popleft(), outcome, spare, more=bool(flights))
        finally:
            await self._abandon(flights, spare)

    async def _abandon(self, flights: deque[_Flight], spare: list[AsyncConnection]) -> None:
        """The committer stops (close, or a defect): answer every caller, in flight or queued."""
        for flight in flights:
            flight.task.cancel()
        await asyncio.gather(*(f.task for f in flights), return_exceptions=True)
        for flight in flights:  # a flight that finished before it was cancelled still lands
            task = flight.task
            if not task.cancelled() and task.exception() is None:
                self._land(flight, task.result(), spare, more=False)
            stopped = EventStoreError("the event store stopped during the append")
            _fail(flight.batch, _outcome_unknown(stopped))
        self._head = None  # it may hold the prediction of a flight that never landed
        while not self._queue.empty():  # never sent
            self._queue.get_nowait().done.set_exception(EventStoreError("event store closed"))
        self._queued_events = 0
        for conn in spare:
            await _discard(conn)

    def _take(self, *, split: bool) -> list[_Queued]:
        queued = self._queue.qsize()
        most = (queued + 1) // 2 if split else queued
        batch: list[_Queued] = []
        size = 0
        while not self._queue.empty() and size < _MAX_BATCH_EVENTS and len(batch) < most:
            batch.append(self._queue.get_nowait())
            size += len(batch[-1].request.events)
        self._queued_events -= size
        return batch

    def _launch(self, batch: list[_Queued], spare: list[AsyncConnection], ahead: _Flight | None) -> _Flight:
        """Send `batch`, hashed for where the batches before it should leave the head."""
        head, self._head = self._head, None  # known again once this batch's rows say where it ends
        guess: ChainGuess | None = None
        try:
            guess = ChainGuess.of([q.request for q in batch], head) if head else None
        except Exception:  # a defect: the batch goes without a guess and PostgreSQL hashes it
            log.exception("event store %s: guessing a batch's hashes failed", self.schema)
        self._head = guess.end if guess else None
        conn = spare.pop() if spare else None
        task = asyncio.ensure_future(self._fly_then_wake(conn, batch, guess, ahead))
        task.add_done_callback(lambda _: self._wake.set())  # also for a flight cancelled unstarted
        return _Flight(batch, guess, task)

    async def _fly_then_wake(
        self,
        conn: AsyncConnection | None,
        batch: list[_Queued],
        guess: ChainGuess | None,
        ahead: _Flight | None,
    ) -> _Outcome:
        """`_fly`, waking the committer in the flight's own last step: a done-callback runs a loop
        turn later, and the callers would be answered a turn later still."""
        try:
            return await self._fly(conn, batch, guess, ahead)
        finally:
            self._wake.set()

    async def _fly(
        self,
        conn: AsyncConnection | None,
        batch: list[_Queued],
        guess: ChainGuess | None,
        ahead: _Flight | None,
    ) -> _Outcome:
        """Run one batch's call; every failure fails the batch, never the committer."""
        try:
            after = (
                RECORD_SEPARATOR.join(str(q.request.events[0].event_id) for q in ahead.batch)
                if ahead
                else None
            )
            conn, rows, retried = await self._execute(conn, batch, guess, after)
            if not rows and ahead:  # it overtook the batch ahead, which had not committed: nothing done
                await asyncio.wait((ahead.task,))
                conn, rows, retried = await self._execute(conn, batch, None, None)
        except _OutcomeUnknown as error:
            _fail(batch, error)
            await _discard(conn)
            return _Outcome(None)
        except DBAPIError as error:
            _fail(batch, _translate(error))
            if error.connection_invalidated or conn is None or conn.closed:
                await _discard(conn)
                conn = None
            return _Outcome(conn)
        except (OSError, EventStoreError) as error:
            _fail(batch, EventStoreError(f"append failed: {_brief(error)}"))
            await _discard(conn)
            return _Outcome(None)
        except Exception as error:  # a defect, or an input prepare_append let through
            log.exception("event store %s: an append batch failed", self.schema)
            _fail(batch, EventStoreError(f"append failed: {_brief(error)}"))
            await _discard(conn)  # in an unknown state
            return _Outcome(None)
        except BaseException:  # cancelled: the committer stops (its _abandon answers the callers)
            await _discard(conn)
            raise
        # From here the batch has committed: a failure leaves its outcome unknown, not failed,
        # so that no caller retries an append that was written.
        try:
            recovered = await self._own_appends(conn, batch, rows) if retried else {}
        except Exception as error:
            log.exception("event store %s: finding a retried batch's own appends failed", self.schema)
            _fail_conflicts(batch, rows, _outcome_unknown(error))
            await _discard(conn)
            return _Outcome(None, rows, {}, retried=True)
        except BaseException:
            await _discard(conn)
            raise
        return _Outcome(conn, rows, recovered, retried)

    def _land(self, flight: _Flight, outcome: _Outcome, spare: list[AsyncConnection], *, more: bool) -> None:
        """Answer a batch's callers, in the order batches were sent; note where the head is."""
        if outcome.conn is not None:
            spare.append(outcome.conn)
        if outcome.rows is None:
            self._head = None
            return
        try:
            last = _settle(flight.batch, outcome.rows, outcome.recovered, flight.guess)
        except Exception as error:
            log.exception("event store %s: settling a committed batch failed", self.schema)
            _fail(flight.batch, _outcome_unknown(error))
            self._head = None  # the next batch hashes in SQL
            return
        if last:
            self.signatures.written(*last)
        if outcome.retried:
            self._head = None  # what the lost attempt wrote may end past the rows' last event
        elif not more:
            self._head = Head(*last) if last else None
        elif not (flight.guess and last and Head(*last) == flight.guess.end):
            self._head = None  # the batch behind this one was hashed for a head that is not there

    async def _execute(
        self, conn: AsyncConnection | None, batch: list[_Queued], guess: ChainGuess | None, after: str | None
    ) -> tuple[AsyncConnection, Sequence[Any], bool]:
        """Run the append function for `batch`; once more on a new connection if the old one died.

        The committer keeps its connections between batches, so a PostgreSQL restart shows up as a
        dead connection at the next append. Returns (connection, rows, whether it was retried); no
        rows when `after` (the first event ids of the batch sent ahead) says it came too early. When
        the first attempt's connection was lost and the second fails, the outcome is unknown (the first
        may have committed): _OutcomeUnknown, never a retryable error.
        """
        signature = self.signatures.take()
        parameters = append_parameters([q.request for q in batch]) | signature | {"o_after": after}
        parameters |= guess.parameters() if guess else NO_GUESS
        for attempt in (1, 2):
            if conn is None:
                conn = await self._connect()
            try:
                rows = await self._call_append(conn, parameters)
                if rows:  # none: the call returned before writing anything, the signature too
                    self.signatures.committed(signature)
                return conn, rows, attempt == 2
            except DBAPIError as error:
                if attempt == 2:
                    await _discard(conn)  # the caller holds the first connection, already closed
                    raise _outcome_unknown(error) from error
                if not (error.connection_invalidated or conn.closed):
                    raise
                log.warning("event store %s: connection lost (%s); appending again", self.schema, error.orig)
                await conn.close()
                conn = None
        raise AssertionError("unreachable")

    async def _call_append(self, conn: AsyncConnection, parameters: Mapping[str, Any]) -> Sequence[Any]:
        """One call of the append function, run by psycopg itself (postgres_rows.call_driver)."""
        return await call_driver(conn, self._ordered_append_sql, parameters)

    async def _connect(self) -> AsyncConnection:
        conn = await self.engine.connect()
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        return conn

    async def _sign_alone(self, conn: AsyncConnection | None) -> AsyncConnection | None:
        """Write the pending signature on its own; on failure the next append carries it."""
        try:
            conn = conn or await self._connect()
            await self.signatures.write_pending(conn)
            return conn
        except Exception as error:  # a pool timeout, a signer's error: never the committer's death
            log.warning("event store %s: signing the head failed: %r", self.schema, error)
            await _discard(conn)
            return None
        except BaseException:  # cancelled (close()): this connection is in no list _abandon closes
            await _discard(conn)
            raise

    async def _own_appends(
        self, conn: AsyncConnection, batch: list[_Queued], rows: Sequence[Any]
    ) -> dict[int, list[EventEnvelope]]:
        """After a retry: requests that now conflict because the lost attempt had committed them.

        Their events are in the log under their own event ids; the caller gets them as written.
        """
        recovered: dict[int, list[EventEnvelope]] = {}
        for index, (queued, row) in enumerate(zip(batch, rows, strict=True)):
            if row.first_position is not None:
                continue
            ids = [str(e.event_id) for e in queued.request.events]
            sql = text(
                f"SELECT {COLUMNS} FROM {self.schema}.events WHERE event_id = ANY(:ids) ORDER BY position"
            )
            found = (await conn.execute(sql, {"ids": ids})).all()
            if len(found) == len(ids):
                recovered[index] = [envelope_from_row(r) for r in found]
        return recovered

    async def read_stream(
        self, stream_id: str, after_version: int = 0, *, limit: int | None = None
    ) -> list[EventEnvelope]:
        """A stream's events with stream_version > after_version, ascending; at most `limit` (None: all)."""
        sql = text(
            f"SELECT {COLUMNS} FROM {self.schema}.events WHERE stream_id = :s "
            "AND stream_version > :v ORDER BY stream_version LIMIT :n"
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sql, {"s": stream_id, "v": after_version, "n": limit})).all()
        return [envelope_from_row(row) for row in rows]

    async def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[EventEnvelope]]:
        """Several whole streams in one query (one snapshot), each ascending; missing ones map to []."""
        streams: dict[str, list[EventEnvelope]] = {stream_id: [] for stream_id in stream_ids}
        if not streams:
            return streams
        sql = text(
            f"SELECT {COLUMNS} FROM {self.schema}.events WHERE stream_id = ANY(:ids) "
            "ORDER BY stream_id, stream_version"
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sql, {"ids": list(streams)})).all()
        for row in rows:
            envelope = envelope_from_row(row)
            streams[envelope.stream_id].append(envelope)
        return streams

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[EventEnvelope]:
        """Events with position > after_position, ascending, at most `limit`."""
        sql = f"SELECT {COLUMNS} FROM {self.schema}.events WHERE position > %s ORDER BY position LIMIT %s"
        async with self.engine.connect() as conn:
            rows = await fetch_tuples(conn, sql, (after_position, limit))
        return [envelope_from_row(row) for row in rows]

    async def read_rows(self, after_position: int, limit: int) -> Sequence[Any]:
        """Raw rows (named tuples) in position order: verify uses them without building envelopes.

        Both reads go through psycopg itself, as signed pages do: SQLAlchemy's result rows cost
        about 2 µs an event more."""
        sql = (
            f"SELECT {COLUMNS} FROM {self.schema}.events WHERE position > %(p)s ORDER BY position LIMIT %(n)s"
        )
        async with self.engine.connect() as conn:
            return await call_driver(conn, sql, {"p": after_position, "n": limit})

    async def head_position(self) -> int:
        """The highest committed position."""
        sql = text(f"SELECT last_position FROM {self.schema}.event_head WHERE id = 1")
        async with self.engine.connect() as conn:
            return int((await conn.execute(sql)).scalar_one())

    async def read_signed(self, after_position: int = 0, limit: int = 1000) -> SignedPage:
        """Events after `after_position` through a signed head, with the signed heads among them.

        About `limit` events: the page ends at the last signed head within the limit, or at the
        first one beyond it when a single append was larger. Empty when nothing is signed yet.
        """
        async with self.engine.connect() as conn:
            end = await self.signatures.page_end(conn, after_position, limit)
            if end is None:
                return SignedPage([], [])
            sql = (
                f"SELECT {COLUMNS} FROM {self.schema}.events WHERE position > %s AND position <= %s "
                "ORDER BY position"
            )
            rows = await fetch_tuples(conn, sql, (after_position, end))
            heads = await self.signatures.heads_between(conn, after_position, end)
        # The hashes are recomputed here from the stored text (cheaper than re-encoding the parsed
        # payload, and exact to the byte); a page with a mismatch is served as stored, unflagged,
        # so an auditor reading ReadEvents sees the altered event and a consumer refuses it.
        hasher = RowHasher()
        checked = all(hasher.hash(row) == row[HASH_COLUMN] for row in rows)
        return SignedPage([envelope_from_row(row) for row in rows], heads, hashes_checked=checked)

    async def sign_tail(self) -> int:
        """Sign events a crash left unsigned, once they are checked to link to the last signed head.

        Services call this at start. Returns how many events it covered; EventStoreError when the
        unsigned tail does not link (its rows were altered: run verify).
        """
        signer = self.signatures.signer
        if signer is None:
            raise EventStoreError(f"store {self.schema} has no signing key to sign its tail with")
        async with self.engine.begin() as conn:
            head_sql = (
                f"SELECT last_position, last_hash FROM {self.schema}.event_head WHERE id = 1 FOR UPDATE"
            )
            head = (await conn.execute(text(head_sql))).one()
            last = await self.signatures.last_signed(conn)
            position, last_hash = (last.position, last.hash) if last else (0, GENESIS_HASH)
            if head.last_position <= position:
                return 0
            if last is not None:
                HeadVerifier([signer.public_key]).check(last)
            sql = text(f"SELECT {COLUMNS} FROM {self.schema}.events WHERE position >= :p ORDER BY position")
            rows = (await conn.execute(sql, {"p": max(position, 1)})).all()
            _check_tail(rows, position, last_hash, head.last_position, self.schema)
            await self.signatures.sign_tail(conn, head.last_position, head.last_hash)
            return int(head.last_position - position)


def _check_tail(rows: Sequence[Any], position: int, last_hash: str, head: int, schema: str) -> None:
    """Rows from the last signed position (or 1) to the head must recompute and link."""
    hasher, expected, prev = RowHasher(), position, last_hash
    for row in rows:
        if row.position == position:  # the signed event itself
            if row.hash != last_hash:
                raise EventStoreError(f"{schema}: the event at signed position {position} was altered")
            continue
        expected += 1
        if row.position != expected or row.prev_hash != prev or hasher.hash(row) != row.hash:
            raise EventStoreError(
                f"{schema}: unsigned event at position {expected} does not link to the last signed "
                "head: the log was altered (run verify)"
            )
        prev = row.hash
    if expected != head:
        raise EventStoreError(f"{schema}: the log ends at {expected} but its head row says {head}")


def _fail(batch: list[_Queued], error: EventStoreError) -> None:
    for queued in batch:
        if not queued.done.done():
            queued.done.set_exception(error)


def _fail_conflicts(batch: list[_Queued], rows: Sequence[Any], error: EventStoreError) -> None:
    """Fail the requests the function refused; the accepted ones are settled as written."""
    for queued, row in zip(batch, rows, strict=False):
        if row.first_position is None and not queued.done.done():
            queued.done.set_exception(error)


class _OutcomeUnknown(EventStoreError):
    """An append that may or may not have been written."""


def _outcome_unknown(error: BaseException) -> _OutcomeUnknown:
    return _OutcomeUnknown(
        f"append outcome unknown: it may have been written ({_brief(error)}); "
        "read the stream before appending again"
    )


def _brief(error: BaseException) -> str:
    """An error's text short enough for a caller and a log line (a UnicodeEncodeError holds its input)."""
    text = repr(error)
    return text if len(text) <= 300 else f"{text[:300]}…"


async def _discard(conn: AsyncConnection | None) -> None:
    """Close a connection in an unknown state; closing one that is already broken may raise."""
    if conn is not None:
        with contextlib.suppress(Exception):
            await conn.close()


def _settle(
    batch: list[_Queued],
    rows: Sequence[Any],
    recovered: Mapping[int, list[EventEnvelope]],
    guess: ChainGuess | None,
) -> tuple[int, str] | None:
    """Resolve each caller's future; return (position, hash) of the batch's last event written.

    `recovered`: requests (by index) a lost attempt had already written, with their events.
    """
    last: tuple[int, str] | None = None
    for index, (queued, row) in enumerate(zip(batch, rows, strict=True)):
        if row.first_position is not None:
            last = max(last or (0, ""), (row.first_position + len(queued.request.events) - 1, row.last_hash))
        elif own := recovered.get(index):  # written by a lost attempt: signed like the rest
            last = max(last or (0, ""), (own[-1].position, own[-1].hash))
        if queued.done.done():  # the caller was cancelled; its append still happened
            continue
        request = queued.request
        if index in recovered:
            queued.done.set_result(recovered[index])
            continue
        if row.first_position is None:
            queued.done.set_exception(
                ConcurrencyConflict(request.stream_id, request.expected_version, row.actual_version)
            )
            continue
        guessed = guess.hashes_for(index, row.first_position, row.first_prev_hash) if guess else None
        try:
            queued.done.set_result(_recorded(request, row, guessed))
        except EventStoreError as error:
            queued.done.set_exception(error)
    return last


def _recorded(request: AppendRequest, row: Any, guessed: Sequence[str] | None) -> list[EventEnvelope]:
    """Envelopes of an accepted request, with the chain computed here as a cross-check.

    `guessed`: the request's hashes from the batch's ChainGuess, when it was written where the
    guess put it (the same hashes this would compute: the chain from its first position on).
    """
    prev, position, recorded = row.first_prev_hash, row.first_position, []
    for n, pending in enumerate(request.events):
        digest = guessed[n] if guessed else chain_hash(prev, pending.halves, position)
        recorded.append(pending.recorded(position, prev, digest))
        prev, position = digest, position + 1
    if prev != row.last_hash:
        raise EventStoreError("hash computed by PostgreSQL differs from Python's: canonical form drift")
    return recorded


def _translate(error: DBAPIError) -> EventStoreError:
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate == _LOCK_NOT_AVAILABLE:
        return StoreBusy("the event store's append lock was busy past lock_timeout; retry")
    return EventStoreError(f"append failed: {error.orig}")
