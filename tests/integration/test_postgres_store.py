import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy.exc import DBAPIError

from modelyard_devstack import Infra
from modelyard_events.db import create_engine
from modelyard_events.envelope import Actor, CommandContext
from modelyard_events.errors import EventStoreError
from modelyard_events.hashing import envelope_hash
from modelyard_events.store import postgres as postgres_module
from modelyard_events.store.chain_guess import NO_GUESS
from modelyard_events.store.head_signatures import NO_SIGNATURE
from modelyard_events.store.pending import AppendRequest, prepare_append
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.store.postgres_rows import append_parameters, call_driver, driver_of, fetch_tuples
from modelyard_events.testing.sample_events import TEST_CONTEXT, CounterOpened
from modelyard_events.testing.signing import TEST_SIGNER
from modelyard_events.testing.store_contract import EventStoreContract
from modelyard_events.verify import verify_chain

pytestmark = pytest.mark.integration


@pytest.fixture
async def pg_store(stack: Infra, unique_schema: str) -> AsyncIterator[PostgresEventStore]:
    engine = create_engine(stack.database_url)
    store = PostgresEventStore(engine, unique_schema, signer=TEST_SIGNER)
    await store.create_schema()
    yield store
    await store.close()
    await engine.dispose()


class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture
    def store(self, pg_store: PostgresEventStore) -> PostgresEventStore:
        return pg_store


async def _call(store: PostgresEventStore, requests: list[AppendRequest]) -> None:
    async with store.engine.begin() as conn:
        parameters = append_parameters(requests) | NO_SIGNATURE | NO_GUESS
        rows = (await conn.execute(store.append_statement, parameters)).all()
    assert all(row.first_position is not None for row in rows)


