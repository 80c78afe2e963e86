"""One LISTEN connection per process, fanning the views' change notices out to whoever waits.

The views announce each change with pg_notify in the transaction that makes it (so a notice means
the change is visible); WatchJob streams subscribe per job, the dispatcher to every notice.
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
"""(job_id, kind): kind is queued, state, progress, epoch, report or trainer ("" job for trainers)."""


class ViewChanges:
    """Listens on the views' channel and hands every notice to its subscribers' queues."""

    def __init__(self, database_url: str, channel: str) -> None:
        self._database_url, self._channel = database_url, channel
        self._per_job: dict[str, set[asyncio.Queue[Notice]]] = defaultdict(set)
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
                    self._publish("", "resync")  # anything that changed while we were not listening
                    async for notice in conn.notifies():
                        self._publish_payload(notice.payload)
            except psycopg.OperationalError as error:
                self.listening.clear()
                log.warning("view changes: LISTEN connection lost: %r", error)
                await asyncio.sleep(1.0)  # back off before reconnecting

    @contextlib.contextmanager
    def subscription(self, job_id: str | None = None) -> Iterator[asyncio.Queue[Notice]]:
        """A queue receiving the notices of one job (or of everything when job_id is None)."""
        queue: asyncio.Queue[Notice] = asyncio.Queue(maxsize=1000)
        targets = self._everything if job_id is None else self._per_job[job_id]
        targets.add(queue)
        try:
            yield queue
        finally:
            targets.discard(queue)
            if job_id is not None and not self._per_job[job_id]:
                del self._per_job[job_id]

    def _publish_payload(self, payload: str) -> None:
        try:
            notice = json.loads(payload)
            self._publish(str(notice["job_id"]), str(notice["kind"]))
        except (ValueError, KeyError, TypeError):
            log.warning("view changes: ignoring a malformed notice %r", payload)

    def _publish(self, job_id: str, kind: str) -> None:
        targets = self._everything | (
            set().union(*self._per_job.values()) if not job_id else self._per_job.get(job_id, set())
        )
        for queue in targets:
            with contextlib.suppress(asyncio.QueueFull):  # a stuck watcher re-reads the row anyway
                queue.put_nowait((job_id, kind))
