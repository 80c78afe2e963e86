"""DDL of a service's event store: the log, its head row, relay checkpoints, the append function.

Appends are serialized by the head row's lock inside one SQL function call, so
an append is a single round trip and positions follow commit order (a reader
can never see position N+1 committed before N, the trap Marten and Axon hit
with sequences). The function splices the assigned position and previous hash
into canonical JSON halves computed in Python, so both sides hash identically.
A committer that knows where the head is (its own last append) sends the hashes
it computed for that head too, and the function takes them while the head is
where the committer said (a sha256 per event less under the lock: about a third
of the function's time on a 100-event append); otherwise it hashes as before.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_events.db import checked_schema
from modelyard_events.envelope import GENESIS_HASH

_DDL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.events (
    position        bigint PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,
    stream_type     text NOT NULL,
    stream_id       text NOT NULL,
    stream_version  bigint NOT NULL,
    type            text NOT NULL,
    schema_version  integer NOT NULL,
    occurred_at     timestamptz NOT NULL,
    actor           jsonb NOT NULL,
    org_id          text,
    correlation_id  text NOT NULL,
    causation_id    text,
    data            text NOT NULL,
    prev_hash       text NOT NULL,
    hash            text NOT NULL,
    UNIQUE (stream_id, stream_version)
);
CREATE INDEX IF NOT EXISTS events_type_position ON {s}.events (type, position);
CREATE TABLE IF NOT EXISTS {s}.event_head (
    id             smallint PRIMARY KEY CHECK (id = 1),
    last_position  bigint NOT NULL,
    last_hash      text NOT NULL
);
INSERT INTO {s}.event_head VALUES (1, 0, '{genesis}') ON CONFLICT DO NOTHING;
-- One row per append transaction (or run of them): the service's signature over the hash of the
-- last event it wrote. Written by the service that holds the key, never by the append function.
CREATE TABLE IF NOT EXISTS {s}.event_signatures (
    position   bigint PRIMARY KEY,
    hash       text NOT NULL,
    key_id     text NOT NULL,
    signature  text NOT NULL
);
-- Events a relay could not publish (the broker refused the record: too large, invalid). Consumers
-- read them from the source; an operator finds them here and in the relay's log.
CREATE TABLE IF NOT EXISTS {s}.relay_skipped (
    relay_name  text NOT NULL,
    position    bigint NOT NULL,
    error       text NOT NULL,
    skipped_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (relay_name, position)
);
CREATE TABLE IF NOT EXISTS {s}.relay_checkpoints (
    relay_name  text PRIMARY KEY,
    position    bigint NOT NULL
);
-- A new signature adds an overload: the previous one (19 arguments, before g_*) stays, since pods
-- of the previous release still call it during a rolling upgrade. Drop it by its full signature a
-- release later.
CREATE OR REPLACE FUNCTION {s}.append_events(
    a_stream_id text[], a_expected bigint[], a_count int[], a_stream_type text[],
    a_occurred_at timestamptz[], a_actor jsonb[], a_org_id text[], a_correlation_id text[],
    a_causation_id text[], j_event_id text, e_type text[], e_schema_version int[],
    j_data text, j_head text, j_tail text,
    s_position bigint, s_hash text, s_key_id text, s_signature text,
    g_position bigint, g_hash text, j_hash text
) RETURNS TABLE (request int, actual_version bigint, first_position bigint,
                 first_prev_hash text, last_hash text)
LANGUAGE plpgsql AS $fn$
DECLARE
    pos bigint; prev text; lo int := 1; hi int; cur bigint;
    positions bigint[]; prevs text[]; hashes text[];
    -- Per-event texts arrive joined by U+001E, which canonical JSON always escapes and
    -- UUIDs never contain: one plain text parameter each instead of an array whose every
    -- element the driver would quote and escape. Per-request fields come once per request.
    e_event_id uuid[] := string_to_array(j_event_id, E'\\x1e')::uuid[];
    e_data text[] := string_to_array(j_data, E'\\x1e');
    e_head text[] := string_to_array(j_head, E'\\x1e');
    e_tail text[] := string_to_array(j_tail, E'\\x1e');
    -- The committer's hashes, right only from the head it names (g_position, g_hash) and only
    -- while every request is accepted: a conflict leaves the positions after it unused.
    e_hash text[] := string_to_array(j_hash, E'\\x1e');
    guessed boolean;
BEGIN
    SELECT h.last_position, h.last_hash INTO pos, prev FROM {s}.event_head h WHERE h.id = 1 FOR UPDATE;
    guessed := g_position IS NOT NULL AND g_position = pos AND g_hash = prev
        AND coalesce(array_length(e_hash, 1), 0) = coalesce(array_length(e_data, 1), 0);
    FOR r IN 1 .. coalesce(array_length(a_stream_id, 1), 0) LOOP
        hi := lo + a_count[r] - 1;
        SELECT coalesce(max(ev.stream_version), 0) INTO cur
          FROM {s}.events ev WHERE ev.stream_id = a_stream_id[r];
        IF cur <> a_expected[r] THEN
            guessed := false;
            request := r; actual_version := cur; first_position := NULL;
            first_prev_hash := NULL; last_hash := NULL;
            RETURN NEXT;
        ELSE
            request := r; actual_version := cur + a_count[r]; first_position := pos + 1;
            first_prev_hash := prev;
            positions := '{{}}'; prevs := '{{}}'; hashes := '{{}}';
            FOR i IN lo .. hi LOOP
                pos := pos + 1;
                positions := positions || pos;
                prevs := prevs || prev;
                IF guessed THEN
                    prev := e_hash[i];
                ELSE
                    prev := encode(sha256(convert_to(prev || e_head[i]
                        || '"position":' || pos || ',"prev_hash":"' || prev || '",' || e_tail[i],
                        'UTF8')), 'hex');
                END IF;
                hashes := hashes || prev;
            END LOOP;
            INSERT INTO {s}.events (position, event_id, stream_type, stream_id, stream_version,
                type, schema_version, occurred_at, actor, org_id, correlation_id, causation_id,
                data, prev_hash, hash)
            SELECT u.p, u.eid, a_stream_type[r], a_stream_id[r], a_expected[r] + u.n, u.t, u.sv,
                a_occurred_at[r], a_actor[r], a_org_id[r], a_correlation_id[r], a_causation_id[r],
                u.d, u.pv, u.h
            FROM unnest(positions, e_event_id[lo:hi], e_type[lo:hi], e_schema_version[lo:hi],
                e_data[lo:hi], prevs, hashes) WITH ORDINALITY AS u(p, eid, t, sv, d, pv, h, n);
            last_hash := prev;
            RETURN NEXT;
        END IF;
        lo := hi + 1;
    END LOOP;
    UPDATE {s}.event_head SET last_position = pos, last_hash = prev WHERE id = 1;
    -- The signature of an earlier append rides along (store/head_signatures.py): no commit of its own.
    IF s_position IS NOT NULL THEN
        INSERT INTO {s}.event_signatures VALUES (s_position, s_hash, s_key_id, s_signature)
        ON CONFLICT DO NOTHING;
    END IF;
    PERFORM pg_notify('{channel}', pos::text);
END
$fn$;
-- A signature written on its own, when no append follows soon: an asynchronous commit, since a
-- signature lost in a crash is written again at the next start (PostgresEventStore.sign_tail).
CREATE OR REPLACE FUNCTION {s}.sign_head(s_position bigint, s_hash text, s_key_id text, s_signature text)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO {s}.event_signatures VALUES (s_position, s_hash, s_key_id, s_signature)
    ON CONFLICT DO NOTHING;
    PERFORM pg_notify('{channel}', s_position::text);
END
$fn$;
"""


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel an append in `schema` signals."""
    return f"modelyard_events_{checked_schema(schema)}"


async def ensure_store_schema(engine: AsyncEngine, schema: str) -> None:
    """Create the store's schema, tables and append function if missing (idempotent)."""
    ddl = _DDL.format(s=checked_schema(schema), genesis=GENESIS_HASH, channel=notify_channel(schema))
    async with engine.begin() as conn:
        # Serialize concurrent first starts of several processes on one schema.
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
        await conn.exec_driver_sql(ddl)
