"""Ours: `EpochCompleted` events into trainer-svc's store, timed until job-svc's views hold them.

The path is the real one: trainer store (schema "trainer") → trainer-svc's relay → Kafka topic
`modelyard.trainer.events` → job-svc's views projection → `job_views.epoch_metrics`, one row per
event. job-svc and trainer-svc must be running (modelyard_devstack.platform). Each job is one
asyncio task appending its epochs in order to stream (RUN_STREAM, dispatch id) at the right
expected version, `epochs_per_append` events per append, as a trainer does; all tasks share one
`PostgresEventStore`. The clock runs from the first append until a poll (every POLL_S) finds every
job's last epoch in the table; the projection applies each source's events in log order, so by
then all earlier epochs are there too, and a count(*) afterwards must equal the expected rows.
The poll is 50 primary-key lookups rather than a count(*) of a table that grows by 10,000 rows a
run, so the clock costs the PostgreSQL it measures little.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass

from job_log import JOB_STREAM, dispatched_job
from metric_points import EPOCH_FIELDS, TASK_METRICS, Workload, point_values
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_events.db import create_engine
from modelyard_events.envelope import Actor, CommandContext
from modelyard_events.schemas.training import RUN_STREAM, EpochCompleted
from modelyard_events.signing import HeadSigner
from modelyard_events.store.postgres import PostgresEventStore

TRAINER_SCHEMA, JOB_SCHEMA = "trainer", "job"
VIEWS_TABLE = "job_views.epoch_metrics"
DISPATCHES_TABLE = "job_views.dispatches"
POLL_S = 0.02
TIMEOUT_S = 600.0
CONTEXT = CommandContext(actor=Actor(subject="bench-trainer", roles=("trainer",)))
JOB_CONTEXT = CommandContext(actor=Actor(subject="job-svc", roles=("service",)), org_id="org-1")


@dataclass(frozen=True)
class Ingest:
    """One timed ingestion: seconds from the first append to the last append, and to the last row."""

    tag: str
    workload: Workload
    epochs_per_append: int
    appended_s: float
    visible_s: float

    @property
    def points_per_s(self) -> float:
        return self.workload.points / self.visible_s


def epoch_event(tag: str, job: int, epoch: int) -> EpochCompleted:
    """What job `job`'s trainer reports at the end of `epoch` (values from metric_points)."""
    values = point_values(job, epoch)
    return EpochCompleted(
        job_id=f"{tag}-job-{job}",
        attempt=1,
        dispatch_id=f"{tag}-dsp-{job}",
        trainer_id="bench-trainer",
        epoch=epoch,
        **{name: values[name] for name in EPOCH_FIELDS},
        metrics={name: values[name] for name in TASK_METRICS},
        gpu_utilization_pct=None,
        gpu_memory_bytes=None,
    )


async def measure_ours(
    database_url: str, workload: Workload, modes: list[int], repeats: int, signers: dict[str, HeadSigner]
) -> dict[int, list[Ingest]]:
    """Warm up, then `repeats` ingestions per epochs-per-append mode (alternating the order).

    `signers` are the platform's services' keys: the reports are signed as trainer-svc signs them, and
    the jobs they report on are written to job-svc's log as job-svc signs it (job-svc pins both).
    """
    engine = create_engine(database_url)
    store = PostgresEventStore(engine, TRAINER_SCHEMA, signer=signers["trainer"])
    jobs = PostgresEventStore(engine, JOB_SCHEMA, signer=signers["job"])
    runs: dict[int, list[Ingest]] = {mode: [] for mode in modes}
    try:
        warm_up = await ingest(store, jobs, engine, "warm-up", Workload(jobs=2, epochs=3), 1)
        _progress(f"ours warm-up visible after {warm_up.visible_s:.2f} s")
        for n in range(repeats):
            for mode in modes if n % 2 == 0 else reversed(modes):
                run = await ingest(store, jobs, engine, f"r{n}-per{mode}", workload, mode)
                runs[mode].append(run)
                _progress(
                    f"ours {mode} epoch(s)/append, run {n + 1}: appended {run.appended_s:.2f} s, "
                    f"visible {run.visible_s:.2f} s, {run.points_per_s:,.0f} points/s"
                )
    finally:
        await store.close()
        await jobs.close()
        await engine.dispose()
    return runs


