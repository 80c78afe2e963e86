"""JobViews: the one projection job-svc runs over its own log, the trainers' log and the registry's.

Job status, queue, per-epoch metrics, job timelines, the runs' log lines and trainers are updated
in the runner's transaction (exactly once per event), and each change is announced with pg_notify on
commit, so WatchJob streams and the dispatcher on any replica wake without polling. Runs of progress and epoch
reports, most of the traffic, are applied a run at a time (`apply_batch`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.consumer.projection import Decoded
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.jobs import JOB_STREAM, JobDispatched, JobQueued
from modelyard_events.schemas.registry import MODULE_STREAM
from modelyard_events.schemas.training import (
    RUN_STREAM,
    EpochCompleted,
    TrainingLogged,
    TrainingPhaseChanged,
    TrainingReport,
    TrainingStarted,
)
from modelyard_job.projections.early_reports import (
    dispatch_ends,
    keep_early,
    note_dispatched,
    recorded_before_end,
)
from modelyard_job.projections.job_status import apply_job_event
from modelyard_job.projections.live_progress import LIVE_REPORTS, LiveReport
from modelyard_job.projections.model_versions import apply_registry_event, job_of
from modelyard_job.projections.tables import changes_channel, create_view_tables
from modelyard_job.projections.timeline import record_in_timeline
from modelyard_job.projections.trainers import apply_trainer_event
from modelyard_job.projections.training_logs import apply_training_logged
from modelyard_job.projections.training_reports import (
    apply_live_reports,
    apply_training_phase,
    apply_training_started,
)

JOB_SOURCE = "job"
TRAINER_SOURCE = "trainer"
REGISTRY_SOURCE = "registry"
LiveRun = list[tuple[LiveReport, EventEnvelope]]


@dataclass
class JobViews:
    """The read models of job-svc in `schema` (a BatchProjection for ProjectionRunner and replay)."""

    schema: str
    name: str = "job_views"

    async def create_tables(self, conn: AsyncConnection) -> None:
        """Create every read-model table."""
        await create_view_tables(conn, self.schema)

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """Route one event of either log to the tables it changes."""
        if envelope.stream_type == JOB_STREAM:
            await apply_job_event(self.schema, event, envelope, conn)
            await record_in_timeline(self.schema, JOB_SOURCE, [(envelope.stream_id, event, envelope)], conn)
            kind = "queued" if isinstance(event, JobQueued) else "state"
            await self._announce(conn, [(envelope.stream_id, kind)])
            if isinstance(event, JobDispatched):
                await self.apply_batch(await note_dispatched(self.schema, event, conn), conn)
        elif envelope.stream_type == RUN_STREAM and isinstance(event, LIVE_REPORTS):
            await self._apply_live_run([(event, envelope)], conn)
        elif envelope.stream_type == RUN_STREAM and isinstance(event, TrainingLogged):
            await apply_training_logged(self.schema, event, envelope, conn)  # lines stay out of the timeline
            await self._announce(conn, [(event.job_id, "logs")])
        elif envelope.stream_type == RUN_STREAM and isinstance(event, TrainingStarted | TrainingPhaseChanged):
            ends = await dispatch_ends(self.schema, [event.dispatch_id], conn)
            if event.dispatch_id not in ends:
                await keep_early(self.schema, [(event, envelope)], conn)
                return
            await self._apply_report(
                event, envelope, conn, recorded_before_end(envelope, ends[event.dispatch_id])
            )
        elif envelope.stream_type == RUN_STREAM and isinstance(event, TrainingReport):
            await self._apply_report(event, envelope, conn)
        elif envelope.stream_type == MODULE_STREAM:
            await self._apply_registry_event(event, envelope, conn)
        elif await apply_trainer_event(self.schema, event, envelope, conn):
            await self._announce(conn, [("", "trainer")])

    async def _apply_report(
        self, event: TrainingReport, envelope: EventEnvelope, conn: AsyncConnection, moves: bool = True
    ) -> None:
        """Record a report; with `moves` (recorded before its dispatch ended) it also changes the row."""
        if isinstance(event, TrainingStarted) and moves:
            await apply_training_started(self.schema, event, conn)
        elif isinstance(event, TrainingPhaseChanged) and moves:
            await apply_training_phase(self.schema, event, conn)
        await record_in_timeline(self.schema, TRAINER_SOURCE, [(event.job_id, event, envelope)], conn)
        kind = "progress" if isinstance(event, TrainingStarted | TrainingPhaseChanged) else "report"
        await self._announce(conn, [(event.job_id, kind)])

    async def apply_batch(self, events: Sequence[Decoded], conn: AsyncConnection) -> None:
        """Apply events in order, each run of progress/epoch reports in a few statements."""
        run: LiveRun = []
        for event, envelope in events:
            if envelope.stream_type == RUN_STREAM and isinstance(event, LIVE_REPORTS):
                run.append((event, envelope))
                continue
            await self._apply_live_run(run, conn)
            run = []
            await self.apply(event, envelope, conn)
        await self._apply_live_run(run, conn)

    async def _apply_registry_event(
        self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection
    ) -> None:
        job_id = job_of(event)
        if job_id is None:
            return  # approvals, releases …: about versions, not jobs
        await apply_registry_event(self.schema, event, envelope, conn)
        await record_in_timeline(self.schema, REGISTRY_SOURCE, [(job_id, event, envelope)], conn)
        await self._announce(conn, [(job_id, "registry")])

    async def _apply_live_run(self, run: LiveRun, conn: AsyncConnection) -> None:
        if not run:
            return
        dispatch_ids = {report.dispatch_id for report, _ in run}
        ends = await dispatch_ends(self.schema, dispatch_ids, conn)
        if ends.keys() != dispatch_ids:
            await keep_early(self.schema, [(r, e) for r, e in run if r.dispatch_id not in ends], conn)
            run = [(report, envelope) for report, envelope in run if report.dispatch_id in ends]
            if not run:
                return
        moving = [(r, e) for r, e in run if recorded_before_end(e, ends[r.dispatch_id])]
        await apply_live_reports(self.schema, run, moving, conn)
        # Only epoch reports enter the timeline (progress reports are what the row shows).
        epochs = [
            (report.job_id, report, envelope)
            for report, envelope in run
            if isinstance(report, EpochCompleted)
        ]
        await record_in_timeline(self.schema, TRAINER_SOURCE, epochs, conn)
        changes = dict.fromkeys(
            (report.job_id, "epoch" if isinstance(report, EpochCompleted) else "progress")
            for report, _ in run
        )
        await self._announce(conn, list(changes))

    async def _announce(self, conn: AsyncConnection, changes: list[tuple[str, str]]) -> None:
        """Notify (job_id, kind) pairs on commit ("" for changes that are not about one job)."""
        await conn.execute(
            text("SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload"),
            {
                "channel": changes_channel(self.schema),
                "payloads": [json.dumps({"job_id": job_id, "kind": kind}) for job_id, kind in changes],
            },
        )
