"""The relay: publishes a store's log to Kafka in position order, at least once.

It reads from its checkpoint, publishes a batch keyed by stream id, waits for
the broker's acknowledgement, and only then moves the checkpoint (kept in the
store's own database, saved while the next batch goes out). A crash between the
two republishes; nothing is skipped.
Batches end at signed heads: events the service has not signed yet wait, and the
event at each signed head carries the signature in its `head_signature` header.
An event the broker will never take (a record over its size limit, refused as
invalid) must not stop the ones behind it: it is recorded in `relay_skipped`
and logged as an error, and consumers read it from the source like any hole.
It sleeps on LISTEN/NOTIFY, not on a polling timer; `idle_check_s` only bounds
how long a notification lost during a reconnect can delay it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import CorruptRecordException, MessageSizeTooLargeError, RecordTooLargeError
from sqlalchemy import text

from modelyard_events.db import libpq_url
from modelyard_events.envelope import EventEnvelope
from modelyard_events.kafka_security import KafkaSecurity, kafka_producer
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.store.postgres_schema import notify_channel
from modelyard_events.topics import ensure_topics
from modelyard_events.wire import encode_envelope, message_headers

log = logging.getLogger(__name__)
# Kafka's default message.max.bytes; set MODELYARD_KAFKA_MAX_REQUEST_BYTES to the broker's own.
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
# The broker refuses the record itself, for good (not the broker being away).
_UNPUBLISHABLE = (MessageSizeTooLargeError, RecordTooLargeError, CorruptRecordException)


class Relay:
    """Moves events from one PostgresEventStore to one Kafka topic."""

    def __init__(
        self,
        store: PostgresEventStore,
        database_url: str,
        bootstrap_servers: str,
        topic: str,
        *,
        name: str = "kafka",
        batch_size: int = 500,
        idle_check_s: float = 5.0,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        security: KafkaSecurity | None = None,
    ) -> None:
        self.store, self.topic, self.name = store, topic, name
        self._database_url, self._bootstrap = database_url, bootstrap_servers
        self._batch_size, self._idle_check_s = batch_size, idle_check_s
        self._max_request_bytes = max_request_bytes
        self._security = security  # how the producer connects (plaintext when None)
        self.skipped = 0  # events the broker refused for good, since start
        self._wakeup = asyncio.Event()
        self._checkpoint: int | None = None  # read once per connection (publish_pending)
        self._unsaved: int | None = None  # a checkpoint published, not yet saved
        self._saving: asyncio.Task[None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; broker and database errors are retried with backoff."""
        listener = asyncio.create_task(self._listen(stop), name="relay-listen")
        backoff = 0.1
        try:
            while not stop.is_set():
                try:
                    await self._run_connected(stop)
                except Exception as error:  # broker gone, DB restart: retry, never skip
                    log.warning("relay %s: %r; retrying in %.1f s", self.name, error, backoff)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def _run_connected(self, stop: asyncio.Event) -> None:
        await ensure_topics(self._bootstrap, [self.topic], security=self._security)
        producer = kafka_producer(
            self._bootstrap,
            self._security,
            acks="all",
            linger_ms=2,
            request_timeout_ms=10000,
            max_request_size=self._max_request_bytes,
        )
        await producer.start()
        self._checkpoint = None  # after an error, read it again: what was acknowledged is there
        try:
            while not stop.is_set():
                self._wakeup.clear()
                published = await self.publish_pending(producer)
                if published == 0:
                    await self._sleep_until_woken(stop)
        finally:
            await self.flush_checkpoint()
            await producer.stop()

    async def publish_pending(self, producer: AIOKafkaProducer) -> int:
        """Publish everything after the checkpoint; return how many events went out.

        The checkpoint is read from the database once per connection and kept in memory after that
        (this relay is what moves it; a twin relay of another replica moving it too only makes both
        publish some events twice, which consumers drop).
        """
        if self._checkpoint is None:
            self._checkpoint = await self.checkpoint()
        checkpoint = self._checkpoint
        total = 0
        while (page := await self.store.read_signed(checkpoint, self._batch_size)).events:
            heads = {head.position: head for head in page.heads}
            sent: list[tuple[EventEnvelope, asyncio.Future[object]]] = []
            for e in page.events:
                try:
                    headers = message_headers(e, heads.get(e.position))
                    future = await producer.send(
                        self.topic, encode_envelope(e), key=e.stream_id.encode(), headers=headers
                    )
                except _UNPUBLISHABLE as error:
                    await self._skip(e, error)
                    continue
                sent.append((e, future))
            results = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
            for (envelope, _), result in zip(sent, results, strict=True):
                if isinstance(result, _UNPUBLISHABLE):
                    await self._skip(envelope, result)
                elif isinstance(result, BaseException):
                    raise result  # the broker is gone: retry the batch from the checkpoint
            checkpoint = self._checkpoint = page.events[-1].position
            self._save_soon(checkpoint)
            total += len(page.events)
        return total

    def _save_soon(self, position: int) -> None:
        """Save the checkpoint without holding up the next page (a round trip of every cycle).

        One save at a time, of the latest position; one that fails only leaves the saved checkpoint
        behind, which republishes what the broker already has after a restart (at least once).
        """
        self._unsaved = position
        if self._saving is None or self._saving.done():
            self._saving = asyncio.ensure_future(self._save_unsaved())

    async def _save_unsaved(self) -> None:
        while (position := self._unsaved) is not None:
            self._unsaved = None
            try:
                await self._save_checkpoint(position)
            except Exception as error:  # the database is away: the next page's save tries again
                log.warning("relay %s: checkpoint %d not saved: %r", self.name, position, error)
                return

    async def flush_checkpoint(self) -> None:
        """Wait until the checkpoint published so far is saved (or its save has failed)."""
        while self._saving is not None and not self._saving.done():
            await self._saving

    async def _skip(self, envelope: EventEnvelope, error: BaseException) -> None:
        """Record an event the broker will never take, so it does not hold up the ones behind it."""
        self.skipped += 1
        log.error(
            "relay %s: %s at position %d (%s) cannot be published and is skipped: %r; consumers "
            "read it from the source (see %s.relay_skipped)",
            self.name,
            envelope.type,
            envelope.position,
            envelope.stream_id,
            error,
            self.store.schema,
        )
        sql = text(
            f"INSERT INTO {self.store.schema}.relay_skipped (relay_name, position, error) "
            "VALUES (:n, :p, :e) ON CONFLICT DO NOTHING"
        )
        async with self.store.engine.begin() as conn:
            await conn.execute(sql, {"n": self.name, "p": envelope.position, "e": repr(error)[:2000]})

    async def checkpoint(self) -> int:
        """The last position acknowledged by the broker (0 before the first)."""
        sql = text(
            f"INSERT INTO {self.store.schema}.relay_checkpoints VALUES (:n, 0) "
            "ON CONFLICT (relay_name) DO UPDATE SET position = relay_checkpoints.position "
            "RETURNING position"
        )
        async with self.store.engine.begin() as conn:
            return int((await conn.execute(sql, {"n": self.name})).scalar_one())

    async def _save_checkpoint(self, position: int) -> None:
        # An asynchronous commit: a checkpoint lost in a crash only republishes what the broker
        # already has (at least once), and waiting for its flush would add a disk sync to every batch.
        sql = text(
            f"UPDATE {self.store.schema}.relay_checkpoints SET position = :p "
            "WHERE relay_name = :n AND position < :p"
        )
        async with self.store.engine.begin() as conn:
            await conn.execute(text("SET LOCAL synchronous_commit = off"))
            await conn.execute(sql, {"n": self.name, "p": position})

    async def _sleep_until_woken(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(self._wakeup.wait()), asyncio.ensure_future(stop.wait())]
        await asyncio.wait(waiters, timeout=self._idle_check_s, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()

    async def _listen(self, stop: asyncio.Event) -> None:
        channel = notify_channel(self.store.schema)
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    libpq_url(self._database_url), autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {channel}")
                    self._wakeup.set()  # anything appended while we were not listening
                    async for _ in conn.notifies():
                        self._wakeup.set()
            except psycopg.OperationalError as error:
                log.warning("relay %s: LISTEN connection lost: %r", self.name, error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
