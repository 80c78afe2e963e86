"""deploy/k8s/database-roles.sql on PostgreSQL: each service's role runs its own event store in the
schemas it owns and is refused everything in another service's (docs/security.md)."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_devstack import Infra
from modelyard_devstack.stack import separate_database
from modelyard_events.consumer.checkpoints import create_checkpoint_table
from modelyard_events.db import create_engine
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.sample_events import TEST_CONTEXT, CounterOpened
from modelyard_events.testing.signing import TEST_SIGNER

pytestmark = pytest.mark.integration
ROLES_SQL = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "database-roles.sql"
INSUFFICIENT_PRIVILEGE = "42501"


@dataclass
class RolesDatabase:
    """A database of its own with the SQL applied; roles named <prefix>dataset, <prefix>job, ..."""

    superuser_url: str
    prefix: str
    password: str

    def url_as(self, service: str) -> str:
        parts = urlsplit(self.superuser_url)
        netloc = f"{self.prefix}{service}:{self.password}@{parts.hostname}:{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
async def roles_database(stack: Infra) -> AsyncIterator[RolesDatabase]:
    """A fresh database where an earlier release's trainer store exists (created as another role),
    then database-roles.sql ran twice with role names of this test's own (roles span the server)."""
    with psycopg.connect(stack.database_url, autocommit=True) as admin:
        superuser = admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if not (superuser and superuser[0]):
            pytest.skip("creating roles needs a superuser DATABASE_URL")
        tag = uuid.uuid4().hex[:8]
        database, prefix, password = f"t_roles_{tag}", f"t_{tag}_", uuid.uuid4().hex
    try:
        with separate_database(stack, database) as own:
            superuser_url = own.database_url
            engine = create_engine(superuser_url)
            earlier = PostgresEventStore(engine, "trainer", signer=TEST_SIGNER)
            await earlier.create_schema()
            await earlier.append("counter", "before", 0, [CounterOpened(name="before")], TEST_CONTEXT)
            await earlier.close()
            await engine.dispose()
            sql = ROLES_SQL.read_text().replace("'modelyard_", f"'{prefix}")
            with psycopg.connect(superuser_url, autocommit=True) as conn:
                conn.execute(sql)
                conn.execute(sql)  # idempotent
                for service in ("dataset", "job", "trainer"):  # what CloudNativePG's managed roles do
                    conn.execute(f"ALTER ROLE {prefix}{service} LOGIN PASSWORD '{password}'")
            yield RolesDatabase(superuser_url, prefix, password)
    finally:  # the roles span the server: dropped once the database that used them is gone
        with psycopg.connect(stack.database_url, autocommit=True) as admin:
            for service in ("dataset", "job", "trainer"):
                admin.execute(f"DROP ROLE IF EXISTS {prefix}{service}")


@pytest.fixture
async def engines(roles_database: RolesDatabase) -> AsyncIterator[dict[str, AsyncEngine]]:
    engines = {s: create_engine(roles_database.url_as(s)) for s in ("dataset", "job", "trainer")}
    yield engines
    for engine in engines.values():
        await engine.dispose()


async def _refused(action: Callable[[], Awaitable[object]]) -> str:
    with pytest.raises(DBAPIError) as refusal:
        await action()
    assert getattr(refusal.value.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE, refusal.value
    return str(refusal.value.orig)


async def test_each_schema_belongs_to_one_service_role_and_nothing_is_granted_to_others(
    roles_database: RolesDatabase,
) -> None:
    table = dict(re.findall(r"\['([a-z_]+)',\s*'modelyard_([a-z]+)'\]", ROLES_SQL.read_text()))
    with psycopg.connect(roles_database.superuser_url) as conn:
        rows = conn.execute(
            "SELECT nspname, nspowner::regrole::text, nspacl::text FROM pg_namespace WHERE nspname = ANY(%s)",
            [list(table)],
        ).fetchall()
        publics = conn.execute(
            "SELECT has_database_privilege('public', current_database(), 'CONNECT'),"
            " has_schema_privilege('public', 'public', 'CREATE')"
        ).fetchone()
    expected = {schema: roles_database.prefix + role for schema, role in table.items()}
    assert {name: owner for name, owner, _ in rows} == expected
    for name, owner, acl in rows:
        assert acl == f"{{{owner}=UC/{owner}}}", name  # the owner alone
    assert publics == (False, False)


async def test_a_service_role_runs_its_own_store_and_takes_over_what_an_earlier_release_created(
    engines: dict[str, AsyncEngine],
) -> None:
    job = PostgresEventStore(engines["job"], "job", signer=TEST_SIGNER)
    await job.create_schema()  # CREATE SCHEMA IF NOT EXISTS on a schema the role owns
    await job.sign_tail()
    await job.append("counter", "c-1", 0, [CounterOpened(name="one")], TEST_CONTEXT)
    assert [e.stream_id for e in await job.read_all()] == ["c-1"]
    await job.close()
    async with engines["job"].begin() as conn:
        await create_checkpoint_table(conn, "job_views")
        await conn.execute(text("CREATE TABLE IF NOT EXISTS job_live.probe (id int)"))
    trainer = PostgresEventStore(engines["trainer"], "trainer", signer=TEST_SIGNER)
    await trainer.create_schema()  # replaces the append function the superuser created earlier
    await trainer.append("counter", "c-2", 0, [CounterOpened(name="two")], TEST_CONTEXT)
    assert [e.stream_id for e in await trainer.read_all()] == ["before", "c-2"]
    await trainer.close()


async def test_a_service_role_cannot_read_write_or_take_another_services_schema(
    engines: dict[str, AsyncEngine], roles_database: RolesDatabase
) -> None:
    job = PostgresEventStore(engines["job"], "job", signer=TEST_SIGNER)
    await job.create_schema()
    await job.append("counter", "c-1", 0, [CounterOpened(name="one")], TEST_CONTEXT)
    await job.close()
    dataset = engines["dataset"]

    async def run(sql: str) -> None:
        async with dataset.begin() as conn:
            await conn.execute(text(sql))

    for sql in (
        "SELECT * FROM job.events",
        "UPDATE job.event_head SET last_position = 0",
        "DELETE FROM job.events",
        "CREATE TABLE job.planted (id int)",
        "DROP TABLE job.events",
        f"ALTER SCHEMA job OWNER TO {roles_database.prefix}dataset",
        "CREATE TABLE public.planted (id int)",
    ):
        await _refused(functools.partial(run, sql))
    intruder = PostgresEventStore(dataset, "job", signer=TEST_SIGNER)
    assert "permission denied for schema job" in await _refused(intruder.read_all)
    assert "permission denied for schema job" in await _refused(intruder.create_schema)
    await intruder.close()
    # A schema named after another role ("$user") is never on that role's search path.
    await run(f"CREATE SCHEMA {roles_database.prefix}job")
    async with engines["job"].connect() as conn:
        assert (await conn.execute(text("SHOW search_path"))).scalar_one() == "pg_catalog"
