"""Racing writers and commit order on the real PostgreSQL."""

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_devstack import Infra
from modelyard_devstack.processes import eventually
from modelyard_events.db import create_engine
from modelyard_events.errors import ConcurrencyConflict, EventStoreError
from modelyard_events.store.chain_guess import NO_GUESS, ChainGuess, Head
from modelyard_events.store.head_signatures import NO_SIGNATURE
from modelyard_events.store.pending import prepare_append
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.store.postgres_rows import append_parameters
from modelyard_events.testing.sample_events import TEST_CONTEXT, CounterIncremented, CounterOpened
from modelyard_events.testing.signing import TEST_KEYS, TEST_SIGNER
from modelyard_events.verify import verify_chain

pytestmark = pytest.mark.integration

WRITERS, PER_WRITER = 8, 25


async def test_eight_racing_writers_write_every_version_exactly_once(
    stack: Infra, store: PostgresEventStore
) -> None:
    await store.append("counter", "race", 0, [CounterOpened(name="race")], TEST_CONTEXT)
    engines = [create_engine(stack.database_url, pool_size=1) for _ in range(WRITERS)]
    # 8 connections, 8 committers
    stores = [PostgresEventStore(e, store.schema, signer=TEST_SIGNER) for e in engines]
    try:
        conflicts = await asyncio.gather(*(_write(s, writer) for writer, s in enumerate(stores)))
    finally:
        for s, e in zip(stores, engines, strict=True):
            await s.close()
            await e.dispose()
    log = await store.read_stream("race")
    assert [e.stream_version for e in log] == list(range(1, WRITERS * PER_WRITER + 2))
    amounts = sorted(e.data["amount"] for e in log[1:])
    assert amounts == sorted(w * 1000 + i for w in range(WRITERS) for i in range(PER_WRITER))
    assert sum(conflicts) > 0, "the writers never collided: the race was not exercised"
    assert [e.position for e in await store.read_all(limit=10_000)] == list(range(1, len(log) + 1))
    # Each committer guessed the hashes of its next append from where its last one ended, and the
    # others had mostly moved the head since: every stale guess must have gone unused.
    assert (await verify_chain(store, keys=TEST_KEYS)).ok


async def _write(store: PostgresEventStore, writer: int) -> int:
    """Append PER_WRITER events, each at the version last read; count conflicts."""
    conflicts, written = 0, 0
    while written < PER_WRITER:
        version = (await store.read_stream("race"))[-1].stream_version
        try:
            await store.append(
                "counter", "race", version, [CounterIncremented(amount=writer * 1000 + written)], TEST_CONTEXT
            )
            written += 1
        except ConcurrencyConflict as conflict:
            if conflict.actual_version <= version:
                raise AssertionError(f"conflict reports {conflict.actual_version}, read {version}") from None
            conflicts += 1
    return conflicts


async def test_a_later_append_cannot_commit_before_an_earlier_one(
    stack: Infra, engine: AsyncEngine, store: PostgresEventStore
) -> None:
    """Positions follow commit order: while a first append is uncommitted, a second one waits."""
    url = stack.database_url
    request = prepare_append("counter", "slow", 0, [CounterOpened(name="slow")], TEST_CONTEXT)
    async with engine.connect() as slow:
        # A first append, left uncommitted: it holds position 1 and the append lock.
        await slow.begin()
        await slow.execute(store.append_statement, append_parameters([request]) | NO_SIGNATURE | NO_GUESS)
        second = asyncio.create_task(
            store.append("counter", "fast", 0, [CounterOpened(name="fast")], TEST_CONTEXT)
        )
        await eventually(lambda: _waits_on_a_lock(url), what="the second append to wait on the lock")
        assert not second.done()
        assert await store.read_all() == []  # a reader sees neither, so it cannot skip position 1
        await slow.commit()
        [fast] = await second
    log = await store.read_all()
    assert [(e.stream_id, e.position) for e in log] == [("slow", 1), ("fast", 2)]
    assert fast.prev_hash == log[0].hash


async def _waits_on_a_lock(url: str) -> bool:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND query LIKE '%append_events%'"
        )
        row = await cursor.fetchone()
        return bool(row and row[0] > 0)


