"""Trainer reports → live progress on the `jobs` row and the per-epoch metrics history.

Only the job's current dispatch moves its live progress (a trainer that lost its lease may still be
talking). Epoch metrics are keyed by (job, attempt, epoch) and the first report of an epoch wins, so an
epoch is never counted twice, even when a job moves to another trainer mid-epoch.
"""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.training import EpochCompleted, TrainingProgressed, TrainingStarted

_CURRENT = "WHERE job_id = :job_id AND attempt = :attempt AND dispatch_id = :dispatch_id"


async def apply_training_report(
    schema: str, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection
) -> str | None:
    """Fold one trainer report; return what changed for watchers ("progress", "epoch") or None."""
    if isinstance(event, TrainingStarted):
        await _started(schema, event, conn)
        return "progress"
    if isinstance(event, TrainingProgressed):
        await _progressed(schema, event, conn)
        return "progress"
    if isinstance(event, EpochCompleted):
        await _epoch_completed(schema, event, envelope, conn)
        return "epoch"
    return None


def _keys(event: TrainingStarted | TrainingProgressed | EpochCompleted) -> dict[str, object]:
    return {"job_id": event.job_id, "attempt": event.attempt, "dispatch_id": event.dispatch_id}


async def _started(schema: str, event: TrainingStarted, conn: AsyncConnection) -> None:
    done = event.start_epoch - 1
    await conn.execute(
        text(
            f"UPDATE {schema}.jobs SET epochs_total = :total, steps_per_epoch = :steps, device = :device, "
            "epochs_done = GREATEST(epochs_done, :done), epoch = :epoch, step = :step, "
            "progress = (:done * :steps + :step)::float8 / GREATEST(:total * :steps, 1) " + _CURRENT
        ),
        {
            **_keys(event),
            "total": event.epochs_total,
            "steps": event.steps_per_epoch,
            "device": event.device,
            "done": done,
            "epoch": event.start_epoch,
            "step": event.start_step,
        },
    )


async def _progressed(schema: str, event: TrainingProgressed, conn: AsyncConnection) -> None:
    await conn.execute(
        text(
            f"UPDATE {schema}.jobs SET epoch = :epoch, step = :step, loss = :loss, "
            "samples_per_s = :rate, eta_s = :eta, "
            "progress = ((:epoch - 1) * :steps + :step)::float8 / GREATEST(epochs_total * :steps, 1) "
            + _CURRENT
        ),
        {
            **_keys(event),
            "epoch": event.epoch,
            "step": event.step,
            "steps": event.steps_total,
            "loss": event.loss,
            "rate": event.samples_per_s,
            "eta": event.eta_s,
        },
    )


async def _epoch_completed(
    schema: str, event: EpochCompleted, envelope: EventEnvelope, conn: AsyncConnection
) -> None:
    await conn.execute(
        text(
            f"INSERT INTO {schema}.epoch_metrics VALUES (:job_id, :attempt, :epoch, :dispatch_id, "
            ":train_loss, :val_loss, :val_accuracy, CAST(:metrics AS jsonb), :samples_per_s, :duration_s, "
            ":gpu_utilization_pct, :gpu_memory_bytes, :at) ON CONFLICT DO NOTHING"
        ),
        {
            **event.model_dump(exclude={"metrics"}),
            "metrics": json.dumps(event.metrics),
            "at": envelope.occurred_at,
        },
    )
    await conn.execute(
        text(
            f"UPDATE {schema}.jobs SET epochs_done = GREATEST(epochs_done, :epoch), epoch = :epoch, "
            "step = steps_per_epoch, loss = :loss, samples_per_s = :rate, "
            "progress = CAST(:epoch AS float8) / GREATEST(epochs_total, 1) " + _CURRENT
        ),
        {**_keys(event), "epoch": event.epoch, "loss": event.train_loss, "rate": event.samples_per_s},
    )
