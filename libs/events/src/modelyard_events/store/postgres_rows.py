"""How events-table rows map to envelopes and append parameters (the store's SQL shapes)."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import BaseRowFactory, namedtuple_row, tuple_row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.envelope import Actor, EventEnvelope, stored_payload, trusted_envelope
from modelyard_events.store.pending import AppendRequest, PendingEvent

RECORD_SEPARATOR = "\x1e"  # joins JSON texts and ids; canonical JSON escapes every control character
COLUMNS = (
    "position, event_id, stream_type, stream_id, stream_version, type, schema_version, "
    "occurred_at, actor::text AS actor, org_id, correlation_id, causation_id, data, prev_hash, hash"
)
HASH_COLUMN = 14


async def driver_of(conn: AsyncConnection) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under `conn`. One SQLAlchemy holds already is taken as it is:
    `get_raw_connection` hops through a greenlet in case it must reconnect (11 µs, on every append)."""
    sync = conn.sync_connection
    if sync is not None and not (sync.closed or sync.invalidated):
        raw = sync.connection  # no reconnect (and so no I/O) unless closed or invalidated
    else:
        raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)  # the engine's driver (modelyard_events.db)
    return driver


async def fetch_tuples(conn: AsyncConnection, sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows as plain tuples from psycopg itself (`%s` placeholders): signed pages (every catch-up, a
    replay, the relay) and `read_all` skip SQLAlchemy's row objects, 2 µs an event. Errors as
    `call_driver` raises them."""
    return await _run(conn, sql, parameters, tuple_row)


async def call_driver(conn: AsyncConnection, sql: str, parameters: Mapping[str, Any]) -> list[Any]:
    """The rows (named tuples) of one statement that psycopg itself runs (`%(name)s` placeholders).

    The committer's append call goes this way: SQLAlchemy's statement compilation, parameter
    processing, result rows and greenlet hand-offs took 30% of the process's CPU a single-event
    append (1 writer × 1 event: 650–980 µs an append against 530–590 this way). A psycopg error is
    raised as SQLAlchemy's error, the same class `conn.execute` raises (ProgrammingError,
    OperationalError …, all DBAPIError), `connection_invalidated` when the connection broke
    (SQLAlchemy's pool is then told to drop it, and `db.is_transient` sees a retryable error)."""
    return await _run(conn, sql, parameters, namedtuple_row)


async def _run(
    conn: AsyncConnection,
    sql: str,
    parameters: Sequence[Any] | Mapping[str, Any],
    row_factory: BaseRowFactory[Any],
) -> list[Any]:
    driver = await driver_of(conn)
    try:
        async with driver.cursor(row_factory=row_factory) as cursor:
            await cursor.execute(sql, parameters)
            return await cursor.fetchall()
    except psycopg.Error as error:
        broken = driver.broken or driver.closed
        if broken:
            await conn.invalidate(error)
        raise DBAPIError.instance(
            sql,
            None,
            error,
            psycopg.Error,
            hide_parameters=True,
            connection_invalidated=broken,
            dialect=conn.dialect,
        ) from error


def envelope_from_row(row: Sequence[Any]) -> EventEnvelope:
    """Build an envelope from a trusted events-table row (columns in COLUMNS order), skipping
    validation; the row is unpacked by position (a read builds one envelope per event)."""
    (
        position, event_id, stream_type, stream_id, stream_version, type_name, schema_version,
        occurred_at, actor, org_id, correlation_id, causation_id, data, prev_hash, hash_,
    ) = row  # fmt: skip
    return trusted_envelope(
        {
            "event_id": event_id,
            "stream_type": stream_type,
            "stream_id": stream_id,
            "stream_version": stream_version,
            "position": position,
            "type": type_name,
            "schema_version": schema_version,
            "occurred_at": occurred_at,
            "actor": _actor(actor),
            "org_id": org_id,
            "correlation_id": correlation_id,
            "causation_id": causation_id,
            "data": stored_payload(data),
            "prev_hash": prev_hash,
            "hash": hash_,
        }
    )


@functools.lru_cache(maxsize=4096)
def _actor(actor_json: str) -> Actor:
    # A log has few distinct actors; parsing each once keeps reads cheap.
    actor = json.loads(actor_json)
    return Actor.model_construct(subject=actor["subject"], roles=tuple(actor["roles"]))


def append_parameters(requests: Sequence[AppendRequest]) -> dict[str, Any]:
    """Parameters of `append_statement` for requests committed together, in order.

    Fields shared by a request's events (prepare_append gives them one context and
    one timestamp) travel once per request. Every parameter is a plain string: the arrays as
    PostgreSQL array literals (`array_literal`), which the statement casts. psycopg's list dumper
    inspects every list and element on each call: 6-54 µs a list, about 270 µs of a single-event
    append's 11 lists, against a few µs for these.
    """
    firsts = [r.events[0] for r in requests]
    events: list[PendingEvent] = [e for r in requests for e in r.events]
    return {
        "a_stream_id": array_literal([r.stream_id for r in requests]),
        "a_expected": _int_array([r.expected_version for r in requests]),
        "a_count": _int_array([len(r.events) for r in requests]),
        "a_stream_type": array_literal([e.stream_type for e in firsts]),
        "a_occurred_at": array_literal([_timestamp_literal(e.occurred_at) for e in firsts]),
        "a_actor": array_literal([e.actor_json for e in firsts]),
        "a_org_id": array_literal([e.org_id for e in firsts]),
        "a_correlation_id": array_literal([e.correlation_id for e in firsts]),
        "a_causation_id": array_literal([e.causation_id for e in firsts]),
        "j_event_id": RECORD_SEPARATOR.join(str(e.event_id) for e in events),
        "e_type": array_literal([e.type_name for e in events]),
        "e_schema_version": _int_array([e.schema_version for e in events]),
        "j_data": RECORD_SEPARATOR.join(e.data_json for e in events),
        "j_head": RECORD_SEPARATOR.join(e.halves.head for e in events),
        "j_tail": RECORD_SEPARATOR.join(e.halves.tail for e in events),
    }


def array_literal(values: Sequence[str | None]) -> str:
    """A one-dimensional PostgreSQL array literal of texts: each element quoted, its `\\` and `"`
    escaped (the only characters that need it inside quotes), None as NULL."""
    return "{" + ",".join("NULL" if v is None else _quoted(v) for v in values) + "}"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _timestamp_literal(moment: datetime) -> str:
    """An aware datetime as PostgreSQL reads it back to the same instant: UTC, microseconds and a
    four-digit year (the canonical text leaves years below 1000 unpadded, and PostgreSQL reads a
    one- or two-digit year as a year of this century)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _int_array(values: Sequence[int]) -> str:
    return "{" + ",".join(str(int(v)) for v in values) + "}"
