"""ProjectionRunner: Kafka in, read model out, each source event applied exactly once.

Per source service the runner keeps (position, hash) of the last applied event in the read
model's transaction. Kafka is not trusted: every message's hash is recomputed, and a run of
messages that extends the chain is applied only through an event that a signed head, verified
against the source's pinned public key, names (consumer/verified_runs.py); the source's own log is
checked the same way when it is read. One at or below the position is a duplicate. One further on
waits briefly (consumer/arrivals.py): the messages in between usually come in another
partition's next fetch. A hole that outlives the wait (a broker
that lost data, a partition another replica owns) is read from the source itself (`EventSource`:
the store, or ReadEvents over gRPC) and applied in order, and what Kafka brought is checked against
it. Consecutive events of a source go to a `BatchProjection` as one batch (a few statements for a
thousand events instead of a few per event); if the batch fails they are applied one by one.
Kafka offsets are committed only after that transaction commits (the intake is a FastStream
batch subscriber acknowledged by hand: consumer/kafka_intake.py; the gap deadline and the reconcile
run on the runner's own task, taking turns with the batches). Poison (undecodable bytes,
unknown types, a hash that does not match, a signature that does not verify, a handler failing
`max_attempts` times) goes to `<topic>.dlq` with the error, and the runner goes on. A source whose
own log does not verify is halted (`halted` says why, and each reconcile tries it again) while the
other sources go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_events.consumer.arrivals import EarlyArrivals
from modelyard_events.consumer.checkpoints import create_checkpoint_table, lock_checkpoint, save_checkpoint
from modelyard_events.consumer.kafka_intake import KafkaIntake
from modelyard_events.consumer.projection import BatchProjection, Decoded, Projection
from modelyard_events.consumer.shared_decodes import SharedDecodes, shared_decodes
from modelyard_events.consumer.verified_runs import SourceTampered, verified_page
from modelyard_events.db import is_transient
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.errors import EventStoreError, MalformedEvent, SourceUnavailable
from modelyard_events.kafka_security import KafkaSecurity, kafka_producer
from modelyard_events.registry import EventRegistry
from modelyard_events.signing import ForgedEvent, HeadVerifier
from modelyard_events.store.ports import EventSource
from modelyard_events.topics import dead_letter_topic, ensure_topics
from modelyard_events.wire import encode_envelope

log = logging.getLogger(__name__)
_CATCH_UP_PAGE = 1000
# Events caught up per transaction: ten pages (one commit and head query per 10,000 events).
_CATCH_UP_SPAN = 10 * _CATCH_UP_PAGE
_NO_END = 2**63 - 1  # a position no log reaches: read until nothing more is signed
_POLL_RECORDS = 1000


@dataclass(frozen=True)
class SourceTopic:
    """One upstream service: its topic, where to read its log, and the public keys pinned for it."""

    name: str
    topic: str
    source: EventSource
    keys: HeadVerifier


class ProjectionRunner:
    """Runs one projection over one or more source topics."""

    def __init__(
        self,
        engine: AsyncEngine,
        projection: Projection,
        registry: EventRegistry,
        sources: list[SourceTopic],
        bootstrap_servers: str | None,
        *,
        group_id: str | None = None,
        max_attempts: int = 3,
        reconcile_every_s: float = 5.0,
        gap_wait_s: float = 0.05,
        security: KafkaSecurity | None = None,
        decodes: SharedDecodes = shared_decodes,
    ) -> None:
        self.engine, self.projection, self.registry = engine, projection, registry
        self._decodes = decodes  # what the process's other runners of a topic already decoded
        self._by_topic = {s.topic: s for s in sources}
        self._bootstrap = bootstrap_servers
        self._security = security  # how the consumer and the DLQ producer connect (plaintext when None)
        self._group_id = group_id or f"projection.{projection.name}"
        self._max_attempts, self._reconcile_every_s = max_attempts, reconcile_every_s
        self._early = EarlyArrivals(gap_wait_s)
        self._gap_wait_ms = max(1, int(gap_wait_s * 1000))
        self._dlq: AIOKafkaProducer | None = None
        # The intake's batches and the timers' work take turns on the read model.
        self._turns = asyncio.Lock()
        self._wake = asyncio.Event()  # a batch left early arrivals waiting: their deadline starts
        self._delivering: set[str] = set()  # topics that delivered since the last reconcile
        self._assigned: set[str] = set()  # topics a rebalance assigned, to reconcile at once
        self.dead_lettered = 0
        self.caught_up = 0  # events applied from the source reader because Kafka did not bring them
        self.batches_failed = 0  # Kafka batches whose transaction failed (not acknowledged, read again)
        self.halted: dict[str, str] = {}  # source → why its own log could not be applied

    @property
    def sources(self) -> list[SourceTopic]:
        """The sources this runner follows (an audit replay rebuilds from the same ones)."""
        return list(self._by_topic.values())

    async def create_tables(self) -> None:
        """Create the checkpoint table and the projection's own tables."""
        async with self.engine.begin() as conn:
            await create_checkpoint_table(conn, self.projection.schema)
            await self.projection.create_tables(conn)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; lost connections are retried with backoff (creating the
        tables too: a start that races a twin runner's CREATE, or a database still starting, is
        retried like any other lost connection instead of ending the task)."""
        backoff = 0.1
        while not stop.is_set():
            try:
                await self._consume(stop)
            except Exception as error:
                log.warning("projection %s: %r; retrying in %.1f s", self.projection.name, error, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 5.0)

    async def _consume(self, stop: asyncio.Event) -> None:
        if self._bootstrap is None:
            raise EventStoreError("run() needs bootstrap_servers; without them only catch_up() works")
        await self.create_tables()
        topics = list(self._by_topic)
        dead_letters = [dead_letter_topic(t) for t in topics]
        await ensure_topics(self._bootstrap, topics + dead_letters, security=self._security)
        intake = KafkaIntake(
            topics,
            bootstrap_servers=self._bootstrap,
            security=self._security,
            group_id=self._group_id,
            max_records=_POLL_RECORDS,
            handle=self._on_batch,
            lock=self._turns,
            on_assigned=self._note_assigned,
        )
        self._dlq = kafka_producer(self._bootstrap, self._security, acks="all")
        await self._dlq.start()
        self._decodes.join(topics)
        try:
            await intake.start()
            await self._timers(stop, intake)
        finally:
            self._decodes.leave(topics)
            await intake.stop()
            await self._dlq.stop()
            self._dlq = None

    def _note_assigned(self, topics: set[str]) -> None:
        self._assigned |= topics
        self._wake.set()

    async def _on_batch(self, records: list[Any]) -> None:
        self._delivering.update(record.topic for record in records)
        try:
            # Whether the poll drained the partitions is known only as of its fetch; the timers,
            # woken below, ask the broker before a hole is read from the source.
            await self.handle_records(records, drained=False)
        except Exception:
            self.batches_failed += 1  # the intake rewinds and reads the batch again
            raise
        if self._early.waiting():
            self._wake.set()  # the gap deadline is the timers' to keep

    async def _timers(self, stop: asyncio.Event, intake: KafkaIntake) -> None:
        """Until `stop`: end a gap's wait on time, and reconcile every `reconcile_every_s` (at once for
        topics a rebalance just assigned). Raises what they raise, which restarts the intake.

        A gap's wait ends early only while the intake has taken everything its partitions hold, as
        the broker says when asked (`drained_at_broker`): a consumer that lags (a busy one, or one
        reading a backlog, which a broker hands out a partition's run at a time) still has the
        hole's event to come."""
        reconciled_at = time.monotonic()
        while not stop.is_set():
            waiting = self._early.waiting()
            until_reconcile = max(0.0, reconciled_at + self._reconcile_every_s - time.monotonic())
            self._wake.clear()
            sleep = min(self._gap_wait_ms / 1000, until_reconcile) if waiting else until_reconcile
            if not self._assigned:
                await _first_of(stop, self._wake, sleep)
            if stop.is_set():
                return
            if self._early.waiting():
                overdue_soon = self._early.due()
                topics = {s.topic for s in self._by_topic.values() if s.name in overdue_soon}
                drained = await intake.drained_at_broker(topics) if topics else False
                async with self._turns:
                    await self.handle_records([], drained=drained)
            due = time.monotonic() - reconciled_at > self._reconcile_every_s
            if due or self._assigned:
                # A topic that delivered since the last pass reveals its holes itself; reading
                # its source now would only repeat what Kafka is bringing.
                quiet = {t for t in self._by_topic if t not in self._delivering} if due else set()
                chosen, self._assigned = quiet | (self._assigned & set(self._by_topic)), set()
                if due:
                    reconciled_at, self._delivering = time.monotonic(), set()
                async with self._turns:
                    await self._reconcile([t for t in self._by_topic if t in chosen])

    async def _reconcile(self, topics: list[str]) -> None:
        # A source that cannot be read right now (its service is restarting) must not stop the
        # live consumption of the others; the next reconcile tries again.
        try:
            await self.catch_up(topics)
        except (OSError, SourceUnavailable) as error:
            log.warning("projection %s: catch-up skipped: %r", self.projection.name, error)
        except SourceTampered:
            pass  # that source is halted (logged once by _halt); the others were caught up

    async def handle_records(self, records: list[Any], *, drained: bool = True) -> None:
        """Apply a batch of Kafka records in one transaction (poison to the DLQ).

        Records ahead of a hole in their source's chain are held (EarlyArrivals) until the hole
        is filled by later records or has waited `gap_wait_s` with the consumer `drained` (every
        assigned partition at its end on the broker); then the range is read from the source.
        """
        arrived: dict[str, list[EventEnvelope]] = defaultdict(list)
        for record in records:
            source = self._by_topic[record.topic]
            try:
                delivered = self._decodes.decode(record.topic, record.value, record.headers or ())
                if delivered.head is not None:
                    source.keys.check(delivered.head)
                    self._early.note_head(source.name, delivered.head.position, delivered.head.hash)
                arrived[record.topic].append(delivered.envelope)
            except MalformedEvent as error:  # ForgedEvent too: a bad hash or signature
                await self._dead_letter(record.topic, record.value, error, record)
        async with self.engine.begin() as conn:
            for topic, source in self._by_topic.items():
                if topic in arrived or self._early.waiting(source.name):
                    try:
                        async with conn.begin_nested():
                            await self._apply_arrivals(conn, source, arrived.get(topic, []), drained)
                    except SourceTampered as error:
                        self._halt(source, error)
                    except (OSError, SourceUnavailable) as error:
                        # Its hole is read again when its next message shows it, or at the next
                        # reconcile; the other sources' messages are applied now.
                        log.warning(
                            "projection %s: %s unreadable: %r", self.projection.name, source.name, error
                        )

    async def catch_up(self, topics: list[str] | None = None) -> None:
        """Apply what the sources (of `topics`, default all) held beyond the checkpoints when the
        pass began (their heads then): events appended during the pass are left to the next.

        A source whose log does not verify is left where it is; the others are caught up, then
        SourceTampered names the first one that did not verify.
        """
        sources = [s for s in self._by_topic.values() if topics is None or s.topic in topics]
        if len(sources) > 1:
            await self._catch_up_interleaved(sources)
            return
        tampered: SourceTampered | None = None
        for source in sources:
            try:
                await self._catch_up_source(source)
            except SourceTampered as error:
                self._halt(source, error)
                tampered = tampered or error
        if tampered is not None:
            raise tampered

    async def _catch_up_interleaved(self, sources: list[SourceTopic]) -> None:
        """Catch several sources up together, in the order their events were recorded.

        One source after the other would apply, say, every trainer report before the job events
        they follow, and a projection joining them (a report updates its job's row) would lose
        them: a rebuild would then differ from the live read model. So each transaction locks every
        source's checkpoint (in the runner's one order, as live application does) and merges their
        signed, verified pages by `occurred_at`, never reordering a source's own events.
        """
        tampered: SourceTampered | None = None
        ends = {s.name: await s.source.head_position() for s in sources}  # this pass's ends, as below
        active = list(sources)
        while active:
            async with self.engine.begin() as conn:
                cursors = [_Cursor(s, *await self._lock(conn, s), ends[s.name]) for s in active]
                applied = 0
                try:
                    while applied < _CATCH_UP_SPAN:
                        for cursor in [c for c in cursors if not c.buffer and not c.done]:
                            try:
                                await cursor.fill()
                            except SourceTampered as error:
                                self._halt(cursor.source, error)
                                tampered = tampered or error
                                cursor.done, cursor.halted = True, True
                        run = next_run(cursors)
                        if not run:
                            break
                        cursor, envelopes = run
                        await self._apply_in_order(conn, cursor.source, envelopes)
                        cursor.position, cursor.last_hash = envelopes[-1].position, envelopes[-1].hash
                        cursor.moved = True
                        applied += len(envelopes)
                finally:
                    for cursor in cursors:
                        await cursor.close()
                for cursor in cursors:
                    if cursor.moved:
                        await save_checkpoint(
                            conn,
                            self.projection.schema,
                            self.projection.name,
                            cursor.source.name,
                            cursor.position,
                            cursor.last_hash,
                        )
            self.caught_up += applied
            for cursor in cursors:
                if cursor.done and not cursor.buffer and not cursor.halted:
                    self.halted.pop(cursor.source.name, None)
            active = [c.source for c in cursors if not (c.done and not c.buffer)]
            if applied == 0:
                break
        if tampered is not None:
            raise tampered

    async def _catch_up_source(self, source: SourceTopic) -> None:
        # A pass ends at the head it found: one that chased a head moving faster than it applies
        # (a busy writer, a projection applying event by event) would never end, and its runner
        # would never see its stop. What is appended meanwhile comes through Kafka or the next pass.
        head: int | None = None
        while True:
            async with self.engine.begin() as conn:
                position, last_hash = await self._lock(conn, source)
                head = await source.source.head_position() if head is None else head
                if head <= position:
                    break
                through = min(head, position + _CATCH_UP_SPAN)
                if (await self._catch_up_through(conn, source, position, last_hash, through))[0] <= position:
                    break  # nothing signed after position yet
        self.halted.pop(source.name, None)

    def _halt(self, source: SourceTopic, error: SourceTampered) -> None:
        if self.halted.get(source.name) != str(error):
            log.error("projection %s: source %s halted: %s", self.projection.name, source.name, error)
        self.halted[source.name] = str(error)

    async def _apply_arrivals(
        self, conn: AsyncConnection, source: SourceTopic, envelopes: list[EventEnvelope], drained: bool
    ) -> None:
        position, last_hash = await self._lock(conn, source)
        # Duplicates (the relay republished, or catch-up got here first) are dropped by chain().
        chained = self._early.chain(source.name, envelopes, position, last_hash)
        for forged in self._early.take_displaced(source.name):
            problem = f"differs from the event {source.name} signed at position {forged.position}"
            await self._dead_letter(source.topic, encode_envelope(forged), ForgedEvent(problem))
        await self._apply_in_order(conn, source, chained)
        if chained:
            position, last_hash = chained[-1].position, chained[-1].hash
        if overdue := self._early.overdue(source.name, drained):
            position, last_hash = await self._catch_up_through(
                conn, source, position, last_hash, max(overdue), overdue
            )
        await save_checkpoint(
            conn, self.projection.schema, self.projection.name, source.name, position, last_hash
        )

    async def _catch_up_through(
        self,
        conn: AsyncConnection,
        source: SourceTopic,
        position: int,
        last_hash: str,
        through: int,
        arrived: dict[int, EventEnvelope] | None = None,
    ) -> tuple[int, str]:
        """Read (position, through] from the source and apply it; return the new checkpoint.

        Messages in `arrived` (by position) that differ from the source's events, or lie beyond the
        source's head, are dead-lettered.
        """
        arrived = arrived or {}
        pages = _Prefetch(source, position, last_hash, through)
        try:
            while page := await pages.next():
                await self._apply_page(conn, source, page, arrived)
                position, last_hash = page[-1].position, page[-1].hash
        finally:
            await pages.close()
        for delivered in arrived.values():
            problem = f"position {delivered.position} is not in {source.name}'s log"
            await self._dead_letter(source.topic, encode_envelope(delivered), MalformedEvent(problem))
        await save_checkpoint(
            conn, self.projection.schema, self.projection.name, source.name, position, last_hash
        )
        return position, last_hash

    async def _apply_page(
        self,
        conn: AsyncConnection,
        source: SourceTopic,
        page: list[EventEnvelope],
        arrived: dict[int, EventEnvelope],
    ) -> None:
        for envelope in page if arrived else ():
            delivered = arrived.pop(envelope.position, None)
            if delivered is not None and delivered.hash != envelope.hash:
                problem = f"differs from {source.name}'s event at position {envelope.position}"
                await self._dead_letter(source.topic, encode_envelope(delivered), MalformedEvent(problem))
        await self._apply_in_order(conn, source, page)
        self.caught_up += len(page)

    async def _apply_in_order(
        self, conn: AsyncConnection, source: SourceTopic, envelopes: list[EventEnvelope]
    ) -> None:
        """Apply consecutive events of one source: as one batch where the projection can fold them."""
        decoded: list[Decoded] = []
        for envelope in envelopes:
            try:
                decoded.append((self.registry.decode(envelope), envelope))
            except EventStoreError as error:
                await self._dead_letter(source.topic, encode_envelope(envelope), error)
        if len(decoded) > 1 and isinstance(self.projection, BatchProjection):
            try:
                async with conn.begin_nested():
                    await self.projection.apply_batch(decoded, conn)
                return
            except Exception as error:
                if is_transient(error):
                    raise
                log.warning(
                    "projection %s: a batch of %d failed (%r); applying them one by one",
                    self.projection.name,
                    len(decoded),
                    error,
                )
        for event, envelope in decoded:
            await self._apply(conn, source, event, envelope)

    async def _apply(
        self, conn: AsyncConnection, source: SourceTopic, event: DomainEvent, envelope: EventEnvelope
    ) -> None:
        failure: Exception | None = None
        for _ in range(self._max_attempts):
            try:
                async with conn.begin_nested():
                    await self.projection.apply(event, envelope, conn)
                return
            except Exception as error:
                if is_transient(error):
                    # A lock timeout, a deadlock, a lost connection: not the event's fault. The whole
                    # transaction is dropped and tried again after a backoff; nothing is dead-lettered
                    # and the checkpoint does not move past the event.
                    raise
                failure = error
        assert failure is not None
        await self._dead_letter(source.topic, encode_envelope(envelope), failure)

    async def _lock(self, conn: AsyncConnection, source: SourceTopic) -> tuple[int, str]:
        return await lock_checkpoint(conn, self.projection.schema, self.projection.name, source.name)

    async def _dead_letter(
        self, topic: str, value: bytes | None, error: Exception, record: Any = None
    ) -> None:
        self.dead_lettered += 1
        log.error("projection %s: dead-lettering a message from %s: %s", self.projection.name, topic, error)
        headers = [
            ("error", f"{type(error).__name__}: {error}".encode()[:4000]),
            ("projection", self.projection.name.encode()),
        ]
        if record is not None:
            headers.append(("origin", f"{record.topic}/{record.partition}/{record.offset}".encode()))
        if self._dlq is None:
            return  # a rebuild without Kafka: counted and logged, reported by the caller
        await self._dlq.send_and_wait(dead_letter_topic(topic), value or b"", headers=headers)


async def read_verified_page(
    source: SourceTopic, position: int, last_hash: str, limit: int
) -> list[EventEnvelope]:
    """The source's next signed page after (position, last_hash), checked whole (hashes, links, a
    head signed with a pinned key); [] when nothing more is signed; SourceTampered otherwise."""
    try:
        signed = await source.source.read_signed(position, limit)
    except MalformedEvent as error:  # what its ReadEvents served does not even hash
        raise SourceTampered(f"{source.name}: {error}; the log was altered (run verify)") from error
    if not signed.events:
        return []
    return verified_page(
        source.name,
        signed.events,
        signed.heads,
        position,
        last_hash,
        source.keys,
        hashes_checked=signed.hashes_checked,
    )


async def _first_of(stop: asyncio.Event, wake: asyncio.Event, timeout_s: float) -> None:
    """Return when either event is set or `timeout_s` has passed."""
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


class _Prefetch:
    """A source's verified pages up to `through`, the next one read while the current is applied.

    Reading a page waits on the source (the database or a service's ReadEvents) for as long as
    applying one waits on the projection's; reading ahead overlaps the two. At most one page is
    read ahead, so memory stays bounded; a page that does not verify raises when it is taken, as
    it would have when read in turn.
    """

    def __init__(self, source: SourceTopic, position: int, last_hash: str, through: int) -> None:
        self._source, self._through = source, through
        self._ahead: asyncio.Task[list[EventEnvelope]] | None = self._read(position, last_hash)

    def _read(self, position: int, last_hash: str) -> asyncio.Task[list[EventEnvelope]] | None:
        if position >= self._through:
            return None
        limit = min(_CATCH_UP_PAGE, self._through - position)
        return asyncio.ensure_future(read_verified_page(self._source, position, last_hash, limit))

    async def next(self) -> list[EventEnvelope]:
        """The next page ([] at `through` or when nothing more is signed); the one after it starts."""
        if self._ahead is None:
            return []
        page, self._ahead = await self._ahead, None
        if page:
            self._ahead = self._read(page[-1].position, page[-1].hash)
        return page

    async def close(self) -> None:
        """Drop a page read ahead and not taken (the caller stopped early or failed)."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return
        ahead.cancel()
        await asyncio.wait([ahead])  # never raises the read's error, and lets our own cancel through
        if not ahead.cancelled():
            ahead.exception()  # retrieved: a read that failed first is not reported as never awaited


class _Cursor:
    """One source's place in an interleaved catch-up: the verified events read and not yet applied
    (the page after them is read meanwhile, as `_Prefetch` does for one source)."""

    def __init__(self, source: SourceTopic, position: int, last_hash: str, through: int = _NO_END) -> None:
        self.source, self.position, self.last_hash, self.through = source, position, last_hash, through
        self.buffer: list[EventEnvelope] = []
        self.done = self.halted = self.moved = False
        self._pages: _Prefetch | None = None  # reading starts with the first fill

    async def fill(self) -> None:
        """Take the source's next verified signed page; `done` when it has nothing more signed."""
        if self._pages is None:
            self._pages = _Prefetch(self.source, self.position, self.last_hash, self.through)
        page = await self._pages.next()
        if not page:
            self.done = True
            return
        self.buffer = page

    async def close(self) -> None:
        """Drop the page read ahead (the transaction ends; the next one starts from its checkpoint)."""
        if self._pages is not None:
            await self._pages.close()


def next_run(cursors: list[_Cursor]) -> tuple[_Cursor, list[EventEnvelope]] | None:
    """The source whose next event was recorded first, with its events recorded before the next
    event of any other source (ties: the source listed first goes first); None when nothing is
    buffered, or when a source with more to read has nothing buffered (its next event may be the
    earliest)."""
    if any(not c.buffer and not c.done for c in cursors):
        return None
    waiting = [(c.buffer[0].occurred_at, index, c) for index, c in enumerate(cursors) if c.buffer]
    if not waiting:
        return None
    _, first_index, first = min(waiting, key=lambda w: (w[0], w[1]))
    bound = min(((at, index) for at, index, c in waiting if c is not first), default=None)
    count = 0
    for envelope in first.buffer:
        if bound is not None and (envelope.occurred_at, first_index) > bound:
            break
        count += 1
    run, first.buffer = first.buffer[:count], first.buffer[count:]
    return first, run
