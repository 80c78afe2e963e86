"""The PostgreSQL event store: single-round-trip appends with in-process group commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
    append_parameters,
    envelope_from_row,
    fetch_tuples,
)
from modelyard_events.store.postgres_schema import ensure_store_schema

log = logging.getLogger(__name__)
_LOCK_NOT_AVAILABLE = "55P03"
_MAX_BATCH_EVENTS = 2000


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
        self._head: Head | None = None  # where the committer's last append left the log
        self.append_statement = text(  # the arrays arrive as literals (postgres_rows.append_parameters)
            f"SELECT * FROM {self.schema}.append_events(CAST(:a_stream_id AS text[]), "
            "CAST(:a_expected AS bigint[]), CAST(:a_count AS int[]), CAST(:a_stream_type AS text[]), "
            "CAST(:a_occurred_at AS timestamptz[]), CAST(:a_actor AS jsonb[]), CAST(:a_org_id AS text[]), "
            "CAST(:a_correlation_id AS text[]), CAST(:a_causation_id AS text[]), :j_event_id, "
            "CAST(:e_type AS text[]), CAST(:e_schema_version AS int[]), :j_data, :j_head, :j_tail, "
            ":s_position, :s_hash, :s_key_id, :s_signature, :g_position, :g_hash, :j_hash)"
        )

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
        await self._queue.put(queued)
        return await queued.done

    async def _commit_forever(self) -> None:
        conn: AsyncConnection | None = None
        try:
            while True:
                if self._queue.empty():
                    await asyncio.sleep(0)  # callers just answered may queue their next append
                    if self._queue.empty() and self.signatures.pending is not None:
                        conn = await self._sign_alone(conn)
                batch = await self._next_batch()
                head, self._head = self._head, None  # known again once this batch's rows say where it ends
                # Everything between taking a batch and settling it fails the batch, never the committer:
                # a caller must not wait forever on an append nobody will answer.
                try:
                    guess = ChainGuess.of([q.request for q in batch], head) if head else None
                    conn, rows, retried = await self._execute(conn, batch, guess)
                except DBAPIError as error:
                    _fail(batch, _translate(error))
                    if error.connection_invalidated or conn is None or conn.closed:
                        await _discard(conn)
                        conn = None
                    continue
                except (OSError, EventStoreError) as error:
                    _fail(batch, EventStoreError(f"append failed: {_brief(error)}"))
                    await _discard(conn)
                    conn = None
                    continue
                except Exception as error:  # a defect, or an input prepare_append let through
                    log.exception("event store %s: an append batch failed", self.schema)
                    _fail(batch, EventStoreError(f"append failed: {_brief(error)}"))
                    await _discard(conn)  # in an unknown state
                    conn = None
                    continue
                except BaseException:
                    _fail(batch, EventStoreError("event store closed during the append"))
                    raise
                # From here the batch has committed: a failure leaves its outcome unknown, not failed,
                # so that no caller retries an append that was written.
                try:
                    recovered = await self._own_appends(conn, batch, rows) if retried else {}
                except Exception as error:
                    log.exception("event store %s: finding a retried batch's own appends failed", self.schema)
                    _fail_conflicts(batch, rows, _outcome_unknown(error))
                    recovered = {}
                    await _discard(conn)
                    conn = None
                try:
                    last = _settle(batch, rows, recovered, guess)
                except Exception as error:
                    log.exception("event store %s: settling a committed batch failed", self.schema)
                    _fail(batch, _outcome_unknown(error))
                    continue  # the head stays unknown: the next batch hashes in SQL
                if last:
                    self.signatures.written(*last)
                    self._head = Head(*last)
        finally:
            if conn is not None:
                await conn.close()

    async def _execute(
        self, conn: AsyncConnection | None, batch: list[_Queued], guess: ChainGuess | None
    ) -> tuple[AsyncConnection, Sequence[Any], bool]:
        """Run the append function for `batch`; once more on a new connection if the old one died.

        The committer keeps its connection between batches, so a PostgreSQL restart shows up as a
        dead connection at the next append. Returns (connection, rows, whether it was retried).
        """
        signature = self.signatures.take()
        parameters = append_parameters([q.request for q in batch]) | signature
        parameters |= guess.parameters() if guess else NO_GUESS
        for attempt in (1, 2):
            if conn is None:
                conn = await self._connect()
            try:
                rows = (await conn.execute(self.append_statement, parameters)).all()
                self.signatures.committed(signature)
                return conn, rows, attempt == 2
            except DBAPIError as error:
                if attempt == 2:
                    await _discard(conn)  # the caller holds the first connection, already closed
                    raise
                if not (error.connection_invalidated or conn.closed):
                    raise
                log.warning("event store %s: connection lost (%s); appending again", self.schema, error.orig)
                await conn.close()
                conn = None
        raise AssertionError("unreachable")

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
        except (DBAPIError, OSError) as error:
            log.warning("event store %s: signing the head failed: %r", self.schema, error)
            if conn is not None:
                await conn.close()
            return None

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

    async def _next_batch(self) -> list[_Queued]:
        batch = [await self._queue.get()]
        size = len(batch[0].request.events)
        while not self._queue.empty() and size < _MAX_BATCH_EVENTS:
            batch.append(self._queue.get_nowait())
            size += len(batch[-1].request.events)
        return batch

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[EventEnvelope]:
        """A stream's events with stream_version > after_version, ascending."""
        sql = text(
            f"SELECT {COLUMNS} FROM {self.schema}.events WHERE stream_id = :s "
            "AND stream_version > :v ORDER BY stream_version"
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sql, {"s": stream_id, "v": after_version})).all()
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
        return [envelope_from_row(row) for row in await self.read_rows(after_position, limit)]

    async def read_rows(self, after_position: int, limit: int) -> Sequence[Any]:
        """Raw rows in position order (verify uses them without building envelopes)."""
        sql = text(
            f"SELECT {COLUMNS} FROM {self.schema}.events WHERE position > :p ORDER BY position LIMIT :n"
        )
        async with self.engine.connect() as conn:
            return (await conn.execute(sql, {"p": after_position, "n": limit})).all()

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


def _outcome_unknown(error: Exception) -> EventStoreError:
    return EventStoreError(
        f"append outcome unknown: its batch was committed but could not be settled ({_brief(error)}); "
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
            last = (row.first_position + len(queued.request.events) - 1, row.last_hash)
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
