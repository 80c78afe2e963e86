"""Audit benchmark: verify and replay of a large log against a raw read of the same table.

A trainer log (the bulk of any real log: progress reports, an epoch report every 50) is written
through the real append path (PostgresEventStore.append, 8 writers × 100 events per append, head
signatures on), at two sizes, after job-svc's log of the jobs it reports on (created, queued,
dispatched: reports follow their dispatch, as in a real log). Then, each in a fresh process so
its peak RSS is its own:

- raw read (the floor): keyset-paged `SELECT *` of the same events table with psycopg, rows left
  as tuples;
- verify: `verify_chain` with the pinned key (every hash recomputed, every signed head checked);
- replay: job-svc's JobViews rebuilt from both logs into a fresh schema through the runner's own
  catch-up path (signed pages, head signatures checked, the logs merged in recorded order, events
  decoded through the registry, progress runs applied a batch at a time), as `yard audit replay`
  rebuilds a projection.

Targets (issue 14): replay ≥ 0.5 of the raw read rate; peak memory flat as the log grows
(1M events vs 100k). Results: bench/results/audit.json and audit.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

RESULTS = Path(__file__).resolve().parent / "results"
REPLAY_TARGET = 0.5
MEMORY_GROWTH_LIMIT = 1.25  # peak RSS at the large size / at the small size: "flat"
WRITERS, PER_APPEND, PAGE = 8, 100, 1000
PHASES = ("raw read", "verify", "replay")


@dataclass(frozen=True)
class PhaseRun:
    """One phase over one log: how many events, how long, the process's peak RSS."""

    phase: str
    events: int
    seconds: float
    peak_rss_bytes: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k events instead of 100k and 1M")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)  # the child's side
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(vars(_run_phase(args.phase, args.url, args.schema))))
        return
    sizes = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    from modelyard_devstack import infra

    run = uuid.uuid4().hex[:8]
    results: dict[int, dict[str, PhaseRun]] = {}
    with infra(durable=True) as servers:
        url = servers.database_url
        for size in sizes:
            schema = f"audit_{run}_{size}"
            started = time.perf_counter()
            asyncio.run(_fill(url, schema, size))
            print(f"{size:,} events appended in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            _checkpoint(url)
            results[size] = _measure(url, schema)
        machine = _machine(url)
    print(_write(results, machine, {"sizes": list(sizes), "writers": WRITERS, "per_append": PER_APPEND}))


def _measure(url: str, schema: str) -> dict[str, PhaseRun]:
    """Each phase in a child process; the raw read runs first (it warms the page cache for all)
    and again last, and the faster of its two runs is the floor."""
    runs = [_child(phase, url, schema) for phase in ("raw read", *PHASES)]
    floor = min((r for r in runs if r.phase == "raw read"), key=lambda r: r.seconds)
    measured = {r.phase: r for r in runs if r.phase != "raw read"}
    measured["raw read"] = floor
    for run in measured.values():
        print(
            f"  {run.phase}: {run.events:,} events, {run.events_per_s:,.0f}/s, "
            f"peak RSS {run.peak_rss_bytes / 2**20:,.0f} MiB",
            file=sys.stderr,
            flush=True,
        )
    return measured


def _child(phase: str, url: str, schema: str) -> PhaseRun:
    command = [sys.executable, __file__, "--phase", phase, "--url", url, "--schema", schema]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return PhaseRun(**json.loads(done.stdout.strip().splitlines()[-1]))


def _run_phase(phase: str, url: str, schema: str) -> PhaseRun:
    # Imported before the clock starts: the phases are timed on their work, not on Python's imports.
    import modelyard_events.verify  # noqa: F401
    import modelyard_job.projections.views  # noqa: F401
    from modelyard_grpc.heap import freeze_startup_heap

    freeze_startup_heap()  # as every service does once it serves (the replay runs in the service)

    started = time.perf_counter()
    if phase == "raw read":
        events = _raw_read(url, schema)
    elif phase == "verify":
        events = asyncio.run(_verify(url, schema))
    else:
        events = asyncio.run(_replay(url, schema))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    return PhaseRun(phase, events, seconds, peak)


def _raw_read(url: str, schema: str) -> int:
    sql = f"SELECT * FROM {schema}.events WHERE position > %s ORDER BY position LIMIT {PAGE}"
    with psycopg.connect(url) as conn:
        position, count = 0, 0
        while rows := conn.execute(sql, (position,)).fetchall():
            position, count = rows[-1][0], count + len(rows)
        return count


async def _verify(url: str, schema: str) -> int:
    from modelyard_events.db import create_engine
    from modelyard_events.store.postgres import PostgresEventStore
    from modelyard_events.testing.signing import TEST_KEYS
    from modelyard_events.verify import verify_chain

    engine = create_engine(url)
    store = PostgresEventStore(engine, schema)
    try:
        report = await verify_chain(store, keys=TEST_KEYS)
        if not report.ok:
            raise RuntimeError(f"the benchmark's own log does not verify: {report}")
        return report.checked
    finally:
        await engine.dispose()


async def _replay(url: str, schema: str) -> int:
    from modelyard_events.consumer.runner import SourceTopic
    from modelyard_events.db import create_engine
    from modelyard_events.replay import rebuild_projection
    from modelyard_events.store.postgres import PostgresEventStore
    from modelyard_events.testing.signing import TEST_KEYS
    from modelyard_job.consumers import VIEW_EVENTS
    from modelyard_job.projections.views import JOB_SOURCE, TRAINER_SOURCE, JobViews

    engine = create_engine(url)
    store, jobs = PostgresEventStore(engine, schema), PostgresEventStore(engine, f"{schema}_jobs")
    try:
        sources = [
            SourceTopic(JOB_SOURCE, f"{schema}.jobs", jobs, TEST_KEYS),
            SourceTopic(TRAINER_SOURCE, f"{schema}.trainers", store, TEST_KEYS),
        ]
        fresh = f"{schema}_replay_{uuid.uuid4().hex[:6]}"
        dead = await rebuild_projection(engine, JobViews(fresh), VIEW_EVENTS, sources)
        if dead:
            raise RuntimeError(f"{dead} events could not be applied in the replay")
        return await store.head_position()  # the job log's few events are not counted
    finally:
        await engine.dispose()


async def _fill(url: str, schema: str, events: int) -> None:
    """`events` trainer reports over jobs of 10,000 reports each, appended by 8 writers, after
    job-svc's log of those jobs (created, queued, dispatched), so that the reports follow their
    dispatch as they do in a real log."""
    from job_log import JOB_STREAM, dispatched_job

    from modelyard_events.db import create_engine
    from modelyard_events.store.postgres import PostgresEventStore
    from modelyard_events.testing.sample_events import TEST_CONTEXT
    from modelyard_events.testing.signing import TEST_SIGNER

    engine = create_engine(url, pool_size=WRITERS + 2)
    store = PostgresEventStore(engine, schema, signer=TEST_SIGNER)
    jobs = PostgresEventStore(engine, f"{schema}_jobs", signer=TEST_SIGNER)
    try:
        await store.create_schema()
        await jobs.create_schema()
        per_writer = events // WRITERS // PER_APPEND * PER_APPEND
        for writer in range(WRITERS):
            for run in range(-(-per_writer // 10_000)):
                dispatch = f"run-{writer}-{run}"
                job = dispatched_job(f"job-{dispatch}", dispatch, "trainer-1", epochs=200)
                await jobs.append(JOB_STREAM, f"job-{dispatch}", 0, job, TEST_CONTEXT)

        async def write(writer: int) -> None:
            for start in range(0, per_writer, PER_APPEND):
                run, version = f"run-{writer}-{start // 10_000}", start % 10_000
                batch = [_report(run, version + i) for i in range(PER_APPEND)]
                await store.append("training_run", run, version, batch, TEST_CONTEXT)

        await asyncio.gather(*(write(w) for w in range(WRITERS)))
        await store.signatures.flush()
        await jobs.signatures.flush()
    finally:
        await store.close()
        await jobs.close()
        await engine.dispose()


def _report(run: str, n: int) -> Any:
    from modelyard_events.schemas.training import EpochCompleted, TrainingProgressed

    common = {"job_id": f"job-{run}", "attempt": 1, "dispatch_id": run, "trainer_id": "trainer-1"}
    epoch, step = divmod(n, 50)
    if step == 49:
        return EpochCompleted(
            **common,
            epoch=epoch + 1,
            train_loss=0.5,
            val_loss=0.6,
            val_accuracy=0.8,
            metrics={"accuracy": 0.8},
            samples_per_s=1234.5,
            duration_s=12.5,
            gpu_utilization_pct=None,
            gpu_memory_bytes=None,
        )
    return TrainingProgressed(
        **common,
        epoch=epoch + 1,
        step=step + 1,
        steps_total=50,
        loss=1.0 / (step + 1),
        samples_per_s=1234.5,
        eta_s=60.0,
    )


def _checkpoint(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def _machine(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgres": version[0] if version else "?",
    }


def _write(
    results: dict[int, dict[str, PhaseRun]], machine: dict[str, Any], parameters: dict[str, Any]
) -> str:
    small, large = sorted(results)
    lines = [
        "| log | phase | events/s | raw read events/s | ratio | target | met? |",
        "|---|---|---:|---:|---:|---:|:---:|",
    ]
    for size in (small, large):
        floor = results[size]["raw read"]
        for phase in ("replay", "verify"):
            run = results[size][phase]
            ratio = run.events_per_s / floor.events_per_s
            target = f"≥ {REPLAY_TARGET}×" if phase == "replay" else "—"
            met = ("yes" if ratio >= REPLAY_TARGET else "NO") if phase == "replay" else "—"
            lines.append(
                f"| {size:,} | {phase} | {run.events_per_s:,.0f} | {floor.events_per_s:,.0f} "
                f"| {ratio:.2f}× | {target} | {met} |"
            )
    lines += [
        "",
        f"| phase | peak RSS at {small:,} | peak RSS at {large:,} | growth | target | met? |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for phase in PHASES:
        a, b = results[small][phase].peak_rss_bytes, results[large][phase].peak_rss_bytes
        growth = b / a
        lines.append(
            f"| {phase} | {a / 2**20:,.0f} MiB | {b / 2**20:,.0f} MiB | {growth:.2f}× "
            f"| ≤ {MEMORY_GROWTH_LIMIT}× | {'yes' if growth <= MEMORY_GROWTH_LIMIT else 'NO'} |"
        )
    table = "\n".join(lines) + "\n"
    document = {
        "machine": machine,
        "parameters": parameters,
        "runs": {
            str(size): {p: {**vars(r), "events_per_s": round(r.events_per_s, 1)} for p, r in runs.items()}
            for size, runs in results.items()
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "audit.json").write_text(json.dumps(document, indent=2) + "\n")
    (RESULTS / "audit.md").write_text(table)
    return table


if __name__ == "__main__":
    main()