@pytest.mark.parametrize("year", [5, 99, 999, 1000, 2026])
async def test_a_timestamp_of_any_year_is_stored_as_the_instant_it_hashed(
    pg_store: PostgresEventStore, year: int
) -> None:
    """The array literal carries a four-digit year: PostgreSQL reads `5-01-01` as 2005 (or 2002)."""
    moment = datetime(year, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    await _call(
        pg_store, [prepare_append("counter", "old", 0, [CounterOpened(name="x")], TEST_CONTEXT, moment)]
    )
    [stored] = await pg_store.read_stream("old")
    assert stored.occurred_at == moment
    assert envelope_hash(stored) == stored.hash


async def test_awkward_texts_in_several_requests_of_one_call_each_land_in_their_own_row(
    pg_store: PostgresEventStore,
) -> None:
    texts = ['q"uo\\te', "{br,aces}", "NULL", " spaced ", "", 'é 𝄞 \\\\"']
    requests = [
        prepare_append(
            f"t{text}",
            f"s{n}{text}",
            0,
            [CounterOpened(name=text)],
            CommandContext(
                actor=Actor(subject=f"a{text}", roles=(text, f"r{n}")),
                org_id=text,
                correlation_id=f"c{text}",
                causation_id=None if n % 2 else f"k{text}",
            ),
        )
        for n, text in enumerate(texts)
    ]
    await _call(pg_store, requests)
    log = await pg_store.read_all()
    assert len(log) == len(texts)
    for n, (envelope, text) in enumerate(zip(log, texts, strict=True)):
        assert (envelope.stream_type, envelope.stream_id, envelope.org_id) == (
            f"t{text}",
            f"s{n}{text}",
            text,
        )
        assert envelope.actor == Actor(subject=f"a{text}", roles=(text, f"r{n}"))
        assert (envelope.correlation_id, envelope.causation_id) == (f"c{text}", None if n % 2 else f"k{text}")
        assert envelope_hash(envelope) == envelope.hash


async def test_a_defect_in_the_committer_fails_its_batch_not_the_store(
    pg_store: PostgresEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every caller of a batch that fails unexpectedly gets an error (none waits forever), and the
    appends after it go through."""
    await pg_store.append("counter", "before", 0, [CounterOpened(name="x")], TEST_CONTEXT)  # head known

    def broken(*_: object) -> None:
        raise UnicodeEncodeError("utf-8", "x", 0, 1, "a defect")

    monkeypatch.setattr(postgres_module, "append_parameters", broken)
    appends = [
        pg_store.append("counter", f"s{n}", 0, [CounterOpened(name="x")], TEST_CONTEXT) for n in range(3)
    ]
    failed = await asyncio.wait_for(asyncio.gather(*appends, return_exceptions=True), 10)
    assert all(isinstance(f, EventStoreError) and "a defect" in str(f) for f in failed)
    monkeypatch.undo()
    await pg_store.append("counter", "after", 0, [CounterOpened(name="x")], TEST_CONTEXT)
    assert [e.stream_id for e in await pg_store.read_all()] == ["before", "after"]


async def test_a_committed_batch_that_cannot_be_settled_says_its_outcome_is_unknown(
    pg_store: PostgresEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the commit must not read as "append failed" (a caller would append again) nor
    leave a caller waiting; the store goes on, hashing in SQL since it no longer knows its head."""

    def broken(*_: object) -> None:
        raise ValueError("a defect while settling")

    monkeypatch.setattr(postgres_module, "_settle", broken)
    appends = [
        pg_store.append("counter", f"s{n}", 0, [CounterOpened(name="x")], TEST_CONTEXT) for n in range(3)
    ]
    failed = await asyncio.wait_for(asyncio.gather(*appends, return_exceptions=True), 10)
    assert all(isinstance(f, EventStoreError) and "outcome unknown" in str(f) for f in failed), failed
    monkeypatch.undo()
    assert sorted(e.stream_id for e in await pg_store.read_all()) == ["s0", "s1", "s2"]
    await pg_store.append("counter", "after", 0, [CounterOpened(name="x")], TEST_CONTEXT)
    assert (await verify_chain(pg_store)).ok


async def test_a_retried_batch_that_cannot_find_its_own_appends_settles_the_written_ones(
    pg_store: PostgresEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a connection-lost retry, the requests the function refused may be ones the lost attempt
    wrote; if looking them up fails, those get "outcome unknown" and the accepted ones their events."""
    await pg_store.append("counter", "taken", 0, [CounterOpened(name="x")], TEST_CONTEXT)
    execute = pg_store._execute

    async def retried(*args: Any) -> tuple[Any, Any, bool]:
        conn, rows, _ = await execute(*args)
        return conn, rows, True

    async def lookup_fails(*_: object) -> None:
        raise OSError("connection lost again")

    monkeypatch.setattr(pg_store, "_execute", retried)
    monkeypatch.setattr(pg_store, "_own_appends", lookup_fails)
    written, refused = await asyncio.wait_for(
        asyncio.gather(
            pg_store.append("counter", "fresh", 0, [CounterOpened(name="x")], TEST_CONTEXT),
            pg_store.append("counter", "taken", 0, [CounterOpened(name="x")], TEST_CONTEXT),
            return_exceptions=True,
        ),
        10,
    )
    assert isinstance(written, list)
    assert [e.stream_id for e in written] == ["fresh"]
    assert isinstance(refused, EventStoreError)
    assert "outcome unknown" in str(refused)
    monkeypatch.undo()
    await pg_store.append("counter", "after", 0, [CounterOpened(name="x")], TEST_CONTEXT)
    assert (await verify_chain(pg_store)).ok


async def test_the_append_calls_psycopg_errors_are_sqlalchemys_and_say_whether_the_connection_broke(
    pg_store: PostgresEventStore,
) -> None:
    # The committer's retry and the pool read `connection_invalidated` (postgres_rows.call_driver).
    async with pg_store.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")  # as the committer's
        with pytest.raises(DBAPIError) as refused:
            await call_driver(conn, "SELECT 1 / %(zero)s", {"zero": 0})
        assert (refused.value.orig.sqlstate, refused.value.connection_invalidated) == ("22012", False)
        assert [tuple(row) for row in await call_driver(conn, "SELECT %(one)s AS one", {"one": 1})] == [(1,)]

        [row] = await call_driver(conn, "SELECT pg_backend_pid() AS pid", {})
        async with pg_store.engine.connect() as other:
            await other.execute(sqlalchemy.text("SELECT pg_terminate_backend(:pid)"), {"pid": row.pid})
        with pytest.raises(DBAPIError) as lost:
            await call_driver(conn, "SELECT 1", {})
        assert lost.value.connection_invalidated
        assert conn.invalidated


async def test_reads_through_psycopg_raise_the_sqlalchemy_error_classes_conn_execute_did(
    pg_store: PostgresEventStore,
) -> None:
    # read_all, read_rows and signed pages skip SQLAlchemy's execute (postgres_rows): callers, the
    # pool and db.is_transient still get SQLAlchemy's classes, and a broken connection is dropped.
    missing = PostgresEventStore(pg_store.engine, "no_such_store_here")
    with pytest.raises(sqlalchemy.exc.ProgrammingError) as refused:
        await missing.read_all()
    assert refused.value.orig.sqlstate == "42P01"
    with pytest.raises(sqlalchemy.exc.ProgrammingError):
        await missing.read_rows(0, 10)
    async with pg_store.engine.connect() as conn:
        with pytest.raises(sqlalchemy.exc.DataError) as bad:
            await fetch_tuples(conn, "SELECT 1 / %s", (0,))
        assert not bad.value.connection_invalidated
    async with pg_store.engine.connect() as conn:
        [(pid,)] = await fetch_tuples(conn, "SELECT pg_backend_pid()", ())
        async with pg_store.engine.connect() as other:
            await other.execute(sqlalchemy.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(sqlalchemy.exc.OperationalError) as lost:
            await fetch_tuples(conn, "SELECT 1", ())
        assert lost.value.connection_invalidated
        assert conn.invalidated
    assert await pg_store.read_all() == []


async def test_the_driver_connection_is_taken_as_held_and_an_invalidated_one_is_replaced(
    pg_store: PostgresEventStore,
) -> None:
    # postgres_rows.driver_of takes the psycopg connection SQLAlchemy holds without its greenlet hop,
    # and goes through get_raw_connection (which reconnects) once the connection was invalidated.
    async with pg_store.engine.connect() as conn:
        held = await driver_of(conn)
        assert held is (await conn.get_raw_connection()).driver_connection
        [before] = await call_driver(conn, "SELECT pg_backend_pid() AS pid", {})
        await conn.invalidate()
        assert conn.invalidated
        fresh = await driver_of(conn)
        assert fresh is not held
        assert not fresh.closed
        [after] = await call_driver(conn, "SELECT pg_backend_pid() AS pid", {})
        assert after.pid != before.pid
