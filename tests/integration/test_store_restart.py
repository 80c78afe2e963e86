"""The store after a PostgreSQL restart: the first append works (issue 11, item 7).

The committer keeps one connection between batches; a restart kills it, and the first append after
used to fail (INTERNAL for the caller) before the next one reconnected.
"""

from pathlib import Path

import pytest

from modelyard_devstack.postgres import FAST_SETTINGS, EmbeddedPostgres
from modelyard_events.db import create_engine
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.sample_events import TEST_CONTEXT, CounterIncremented, CounterOpened
from modelyard_events.testing.signing import TEST_SIGNER

pytestmark = pytest.mark.integration


async def test_the_first_append_after_a_postgresql_restart_succeeds(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg" / "data", dict(FAST_SETTINGS))
    url = server.start()
    engine = create_engine(url)
    store = PostgresEventStore(engine, "restarted", signer=TEST_SIGNER)
    try:
        await store.create_schema()
        await store.append("counter", "c", 0, [CounterOpened(name="c")], TEST_CONTEXT)

        server.restart()
        [after] = await store.append("counter", "c", 1, [CounterIncremented(amount=1)], TEST_CONTEXT)

        assert (after.position, after.stream_version) == (2, 2)
        assert [e.position for e in await store.read_all()] == [1, 2]  # written once
    finally:
        await store.close()
        await engine.dispose()
        server.stop()
