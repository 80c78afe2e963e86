"""Event store benchmark: appends vs the eventsourcing library and vs raw psycopg, reads vs a raw SELECT.

Both sides run in one process against one embedded PostgreSQL with durable
settings (fsync on, synchronous_commit on), each timed run in a fresh schema.
Results go to bench/results/events.json and events.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from report import Comparison, write_results
from workloads import (
    PAYLOAD,
    AppendRow,
    Measurement,
    median,
    ours_append,
    ours_reads,
    peer_append,
    raw_append,
    raw_select,
)

from modelyard_devstack import infra

RESULTS = Path(__file__).resolve().parent / "results"
# Issue 16's targets, by append shape (writers, events per append): against eventsourcing, and
# against raw psycopg writing the same rows (None: shown, no target).
PEER_TARGETS = {(1, 1): None, (8, 1): 4.0, (1, 100): 2.0, (8, 100): 2.0}
FLOOR_TARGETS = {(1, 1): 0.8, (8, 1): None, (1, 100): 0.5, (8, 100): 0.5}
SIGNING_TARGET = 0.9  # issue 11: signing may cost an append row at most 10%
READ_TARGETS = {"read_all": 0.8, "verify_chain": 0.7}
PG_SETTINGS = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "shared_buffers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the events, for a smoke run")
    quick = parser.parse_args().quick
    scale = 10 if quick else 1
    rows = [AppendRow(w, b, (4000 if b == 1 else 40000) // scale) for b in (1, 100) for w in (1, 8)]
    read_events, repeats = 50000 // scale, 3
    # A per-run suffix keeps schemas apart when DATABASE_URL points at a shared server.
    run = uuid.uuid4().hex[:8]
    with infra(durable=True) as servers:
        url = servers.database_url
        comparisons = [
            c for n, row in enumerate(rows) for c in _compare_append(url, f"{run}_{n}", row, repeats)
        ]
        comparisons += _compare_reads(url, f"ours_{run}_read", read_events, repeats)
        machine = _machine(url)
    parameters = {
        "quick": quick,
        "payload_bytes": len(PAYLOAD),
        "append_rows": [{"row": row.name, **vars(row)} for row in rows],
        "read_events": read_events,
        "read_page_size": 1000,
        "median_of_runs": repeats,
    }
    print(write_results(RESULTS, machine, parameters, comparisons))


def _compare_append(url: str, suffix: str, row: AppendRow, repeats: int) -> list[Comparison]:
    at_least_two_appends_each = 2 * row.writers * row.events_per_append
    warmup = AppendRow(row.writers, row.events_per_append, max(row.events // 20, at_least_two_appends_each))
    ours_runs, unsigned_runs, peer_runs, floor_runs = [], [], [], []
    # Alternating the sides spreads any drift of the server (checkpoints, autovacuum) over all four.
    for n in range(repeats):
        ours_runs.append(asyncio.run(ours_append(url, f"ours_{suffix}_{n}", row, warmup)))
        unsigned_runs.append(
            asyncio.run(ours_append(url, f"unsigned_{suffix}_{n}", row, warmup, signed=False))
        )
        peer_runs.append(peer_append(url, f"peer_{suffix}_{n}", row, warmup))
        floor_runs.append(raw_append(url, f"raw_{suffix}_{n}", row, warmup))
    ours, unsigned = median(ours_runs), median(unsigned_runs)
    peer, floor = median(peer_runs), median(floor_runs)
    _progress(row.name, ours, peer)
    _progress(f"{row.name} unsigned", unsigned, peer)
    _progress(f"{row.name} raw psycopg", ours, floor)
    shape = (row.writers, row.events_per_append)
    raw = "raw psycopg, INSERT + COMMIT" if row.events_per_append == 1 else "raw psycopg, COPY + COMMIT"
    return [
        Comparison(row.name, "eventsourcing", ours, peer, PEER_TARGETS[shape]),
        Comparison(row.name, raw, ours, floor, FLOOR_TARGETS[shape]),
        Comparison(row.name, "ours without head signatures", ours, unsigned, SIGNING_TARGET),
    ]


def _compare_reads(url: str, schema: str, events: int, repeats: int) -> list[Comparison]:
    ours = asyncio.run(ours_reads(url, schema, events, repeats))
    peer = raw_select(url, schema, repeats)
    if any(measured.events != peer.events for measured in ours.values()):
        raise RuntimeError(f"the readers saw different logs: {ours} vs {peer}")
    rows = [
        Comparison(f"{name}, {peer.events} events", "raw SELECT", measured, peer, READ_TARGETS[name])
        for name, measured in ours.items()
    ]
    for row in rows:
        _progress(row.row, row.ours, row.peer)
    return rows


def _machine(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        sql = "SELECT n, current_setting(n) FROM unnest(%s::text[]) AS n"
        settings: dict[str, str] = dict(conn.execute(sql, (list(PG_SETTINGS),)).fetchall())
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgres": settings,
        "libraries": {name: version(name) for name in ("eventsourcing", "sqlalchemy", "psycopg")},
    }


def _progress(name: str, ours: Measurement, peer: Measurement) -> None:
    print(
        f"{name}: ours {ours.events_per_s:,.0f}/s, peer {peer.events_per_s:,.0f}/s",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    main()