async def ingest(
    store: PostgresEventStore,
    jobs: PostgresEventStore,
    engine: AsyncEngine,
    tag: str,
    workload: Workload,
    epochs_per_append: int,
) -> Ingest:
    """Append every job's epochs concurrently; return once all rows are in the views.

    Before the clock, each job's own log (created, queued, dispatched) goes to job-svc's store and
    the views apply its dispatch: reports of a dispatch the views do not know wait as early reports.
    """
    await _dispatch(jobs, engine, tag, workload)
    events = [
        [epoch_event(tag, job, epoch) for epoch in range(1, workload.epochs + 1)]
        for job in range(workload.jobs)
    ]
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        expected = await _rows(conn) + workload.events
        began = time.perf_counter()
        writers = [
            asyncio.create_task(_report(store, f"{tag}-dsp-{job}", job_events, epochs_per_append))
            for job, job_events in enumerate(events)
        ]
        await _until_last_epochs(conn, tag, workload, writers)
        visible_s = time.perf_counter() - began
        appended_s = max(await asyncio.gather(*writers)) - began
        if (seen := await _rows(conn)) != expected:
            raise RuntimeError(f"{VIEWS_TABLE} holds {seen} rows, expected {expected}")
        await _check_row(conn, tag, workload.epochs)
    return Ingest(tag, workload, epochs_per_append, appended_s, visible_s)


async def _report(
    store: PostgresEventStore, dispatch_id: str, events: list[EpochCompleted], epochs_per_append: int
) -> float:
    version = 0
    for start in range(0, len(events), epochs_per_append):
        chunk = events[start : start + epochs_per_append]
        await store.append(RUN_STREAM, dispatch_id, version, chunk, CONTEXT)
        version += len(chunk)
    return time.perf_counter()


async def _dispatch(jobs: PostgresEventStore, engine: AsyncEngine, tag: str, workload: Workload) -> None:
    dispatches = [f"{tag}-dsp-{job}" for job in range(workload.jobs)]
    for job, dispatch in enumerate(dispatches):
        events = dispatched_job(f"{tag}-job-{job}", dispatch, "bench-trainer", workload.epochs)
        await jobs.append(JOB_STREAM, f"{tag}-job-{job}", 0, events, JOB_CONTEXT)
    sql = text(f"SELECT count(*) FROM {DISPATCHES_TABLE} WHERE dispatch_id = ANY(:ids)")
    deadline = time.monotonic() + TIMEOUT_S
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        while (await conn.execute(sql, {"ids": dispatches})).scalar_one() < len(dispatches):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{tag}: job-svc's views did not apply the dispatches in {TIMEOUT_S} s")
            await asyncio.sleep(POLL_S)


async def _rows(conn: AsyncConnection) -> int:
    count: int = (await conn.execute(text(f"SELECT count(*) FROM {VIEWS_TABLE}"))).scalar_one()
    return count


async def _until_last_epochs(
    conn: AsyncConnection, tag: str, workload: Workload, writers: list[asyncio.Task[float]]
) -> None:
    sql = text(
        f"SELECT count(*) FROM {VIEWS_TABLE} WHERE attempt = 1 AND epoch = :epoch AND job_id = ANY(:jobs)"
    )
    keys = {"epoch": workload.epochs, "jobs": [f"{tag}-job-{job}" for job in range(workload.jobs)]}
    deadline = time.monotonic() + TIMEOUT_S
    while (seen := (await conn.execute(sql, keys)).scalar_one()) < workload.jobs:
        for writer in writers:
            if writer.done() and writer.exception() is not None:
                raise RuntimeError("an append failed") from writer.exception()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{tag}: {seen} of {workload.jobs} jobs' last epochs after {TIMEOUT_S} s")
        await asyncio.sleep(POLL_S)


async def _check_row(conn: AsyncConnection, tag: str, epoch: int) -> None:
    """The last epoch of job 0 reached the table with all ten values."""
    sql = text(f"SELECT * FROM {VIEWS_TABLE} WHERE job_id = :job AND attempt = 1 AND epoch = :epoch")
    row = (await conn.execute(sql, {"job": f"{tag}-job-0", "epoch": epoch})).mappings().one()
    stored = {**{name: row[name] for name in EPOCH_FIELDS}, **row["metrics"]}
    if stored != point_values(0, epoch):
        raise RuntimeError(f"{tag}: stored {stored}, sent {point_values(0, epoch)}")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
