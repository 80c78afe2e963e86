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
Every request's stream version is read in one query and every accepted event
written in one INSERT, whatever the number of requests a group commit carries.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_events.db import checked_schema
from modelyard_events.envelope import GENESIS_HASH

# The append function's parameters before o_after, and its result: the two overloads share them.
_APPEND_PARAMETERS = """\
    a_stream_id text[], a_expected bigint[], a_count int[], a_stream_type text[],
    a_occurred_at timestamptz[], a_actor jsonb[], a_org_id text[], a_correlation_id text[],
    a_causation_id text[], j_event_id text, e_type text[], e_schema_version int[],
    j_data text, j_head text, j_tail text,
    s_position bigint, s_hash text, s_key_id text, s_signature text,
    g_position bigint, g_hash text, j_hash text"""
_APPEND_RETURNS = """\
) RETURNS TABLE (request int, actual_version bigint, first_position bigint,
                 first_prev_hash text, last_hash text)"""

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
-- A new signature adds an overload: the previous ones (19 arguments, before g_*; 22, before
-- o_after) stay, since pods of the previous release still call them during a rolling upgrade (the
-- 22-argument one now calls this one). Drop the 19-argument one by its full signature a release later.
--
-- o_after: this call was sent while the same committer's previous call was still running; o_after
-- holds the first event id of each request of that call, joined by U+001E. If none of them is in
-- the log, that call has not committed yet (or wrote nothing): this one returns no rows and changes
-- nothing, and the committer sends it again once the previous call has answered. So a committer's
-- batches are applied in the order it sent them, whatever other writers do meanwhile.
CREATE OR REPLACE FUNCTION {s}.append_events(
{parameters}, o_after text
{returns}
LANGUAGE plpgsql AS $fn$
DECLARE
    pos bigint; prev text; lo int := 1; hi int; cur bigint; n int; m int; k int;
    positions bigint[]; prevs text[]; hashes text[]; requests int[]; versions bigint[];
    currents bigint[]; seen_ids text[]; seen_versions bigint[]; repeated boolean;
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
    -- Nested IFs: a condition with a subquery is planned again at every call (a plan for its
    -- parameters), about 40 us, also when the first operand is false.
    IF o_after IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM {s}.events ev
                WHERE ev.event_id = ANY(string_to_array(o_after, E'\\x1e')::uuid[])) THEN
            RETURN;
        END IF;
    END IF;
    guessed := g_position IS NOT NULL AND g_position = pos AND g_hash = prev
        AND coalesce(array_length(e_hash, 1), 0) = coalesce(array_length(e_data, 1), 0);
    n := coalesce(array_length(a_stream_id, 1), 0);
    m := coalesce(array_length(e_data, 1), 0);
    -- Sized up front: an element assigned to an empty array would set its lower bound, and unnest
    -- below pairs the arrays by order, not by subscript.
    positions := array_fill(NULL::bigint, ARRAY[m]); versions := positions;
    requests := array_fill(NULL::int, ARRAY[m]);
    prevs := array_fill(NULL::text, ARRAY[m]); hashes := prevs;
    -- Every request's stream version in one query, and every accepted event in one INSERT below:
    -- a statement per request cost about 80 us each (a group commit of 8 single-event appends).
    -- One request (most calls) reads its stream with a plain lookup: PostgreSQL plans a statement
    -- over unnest() of a parameter anew at every call (its cached plan guesses 10 rows, so it is
    -- dearer than one planned for the actual array): 65 us for this query, 35 for the INSERT below.
    IF n = 1 THEN
        currents := ARRAY[(SELECT coalesce(max(ev.stream_version), 0) FROM {s}.events ev
                           WHERE ev.stream_id = a_stream_id[1])];
        repeated := false;
    ELSE
        SELECT array_agg(coalesce((SELECT max(ev.stream_version) FROM {s}.events ev
                                   WHERE ev.stream_id = q.sid), 0) ORDER BY q.r)
          INTO currents FROM unnest(a_stream_id) WITH ORDINALITY AS q(sid, r);
        -- A stream appended to twice in one batch: the second request sees the first one's version.
        repeated := (SELECT count(DISTINCT q) FROM unnest(a_stream_id) q) < n;
    END IF;
    FOR r IN 1 .. n LOOP
        hi := lo + a_count[r] - 1;
        cur := currents[r];
        IF repeated THEN
            k := array_position(seen_ids, a_stream_id[r]);
            IF k IS NOT NULL THEN
                cur := seen_versions[k];
            END IF;
        END IF;
        IF cur <> a_expected[r] THEN
            guessed := false;
            request := r; actual_version := cur; first_position := NULL;
            first_prev_hash := NULL; last_hash := NULL;
            RETURN NEXT;
        ELSE
            request := r; actual_version := cur + a_count[r]; first_position := pos + 1;
            first_prev_hash := prev;
            FOR i IN lo .. hi LOOP
                pos := pos + 1;
                positions[i] := pos;
                prevs[i] := prev;
                requests[i] := r;
                versions[i] := cur + i - lo + 1;
                IF guessed THEN
                    prev := e_hash[i];
                ELSE
                    prev := encode(sha256(convert_to(prev || e_head[i]
                        || '"position":' || pos || ',"prev_hash":"' || prev || '",' || e_tail[i],
                        'UTF8')), 'hex');
                END IF;
                hashes[i] := prev;
            END LOOP;
            IF repeated THEN
                IF k IS NULL THEN
                    seen_ids := seen_ids || a_stream_id[r];
                    seen_versions := seen_versions || actual_version;
                ELSE
                    seen_versions[k] := actual_version;
                END IF;
            END IF;
            last_hash := prev;
            RETURN NEXT;
        END IF;
        lo := hi + 1;
    END LOOP;
    -- A refused request's events have no position: not written.
    IF m = 1 THEN
        IF positions[1] IS NOT NULL THEN
            INSERT INTO {s}.events (position, event_id, stream_type, stream_id, stream_version,
                type, schema_version, occurred_at, actor, org_id, correlation_id, causation_id,
                data, prev_hash, hash)
            VALUES (positions[1], e_event_id[1], a_stream_type[1], a_stream_id[1], versions[1],
                e_type[1], e_schema_version[1], a_occurred_at[1], a_actor[1], a_org_id[1],
                a_correlation_id[1], a_causation_id[1], e_data[1], prevs[1], hashes[1]);
        END IF;
    ELSE
        INSERT INTO {s}.events (position, event_id, stream_type, stream_id, stream_version,
            type, schema_version, occurred_at, actor, org_id, correlation_id, causation_id,
            data, prev_hash, hash)
        SELECT u.p, u.eid, a_stream_type[u.r], a_stream_id[u.r], u.v, u.t, u.sv,
            a_occurred_at[u.r], a_actor[u.r], a_org_id[u.r], a_correlation_id[u.r],
            a_causation_id[u.r], u.d, u.pv, u.h
        FROM unnest(e_event_id, e_type, e_schema_version, e_data, positions, requests, versions,
            prevs, hashes) AS u(eid, t, sv, d, p, r, v, pv, h)
        WHERE u.p IS NOT NULL;
    END IF;
    UPDATE {s}.event_head SET last_position = pos, last_hash = prev WHERE id = 1;
    -- The signature of an earlier append rides along (store/head_signatures.py): no commit of its own.
    IF s_position IS NOT NULL THEN
        INSERT INTO {s}.event_signatures VALUES (s_position, s_hash, s_key_id, s_signature)
        ON CONFLICT DO NOTHING;
    END IF;
    PERFORM pg_notify('{channel}', pos::text);
END
$fn$;
CREATE OR REPLACE FUNCTION {s}.append_events(
{parameters}
{returns}
LANGUAGE sql AS $fn$
    SELECT * FROM {s}.append_events(a_stream_id, a_expected, a_count, a_stream_type, a_occurred_at,
        a_actor, a_org_id, a_correlation_id, a_causation_id, j_event_id, e_type, e_schema_version,
        j_data, j_head, j_tail, s_position, s_hash, s_key_id, s_signature, g_position, g_hash, j_hash,
        NULL::text)
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
    ddl = _DDL.format(
        s=checked_schema(schema),
        genesis=GENESIS_HASH,
        channel=notify_channel(schema),
        parameters=_APPEND_PARAMETERS,
        returns=_APPEND_RETURNS,
    )
    async with engine.begin() as conn:
        # Serialize concurrent first starts of several processes on one schema.
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
        await conn.exec_driver_sql(ddl)
