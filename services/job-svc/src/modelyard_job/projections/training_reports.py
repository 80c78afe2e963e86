"""Trainer reports → live progress on the `jobs` row and the per-epoch metrics history.

Only reports recorded while their dispatch was current move the job's row (a trainer that lost its
lease may still be talking; early_reports.py). Epoch metrics are keyed by (job, attempt, epoch) and
the first report of an epoch wins, so an epoch is never counted twice, even when a job moves to
another trainer mid-epoch.

Progress and epoch reports are most of the traffic, so they are applied in runs: one multi-row
INSERT of epoch metrics and one UPDATE of the folded progress (live_progress.py) per run, each
with its rows in one JSON document (`json_to_recordset`; events never hold NaN or infinities,
canonical JSON refuses them), which psycopg sends without adapting every value in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.db import rows_json
from modelyard_events.envelope import EventEnvelope
from modelyard_events.schemas.training import EpochCompleted, TrainingPhaseChanged, TrainingStarted
from modelyard_job.projections.live_progress import LiveReport, fold_live_progress

_INSERT_EPOCHS = """
INSERT INTO {s}.epoch_metrics
SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS r(job_id text, attempt int, epoch int,
    dispatch_id text, train_loss float8, val_loss float8, val_accuracy float8, metrics jsonb,
    samples_per_s float8, duration_s float8, gpu_utilization_pct float8, gpu_memory_bytes int8,
    recorded_at timestamptz)
ON CONFLICT DO NOTHING"""

_UPDATE_PROGRESS = """
UPDATE {s}.jobs AS j SET epoch = r.epoch, step = COALESCE(r.step, j.steps_per_epoch), loss = r.loss,
    samples_per_s = r.samples_per_s,
    eta_s = CASE WHEN r.eta_reported AND j.dispatch_id = r.dispatch_id THEN r.eta_s ELSE j.eta_s END,
    epochs_done = GREATEST(j.epochs_done, r.epochs_done),
    progress = CASE WHEN j.state = 'completed' THEN j.progress
        ELSE r.progress_steps::float8 / GREATEST(j.epochs_total * r.progress_steps_per_epoch, 1) END
FROM json_to_recordset(CAST(:rows AS json)) AS r(job_id text, attempt int, dispatch_id text, epoch int,
    step int8, loss float8, samples_per_s float8, progress_steps int8, progress_steps_per_epoch int8,
    eta_s float8, eta_reported bool, epochs_done int)
WHERE j.job_id = r.job_id AND j.attempt = r.attempt"""
# Only reports recorded while their dispatch was current come here (early_reports.py), also when the
# job's own log ended the dispatch before they reached the views (the two logs arrive in either order;
# a rebuild applies them in recorded order): what a run reported (epoch, step, loss, speed, progress)
# lands the same either way. A completed job keeps its 100%, and the ETA and the phase move only while
# the dispatch is current (every event that ends a dispatch sets them: 0 s on completion, none
# otherwise), so no report applied after an ending undoes it.


async def apply_training_started(schema: str, event: TrainingStarted, conn: AsyncConnection) -> None:
    """Size the job's progress (epochs, steps) and move it to where the trainer starts."""
    done = event.start_epoch - 1
    await conn.execute(
        text(
            f"UPDATE {schema}.jobs SET epochs_total = :total, steps_per_epoch = :steps, device = :device, "
            "phase = CASE WHEN dispatch_id = :dispatch_id THEN 'training' ELSE phase END, "
            "phase_message = CASE WHEN dispatch_id = :dispatch_id THEN :message ELSE phase_message END, "
            "train_samples = :train_samples, "
            "epochs_done = GREATEST(epochs_done, :done), epoch = :epoch, step = :step, "
            "progress = CASE WHEN state = 'completed' THEN progress "
            "ELSE (:done * :steps + :step)::float8 / GREATEST(:total * :steps, 1) END "
            "WHERE job_id = :job_id AND attempt = :attempt"
        ),
        {
            "job_id": event.job_id,
            "attempt": event.attempt,
            "dispatch_id": event.dispatch_id,
            "total": event.epochs_total,
            "steps": event.steps_per_epoch,
            "device": event.device,
            "done": done,
            "epoch": event.start_epoch,
            "step": event.start_step,
            "message": _training_message(event),
            "train_samples": event.train_samples,
        },
    )


def _training_message(event: TrainingStarted) -> str:
    where = (
        f"epoch {event.start_epoch}, step {event.start_step}"
        if event.start_step
        else f"epoch {event.start_epoch}"
    )
    resumed = " (resumed)" if event.start_epoch > 1 or event.start_step else ""
    return f"training on {event.device} from {where} of {event.epochs_total}{resumed}"


async def apply_training_phase(schema: str, event: TrainingPhaseChanged, conn: AsyncConnection) -> None:
    """The phase a dispatched run reports before its first step (only while that dispatch is current)."""
    await conn.execute(
        text(
            f"UPDATE {schema}.jobs SET phase = :phase, phase_message = :message "
            "WHERE job_id = :job_id AND attempt = :attempt AND dispatch_id = :dispatch_id"
        ),
        {
            "job_id": event.job_id,
            "attempt": event.attempt,
            "dispatch_id": event.dispatch_id,
            "phase": event.phase,
            "message": event.message,
        },
    )


async def apply_live_reports(
    schema: str,
    reports: Sequence[tuple[LiveReport, EventEnvelope]],
    moving: Sequence[tuple[LiveReport, EventEnvelope]],
    conn: AsyncConnection,
) -> None:
    """Apply consecutive progress/epoch reports of the trainers' log, as one by one would: every
    epoch report into the metrics (the first of an epoch wins), those of `moving` (recorded while
    their dispatch was current) onto the job's row."""
    if not reports:
        return
    epochs = [
        {**report.model_dump(), "recorded_at": envelope.occurred_at.isoformat()}
        for report, envelope in reports
        if isinstance(report, EpochCompleted)
    ]
    if epochs:
        await conn.execute(text(_INSERT_EPOCHS.format(s=schema)), {"rows": rows_json(epochs)})
    if not moving:
        return
    folded = [asdict(row) for row in fold_live_progress(report for report, _ in moving)]
    await conn.execute(text(_UPDATE_PROGRESS.format(s=schema)), {"rows": rows_json(folded)})
