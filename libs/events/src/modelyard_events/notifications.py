"""One LISTEN connection per process, fanning a projection's change notices out to whoever waits.

A projection announces each change with pg_notify in the transaction that makes it, so a notice
means the change is visible to a read that starts after it. The payload is JSON naming a key (a
job id, an edge server) and a kind; waiters subscribe to one key or to everything. A notice with
an empty key concerns every key (and a reconnect publishes one, "resync", since notices sent while
nobody listened are lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterator

import psycopg

from modelyard_events.db import libpq_url

log = logging.getLogger(__name__)

Notice = tuple[str, str]
"""(key, kind): what changed and how; key "" means every key."""

RESYNC = "resync"


class ViewChanges:
    """Listens on `channel` and hands every notice to its subscribers' queues.

    Guarantees: a subscriber receives every notice published while it is subscribed and the
    connection is up, plus a (\"\", \"resync\") notice after each (re)connect; a full queue drops
    notices (a subscriber is expected to re-read its rows, not count notices).
    `key_field` is the JSON field of the payload that holds the key.
    """

    def __init__(self, database_url: str, channel: str, key_field: str = "key") -> None:
        self._database_url, self._channel, self._key_field = database_url, channel, key_field
        self._per_key: dict[str, set[asyncio.Queue[Notice]]] = defaultdict(set)
        self._everything: set[asyncio.Queue[Notice]] = set()
        self.listening = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until `stop`; a lost connection is reopened and subscribers are told to re-read."""
        listener = asyncio.create_task(self._listen_forever(), name="view-changes-listen")
        try:
            await stop.wait()
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def _listen_forever(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    libpq_url(self._database_url), autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {self._channel}")
                    self.listening.set()
                    self._publish("", RESYNC)  # anything that changed while we were not listening
                    async for notice in conn.notifies():
                        self._publish_payload(notice.payload)
            except psycopg.OperationalError as error:
                self.listening.clear()
                log.warning("view changes: LISTEN connection lost: %r", error)
                await asyncio.sleep(1.0)  # back off before reconnecting

    @contextlib.contextmanager
    def subscription(self, key: str | None = None) -> Iterator[asyncio.Queue[Notice]]:
        """A queue receiving the notices of one key (or of everything when key is None)."""
        queue: asyncio.Queue[Notice] = asyncio.Queue(maxsize=1000)
        targets = self._everything if key is None else self._per_key[key]
        targets.add(queue)
        try:
            yield queue
        finally:
            targets.discard(queue)
            if key is not None and not self._per_key[key]:
                del self._per_key[key]

    def _publish_payload(self, payload: str) -> None:
        try:
            notice = json.loads(payload)
            self._publish(str(notice[self._key_field]), str(notice["kind"]))
        except (ValueError, KeyError, TypeError):
            log.warning("view changes: ignoring a malformed notice %r", payload)

    def _publish(self, key: str, kind: str) -> None:
        targets = self._everything | (
            set().union(*self._per_key.values()) if not key else self._per_key.get(key, set())
        )
        for queue in targets:
            with contextlib.suppress(asyncio.QueueFull):  # a stuck watcher re-reads the row anyway
                queue.put_nowait((key, kind))


def notice_payload(key: str, kind: str, key_field: str = "key") -> str:
    """The JSON payload a projection passes to pg_notify for ViewChanges to read."""
    return json.dumps({key_field: key, "kind": kind})