async def test_hashes_guessed_for_a_head_that_has_moved_are_not_taken(
    engine: AsyncEngine, store: PostgresEventStore
) -> None:
    """The append function takes a committer's hashes only for the head it names, position and hash."""
    [first] = await store.append("counter", "c", 0, [CounterOpened(name="c")], TEST_CONTEXT)
    request = prepare_append("counter", "c", 1, [CounterIncremented(amount=1)], TEST_CONTEXT)
    garbage = "f" * 64
    right = ChainGuess.of([request], Head(first.position, first.hash))
    for named in (Head(first.position, garbage), Head(first.position - 1, first.hash)):
        guess = ChainGuess(named, (named,), ((garbage,),)).parameters()
        async with engine.begin() as conn:
            parameters = append_parameters([request]) | NO_SIGNATURE | guess
            [row] = (await conn.execute(store.append_statement, parameters)).all()
            assert row.last_hash == right.hashes[0][0]  # hashed by the function, not taken
            await conn.rollback()
    # For the head it names, the function takes the committer's hashes as they are (the committer
    # is the log's writer: it could write any row), which is what saves it the hashing.
    taken = ChainGuess(right.head, right.starts, ((garbage,),)).parameters()
    async with engine.begin() as conn:
        parameters = append_parameters([request]) | NO_SIGNATURE | taken
        [row] = (await conn.execute(store.append_statement, parameters)).all()
        assert row.last_hash == garbage
        await conn.rollback()
    async with engine.begin() as conn:
        parameters = append_parameters([request]) | NO_SIGNATURE | right.parameters()
        [row] = (await conn.execute(store.append_statement, parameters)).all()
    assert row.last_hash == right.hashes[0][0]
    assert (await verify_chain(store)).ok  # the chain links (the last head is not signed: no keys)


async def test_a_conflict_in_a_batch_leaves_the_requests_after_it_hashed_right(
    store: PostgresEventStore,
) -> None:
    """A committer's guess assumes every request of a batch is accepted; after one that conflicts,
    the function hashes the rest itself. Appends racing in one committer are batched together."""
    await store.append("counter", "a", 0, [CounterOpened(name="a")], TEST_CONTEXT)  # the head is known
    results = await asyncio.gather(
        store.append("counter", "b", 0, [CounterOpened(name="b")], TEST_CONTEXT),
        store.append("counter", "a", 0, [CounterOpened(name="a again")], TEST_CONTEXT),  # conflicts
        store.append(
            "counter", "c", 0, [CounterOpened(name="c"), CounterIncremented(amount=9)], TEST_CONTEXT
        ),
        return_exceptions=True,
    )
    assert isinstance(results[1], ConcurrencyConflict)
    log = await store.read_all()
    assert [(e.stream_id, e.position) for e in log] == [("a", 1), ("b", 2), ("c", 3), ("c", 4)]
    assert [e.hash for e in log[1:]] == [e.hash for e in results[0] + results[2]]  # type: ignore[operator]
    await store.signatures.flush()
    assert (await verify_chain(store, keys=TEST_KEYS)).ok


async def test_one_call_checks_each_request_against_the_streams_and_the_requests_before_it(
    engine: AsyncEngine, store: PostgresEventStore
) -> None:
    """The function reads every stream's version in one query and writes every event in one INSERT:
    a refused request first (its events must not shift the others'), one stream appended to twice,
    a conflict with an earlier request of the same call, a multi-event request between them."""
    await store.append("counter", "x", 0, [CounterOpened(name="x")], TEST_CONTEXT)
    requests = [
        prepare_append("counter", "x", 5, [CounterIncremented(amount=1)], TEST_CONTEXT),  # x is at 1
        prepare_append(
            "counter", "y", 0, [CounterOpened(name="y"), CounterIncremented(amount=2)], TEST_CONTEXT
        ),
        prepare_append("counter", "y", 2, [CounterIncremented(amount=3)], TEST_CONTEXT),
        prepare_append("counter", "y", 2, [CounterIncremented(amount=4)], TEST_CONTEXT),  # y is at 3 now
        prepare_append("counter", "z", 0, [CounterOpened(name="z")], TEST_CONTEXT),
    ]
    async with engine.begin() as conn:
        parameters = append_parameters(requests) | NO_SIGNATURE | NO_GUESS
        rows = (await conn.execute(store.append_statement, parameters)).all()

    assert [(r.request, r.actual_version, r.first_position) for r in rows] == [
        (1, 1, None),
        (2, 2, 2),
        (3, 3, 4),
        (4, 3, None),
        (5, 1, 5),
    ]
    log = await store.read_all()
    assert [(e.stream_id, e.stream_version, e.position) for e in log] == [
        ("x", 1, 1),
        ("y", 1, 2),
        ("y", 2, 3),
        ("y", 3, 4),
        ("z", 1, 5),
    ]
    assert [e.data.get("amount") for e in log[2:4]] == [2, 3]
    assert [e.event_id for e in log[1:]] == [
        p.event_id for r in (requests[1], requests[2], requests[4]) for p in r.events
    ]
    assert rows[-1].last_hash == log[-1].hash
    assert (await verify_chain(store)).ok


