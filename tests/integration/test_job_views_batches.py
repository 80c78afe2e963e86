"""job-svc's views fold runs of trainer reports in a few statements: same tables as one by one.

Both logs are written for real (two stores), then the views are rebuilt twice from them through
the runner: once by a projection that only has `apply` (one event at a time) and once by JobViews,
which the runner hands whole runs (`apply_batch`). Every table must come out identical, and right.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_events.consumer.runner import ProjectionRunner, SourceTopic
from modelyard_events.envelope import Actor, CommandContext, DomainEvent
from modelyard_events.replay import rebuild_projection
from modelyard_events.schemas.jobs import JOB_STREAM
from modelyard_events.schemas.training import (
    RUN_STREAM,
    EpochCompleted,
    TrainingCompleted,
    TrainingProgressed,
    TrainingReport,
    TrainingStarted,
)
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.one_by_one import OneByOne
from modelyard_events.testing.signing import TEST_KEYS, TEST_SIGNER
from modelyard_job.consumers import VIEW_EVENTS
from modelyard_job.domain import TrainingJob
from modelyard_job.projections.views import JOB_SOURCE, TRAINER_SOURCE, JobViews

pytestmark = pytest.mark.integration

CONTEXT = CommandContext(actor=Actor(subject="tester", roles=("super_admin",)), org_id="org-1")
TABLES = {
    "jobs": "job_id",
    "epoch_metrics": "job_id, attempt, epoch",
    "job_timeline": "source, position",
    "trainers": "trainer_id",
    "dispatches": "dispatch_id",
    "early_reports": "position",
}
EPOCHS, STEPS = 4, 10


class Logs:
    """job-svc's and trainer-svc's stores, written the way the services write them."""

    def __init__(self, engine: AsyncEngine) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.jobs = PostgresEventStore(engine, f"bj_{suffix}", signer=TEST_SIGNER)
        self.trainer = PostgresEventStore(engine, f"bt_{suffix}", signer=TEST_SIGNER)
        self.job_state: dict[str, TrainingJob] = {}
        self.run_versions: dict[str, int] = {}

    async def decide(self, job_id: str, events: list[DomainEvent]) -> None:
        job = self.job_state.get(job_id) or TrainingJob(job_id=job_id)
        await self.jobs.append(JOB_STREAM, job_id, job.version, events, CONTEXT)
        self.job_state[job_id] = job.apply_all(events)

    async def report(self, *reports: TrainingReport) -> None:
        for report in reports:
            version = self.run_versions.get(report.dispatch_id, 0)
            await self.trainer.append(RUN_STREAM, report.dispatch_id, version, [report], CONTEXT)
            self.run_versions[report.dispatch_id] = version + 1
            job = self.job_state[report.job_id]
            if decided := job.on_training_report(report):
                await self.decide(report.job_id, decided)

    async def create(self, job_id: str) -> None:
        await self.decide(
            job_id,
            TrainingJob.create(
                job_id=job_id,
                org_id="org-1",
                name=job_id,
                ai_module="digits",
                family="image_classifier",
                dataset_uri="file:///data/digits.npz",
                hyperparameters={"epochs": EPOCHS},
                priority=50,
                created_by="tester",
            ),
        )

    async def dispatch(self, job_id: str, dispatch_id: str) -> None:
        job = self.job_state[job_id]
        now = datetime(2026, 1, 1, tzinfo=UTC)
        await self.decide(
            job_id, job.dispatch(trainer_id="t-1", dispatch_id=dispatch_id, now=now, lease_ttl=timedelta(30))
        )


def _report(job_id: str, dispatch_id: str) -> dict[str, Any]:
    return {"job_id": job_id, "attempt": 1, "dispatch_id": dispatch_id, "trainer_id": "t-1"}


def started(job_id: str, dispatch_id: str, start_epoch: int = 1) -> TrainingStarted:
    return TrainingStarted(
        **_report(job_id, dispatch_id),
        device="cpu",
        amp=False,
        start_epoch=start_epoch,
        start_step=0,
        epochs_total=EPOCHS,
        steps_per_epoch=STEPS,
        train_samples=640,
        val_samples=160,
    )


def progressed(
    job_id: str, dispatch_id: str, epoch: int, step: int, eta_s: float | None
) -> TrainingProgressed:
    return TrainingProgressed(
        **_report(job_id, dispatch_id),
        epoch=epoch,
        step=step,
        steps_total=STEPS,
        loss=1.0 / (epoch * STEPS + step),
        samples_per_s=1000.0 + step,
        eta_s=eta_s,
    )


def epoch_completed(job_id: str, dispatch_id: str, epoch: int) -> EpochCompleted:
    return EpochCompleted(
        **_report(job_id, dispatch_id),
        epoch=epoch,
        train_loss=1.0 / epoch,
        val_loss=1.5 / epoch,
        val_accuracy=None if job_id.endswith("regress") else 0.5 + epoch / 10,
        metrics={"f1": 0.4 + epoch / 10, "note_free": float(epoch)},
        samples_per_s=2000.0 + epoch,
        duration_s=0.5 * epoch,
        gpu_utilization_pct=None,
        gpu_memory_bytes=None,
    )


async def write_two_jobs_with_a_lost_lease(logs: Logs) -> None:
    """Job a trains to the end; job b loses its trainer after epoch 2 and resumes on another dispatch.

    Reports of both interleave, the lost dispatch keeps talking after the new one started (stale),
    and it reports epoch 3 before the new dispatch does (the first report of an epoch wins).
    """
    for job_id, dispatch_id in (("a", "a-d1"), ("b-regress", "b-d1")):
        await logs.create(job_id)
        await logs.dispatch(job_id, dispatch_id)
        await logs.report(started(job_id, dispatch_id))
    for epoch in range(1, EPOCHS + 1):
        for step in (3, 7):
            await logs.report(progressed("a", "a-d1", epoch, step, None if step == 3 else 9.5))
            if epoch <= 2:
                await logs.report(progressed("b-regress", "b-d1", epoch, step, 4.0))
        await logs.report(epoch_completed("a", "a-d1", epoch))
        if epoch <= 2:
            await logs.report(epoch_completed("b-regress", "b-d1", epoch))
    await logs.decide("b-regress", logs.job_state["b-regress"].expire_lease("b-d1"))
    await logs.dispatch("b-regress", "b-d2")
    await logs.report(progressed("b-regress", "b-d1", 3, 5, 1.0), epoch_completed("b-regress", "b-d1", 3))
    await logs.report(started("b-regress", "b-d2", start_epoch=3))
    for epoch in (3, 4):
        await logs.report(progressed("b-regress", "b-d2", epoch, 4, 2.0))
        await logs.report(progressed("b-regress", "b-d1", epoch, 9, 0.1))  # stale: not the current dispatch
        await logs.report(epoch_completed("b-regress", "b-d2", epoch))
    await logs.report(progressed("b-regress", "b-d2", 4, 8, 0.5))  # after the epoch: eta from here


def _sources(logs: Logs) -> list[SourceTopic]:
    return [
        SourceTopic(JOB_SOURCE, "jobs-unused", logs.jobs, TEST_KEYS),
        SourceTopic(TRAINER_SOURCE, "trainer-unused", logs.trainer, TEST_KEYS),
    ]


async def rebuild(engine: AsyncEngine, logs: Logs, views: Any) -> None:
    assert await rebuild_projection(engine, views, VIEW_EVENTS, _sources(logs)) == 0


async def table_rows(engine: AsyncEngine, schema: str) -> dict[str, Sequence[Any]]:
    async with engine.connect() as conn:
        return {
            table: (await conn.execute(text(f"SELECT * FROM {schema}.{table} ORDER BY {key}"))).all()
            for table, key in TABLES.items()
        }


async def written_logs(
    engine: AsyncEngine, write: Callable[[Logs], Awaitable[None]] = write_two_jobs_with_a_lost_lease
) -> Logs:
    logs = Logs(engine)
    await logs.jobs.create_schema()
    await logs.trainer.create_schema()
    try:
        await write(logs)
    finally:
        await logs.jobs.close()
        await logs.trainer.close()
    return logs


async def test_views_applied_in_runs_equal_the_views_applied_one_event_at_a_time(engine: AsyncEngine) -> None:
    logs = await written_logs(engine)
    suffix = uuid.uuid4().hex[:8]
    one_by_one, batched = JobViews(f"v1_{suffix}"), JobViews(f"vb_{suffix}")

    await rebuild(engine, logs, OneByOne(one_by_one))
    await rebuild(engine, logs, batched)

    expected, got = await table_rows(engine, one_by_one.schema), await table_rows(engine, batched.schema)
    for table in TABLES:
        assert got[table] == expected[table], table
    jobs = {row.job_id: row for row in got["jobs"]}
    assert (jobs["a"].epochs_done, jobs["a"].progress, jobs["a"].eta_s) == (EPOCHS, 1.0, 9.5)
    resumed = jobs["b-regress"]
    assert (resumed.dispatch_id, resumed.epochs_done, resumed.epoch, resumed.step) == ("b-d2", 4, 4, 8)
    assert (resumed.eta_s, resumed.progress) == (0.5, (3 * STEPS + 8) / (EPOCHS * STEPS))
    epochs = {(row.job_id, row.epoch): row.dispatch_id for row in got["epoch_metrics"]}
    assert epochs[("b-regress", 3)] == "b-d1"  # the first report of an epoch wins
    assert epochs[("b-regress", 4)] == "b-d2"
    assert len(epochs) == 2 * EPOCHS
    progress_rows = [row for row in got["job_timeline"] if row.type == "TrainingProgressed"]
    assert progress_rows == []


async def test_reports_applied_before_their_dispatch_end_as_if_applied_after_it(engine: AsyncEngine) -> None:
    """Live, the trainers' log can run ahead of job-svc's: reports reach the views before the
    JobDispatched they follow. Applying the whole trainers' log first must give what a rebuild
    (the logs merged in recorded order) gives, with nothing left waiting."""
    logs = await written_logs(engine)
    suffix = uuid.uuid4().hex[:8]
    in_order, trainers_first = JobViews(f"vo_{suffix}"), JobViews(f"vt_{suffix}")
    await rebuild(engine, logs, in_order)
    runner = ProjectionRunner(engine, trainers_first, VIEW_EVENTS, _sources(logs), bootstrap_servers=None)
    await runner.create_tables()
    await runner.catch_up(["trainer-unused"])
    waiting = (await table_rows(engine, trainers_first.schema))["early_reports"]
    assert len(waiting) > 20  # every report of every dispatch waited for its JobDispatched
    await runner.catch_up(["jobs-unused"])
    assert runner.dead_lettered == 0

    expected, got = await table_rows(engine, in_order.schema), await table_rows(engine, trainers_first.schema)
    for table in TABLES:
        assert got[table] == expected[table], table
    assert got["early_reports"] == []
    assert {row.dispatch_id for row in got["dispatches"]} == {"a-d1", "b-d1", "b-d2"}


async def test_reports_applied_after_the_job_ended_as_if_applied_before_it(engine: AsyncEngine) -> None:
    """Live, job-svc's log can run ahead of the trainers' (a broker restarted empty, a relay that was
    down): the job is completed in the views before its run's reports reach them. Those reports must
    still leave what a rebuild gives (the fault campaign found a completed job showing step 0 and no
    loss live, its last step and loss in the replay)."""

    async def write(logs: Logs) -> None:
        await logs.create("c")
        await logs.dispatch("c", "c-d1")
        await logs.report(started("c", "c-d1"))
        for epoch in range(1, EPOCHS + 1):
            await logs.report(progressed("c", "c-d1", epoch, STEPS, 3.0), epoch_completed("c", "c-d1", epoch))
        await logs.report(
            TrainingCompleted(
                **_report("c", "c-d1"),
                artifact_uri="file:///runs/c/model.pt",
                artifact_sha256="a" * 64,
                artifact_size_bytes=10,
                metrics={"accuracy": 0.9},
                epochs=EPOCHS,
            )
        )

    logs = await written_logs(engine, write)
    assert logs.job_state["c"].state.value == "completed"
    [job] = (await same_in_either_order(engine, logs))["jobs"]
    assert (job.state, job.progress, job.eta_s) == ("completed", 1.0, 0.0)
    # the last report is the epoch's: its train loss
    assert (job.epoch, job.step, job.loss, job.phase) == (EPOCHS, STEPS, 1.0 / EPOCHS, None)


async def same_in_either_order(engine: AsyncEngine, logs: Logs) -> dict[str, Sequence[Any]]:
    """The views applied with the whole of job-svc's log first, checked equal to a rebuild in recorded
    order, table by table."""
    suffix = uuid.uuid4().hex[:8]
    in_order, jobs_first = JobViews(f"vo_{suffix}"), JobViews(f"vj_{suffix}")
    await rebuild(engine, logs, in_order)
    runner = ProjectionRunner(engine, jobs_first, VIEW_EVENTS, _sources(logs), bootstrap_servers=None)
    await runner.create_tables()
    await runner.catch_up(["jobs-unused"])
    await runner.catch_up(["trainer-unused"])
    assert runner.dead_lettered == 0
    expected, got = await table_rows(engine, in_order.schema), await table_rows(engine, jobs_first.schema)
    for table in TABLES:
        assert got[table] == expected[table], table
    return got


async def test_a_lost_lease_and_a_stale_trainer_give_the_same_views_in_either_order(
    engine: AsyncEngine,
) -> None:
    """Reports recorded before their dispatch ended count whenever they are applied; those a trainer
    sent after losing its lease never move the row, whichever log the views saw first."""
    await same_in_either_order(engine, await written_logs(engine))


async def test_a_silent_second_dispatch_leaves_the_first_ones_progress_in_either_order(
    engine: AsyncEngine,
) -> None:
    """What the first dispatch reported stays when the second never reports, whichever log came first."""

    async def write(logs: Logs) -> None:
        await logs.create("s")
        await logs.dispatch("s", "s-d1")
        await logs.report(started("s", "s-d1"))
        for epoch in (1, 2):
            await logs.report(progressed("s", "s-d1", epoch, 5, 7.0), epoch_completed("s", "s-d1", epoch))
        await logs.decide("s", logs.job_state["s"].expire_lease("s-d1"))
        await logs.report(progressed("s", "s-d1", 3, 1, 1.0))  # the lost trainer talks on: moves nothing
        await logs.dispatch("s", "s-d2")
        await logs.decide("s", logs.job_state["s"].expire_lease("s-d2"))  # the second never reported

    [job] = (await same_in_either_order(engine, await written_logs(engine, write)))["jobs"]
    assert (job.epoch, job.step, job.epochs_done, job.eta_s, job.dispatch_id) == (2, STEPS, 2, None, None)
