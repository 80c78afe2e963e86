"""Read your writes: a read of the views first waits until they show what the store held when it began.

The views are a projection fed through Kafka, a few milliseconds behind the store. Without this wait,
`yard datasets label` followed at once by `yard datasets review --all-labeled` would list the samples as
they were before the labels. Commands do not wait (a bulk review of thousands of samples would pay the
Kafka round trip on every one); reads do, so every read after a command sees it, whichever client
issued it. If the views fall far behind (the broker is down), the read answers after `timeout_s` with
what the views hold, and they catch up from the store later.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_events.consumer.checkpoints import wait_for_checkpoint
from modelyard_events.store.ports import EventSource

log = logging.getLogger(__name__)


class ViewsFreshness:
    """Waits until a projection has applied everything the store held when a read began."""

    def __init__(
        self,
        engine: AsyncEngine,
        store: EventSource,
        schema: str,
        projection: str,
        source: str,
        timeout_s: float,
    ) -> None:
        self._engine, self._store, self._schema = engine, store, schema
        self._projection, self._source, self._timeout_s = projection, source, timeout_s

    async def wait(self) -> None:
        """Return when the views caught up with the store's head as of now (or after the timeout, logged)."""
        head = await self._store.head_position()
        caught_up = await wait_for_checkpoint(
            self._engine, self._schema, self._projection, self._source, head, self._timeout_s
        )
        if not caught_up:
            log.warning(
                "views of %s still behind position %d after %.1f s", self._source, head, self._timeout_s
            )