async def test_a_batch_sent_behind_another_is_applied_after_it_even_when_it_gets_there_first(
    engine: AsyncEngine, store: PostgresEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two batches in flight: the second, sent while the first runs, waits for the head lock. If its
    call takes the lock first (the first batch's call is late), it writes nothing and goes again once
    the first has answered, even when another writer (a replica) appends meanwhile: a committer's
    batches are applied in the order they were sent."""
    replica = PostgresEventStore(engine, store.schema, signer=TEST_SIGNER)
    execute = store._execute
    calls: list[str | None] = []

    async def first_batch_late(*args: Any) -> Any:
        calls.append(args[-1])
        if len(calls) == 1:  # the batch behind it is sent and runs meanwhile, and so does the replica
            await replica.append("counter", "replica", 0, [CounterOpened(name="r")], TEST_CONTEXT)
            await asyncio.sleep(0.3)
        return await execute(*args)

    monkeypatch.setattr(store, "_execute", first_batch_late)
    events = [CounterIncremented(amount=n) for n in range(10)]  # 8 x 10 events: two batches of 4
    appends = [store.append("counter", f"s{n}", 0, events, TEST_CONTEXT) for n in range(8)]
    results = await asyncio.gather(*appends)
    await replica.close()

    first_ids = "\x1e".join(str(r[0].event_id) for r in results[:4])
    assert calls == [None, first_ids, None]  # the second batch came too early once, then went behind
    log = [e for e in await store.read_all() if e.stream_id != "replica"]
    assert [e.stream_id for e in log[::10]] == [f"s{n}" for n in range(8)]
    assert [e.hash for r in results for e in r] == [e.hash for e in log]
    await store.signatures.flush()
    assert (await verify_chain(store, keys=TEST_KEYS)).ok


async def test_closing_with_two_batches_in_flight_answers_every_caller(
    store: PostgresEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batch has committed but its answer is slow, the second has finished and waits to be
    landed behind it: close() must answer all of them (with their events, or "outcome unknown")."""
    await store.append("counter", "first", 0, [CounterOpened(name="x")], TEST_CONTEXT)
    execute = store._execute
    calls = 0
    behind_done = asyncio.Event()

    async def first_answer_slow(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        first = calls == 1
        result = await execute(*args)
        if first:
            await asyncio.sleep(5)  # committed; the answer never comes before close()
        else:
            behind_done.set()
        return result

    monkeypatch.setattr(store, "_execute", first_answer_slow)
    events = [CounterIncremented(amount=n) for n in range(10)]
    appends = [
        asyncio.ensure_future(store.append("counter", f"s{n}", 0, events, TEST_CONTEXT)) for n in range(8)
    ]
    await asyncio.wait_for(behind_done.wait(), 5)  # the second batch committed behind the first
    await asyncio.sleep(0)  # its task finishes
    await store.close()

    outcomes = await asyncio.wait_for(asyncio.gather(*appends, return_exceptions=True), 5)
    answered = [o for o in outcomes if isinstance(o, list)]
    unknown = [o for o in outcomes if isinstance(o, EventStoreError) and "outcome unknown" in str(o)]
    assert len(answered) + len(unknown) == 8, outcomes
    assert len(answered) == 4  # the second batch landed with its events
    assert len(await store.read_all()) == 81  # both batches were written


async def test_an_ordered_call_that_comes_too_early_changes_nothing(
    engine: AsyncEngine, store: PostgresEventStore
) -> None:
    """The append function's o_after: while none of the named events is in the log it returns no
    rows and writes nothing, not even the signature the call carries."""
    [first] = await store.append("counter", "c", 0, [CounterOpened(name="c")], TEST_CONTEXT)
    request = prepare_append("counter", "c", 1, [CounterIncremented(amount=1)], TEST_CONTEXT)
    signature = {"s_position": 1, "s_hash": first.hash, "s_key_id": "k", "s_signature": "x"}
    parameters = append_parameters([request]) | signature | NO_GUESS
    not_yet = f"{uuid.uuid4()}\x1e{uuid.uuid4()}"
    async with engine.begin() as conn:
        early = (await conn.execute(store._ordered_append, parameters | {"o_after": not_yet})).all()
        mine = text(f"SELECT count(*) FROM {store.schema}.event_signatures WHERE key_id = 'k'")
        signatures = (await conn.execute(mine)).scalar()
    assert early == []
    assert signatures == 0
    assert len(await store.read_all()) == 1
    written = f"{uuid.uuid4()}\x1e{first.event_id}"
    async with engine.begin() as conn:
        [row] = (await conn.execute(store._ordered_append, parameters | {"o_after": written})).all()
    assert row.first_position == 2
