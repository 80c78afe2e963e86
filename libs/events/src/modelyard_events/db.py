"""One way to reach PostgreSQL: URLs, engines with the session timeouts the store relies on."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic_core import to_json
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

_SCHEMA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")

# lock_timeout bounds how long an append waits for the store's append lock;
# idle_in_transaction_session_timeout ends a session that holds it and stalls.
SESSION_OPTIONS = "-c lock_timeout=5000 -c idle_in_transaction_session_timeout=60000"


def sqlalchemy_url(database_url: str) -> str:
    """Turn a libpq URL (postgresql://...) into SQLAlchemy's psycopg 3 form."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {database_url!r}")


def libpq_url(database_url: str) -> str:
    """The plain libpq form of a URL, for psycopg connections (LISTEN)."""
    return "postgresql://" + sqlalchemy_url(database_url)[len("postgresql+psycopg://") :]


def create_engine(database_url: str, pool_size: int = 5) -> AsyncEngine:
    """An async engine whose sessions carry the store's lock and idle timeouts."""
    return create_async_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"options": SESSION_OPTIONS},
    )


# SQLSTATE classes and codes that say "try again later", not "this input is bad": connection
# exceptions, serialization failures and deadlocks, insufficient resources, operator intervention
# (restart, cancel), lock_timeout.
_TRANSIENT_CLASSES = ("08", "40", "53", "57")
_TRANSIENT_CODES = ("55P03",)


def is_transient(error: BaseException) -> bool:
    """Whether a database error may pass if the same work is tried again (never a poison input)."""
    if not isinstance(error, DBAPIError):
        return isinstance(error, OSError)
    if error.connection_invalidated:
        return True
    sqlstate = str(getattr(error.orig, "sqlstate", "") or "")
    return sqlstate.startswith(_TRANSIENT_CLASSES) or sqlstate in _TRANSIENT_CODES


def checked_schema(name: str) -> str:
    """A schema name safe to interpolate into DDL (services own one schema each)."""
    if not _SCHEMA_NAME.match(name):
        raise ValueError(f"schema name {name!r} must match {_SCHEMA_NAME.pattern}")
    return name


async def create_schema_tables(conn: AsyncConnection, schema: str, statements: Iterable[str]) -> None:
    """Create `schema` and run each DDL statement in it (`{s}` in a statement names the schema)."""
    s = checked_schema(schema)
    await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {s}"))
    for statement in statements:
        await conn.execute(text(statement.format(s=s)))


def rows_json(rows: object) -> str:
    """Rows for a statement that unpacks one JSON document (jsonb_to_recordset and the like).

    pydantic-core's encoder: a quarter of json.dumps's time (3.5 against 14 µs for an epoch's row),
    and job-svc's views send every trainer report this way.
    """
    return to_json(rows).decode()
