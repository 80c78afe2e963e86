"""Job events → the `jobs` row: state, attempt, lease, checkpoint, outcome (job-svc's own decisions)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.jobs import (
    JobCancelled,
    JobCheckpointRecorded,
    JobCompleted,
    JobCreated,
    JobDispatched,
    JobEvaluationCompleted,
    JobFailed,
    JobLeaseExpired,
    JobPaused,
    JobPriorityChanged,
    JobQueued,
    JobRetried,
    JobStarted,
)
from modelyard_job.domain.transitions import STATE_AFTER, TERMINAL_STATES
from modelyard_job.projections.early_reports import end_current_dispatch

Columns = dict[str, Any]


async def apply_job_event(
    schema: str, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection
) -> None:
    """Fold one event of a `training_job` stream into its row."""
    if isinstance(event, JobCreated):
        await _insert(schema, event, envelope, conn)
        return
    changes: Columns = {"version": envelope.stream_version, "updated_at": envelope.occurred_at}
    state = STATE_AFTER.get(type(event))
    if state is not None:
        changes["state"] = state.value
        # Ended when it reaches a terminal state; a retry out of one clears it again.
        changes["completed_at"] = envelope.occurred_at if state in TERMINAL_STATES else None
        changes["phase"] = changes["phase_message"] = None  # a run's phase lasts while it is dispatched
    columns = _COLUMNS.get(type(event))
    if columns is not None:
        changes.update(columns(event, envelope))
    if "dispatch_id" in changes and changes["dispatch_id"] is None:
        await end_current_dispatch(schema, envelope.stream_id, envelope.occurred_at, conn)
    assignments = ", ".join(f"{c} = {_EXPRESSIONS.get(c, ':' + c)}" for c in changes)
    await conn.execute(
        text(f"UPDATE {schema}.jobs SET {assignments} WHERE job_id = :job_id"),
        {**changes, "job_id": envelope.stream_id},
    )


async def _insert(schema: str, event: JobCreated, envelope: EventEnvelope, conn: AsyncConnection) -> None:
    model = event.model_input.version_id if event.model_input is not None else None
    await conn.execute(
        text(
            f"INSERT INTO {schema}.jobs (job_id, org_id, name, ai_module, family, dataset_uri, "
            "hyperparameters, priority, state, attempt, created_by, request_id, created_at, updated_at, "
            "version, kind, description, base_version_id, model_version_id, evaluation_id, "
            "output_version_id) VALUES (:job_id, :org_id, :name, :ai_module, :family, :dataset_uri, "
            "CAST(:hyperparameters AS jsonb), :priority, 'pending', 1, :created_by, :request_id, :at, :at, "
            ":version, :kind, :description, :base_version_id, :model_version_id, :evaluation_id, "
            f"(SELECT version_id FROM {schema}.job_outputs WHERE job_id = :job_id)) "
            "ON CONFLICT (job_id) DO NOTHING"
        ),
        {
            **event.model_dump(exclude={"hyperparameters", "model_input"}),
            "hyperparameters": json.dumps(event.hyperparameters),
            "base_version_id": model if event.kind == "training" else None,
            "model_version_id": model if event.kind == "evaluation" else None,
            "at": envelope.occurred_at,
            "version": envelope.stream_version,
        },
    )


# Columns whose new value is an SQL expression over the old one (never move backwards).
_EXPRESSIONS = {
    "epochs_done": "GREATEST(epochs_done, :epochs_done)",
    "started_at": "COALESCE(started_at, :started_at)",  # the first start: elapsed counts from it
}
_NO_LEASE: Columns = {"trainer_id": None, "dispatch_id": None, "lease_expires_at": None, "started": False}


def _queued(event: JobQueued, envelope: EventEnvelope) -> Columns:
    return {**_NO_LEASE, "attempt": event.attempt, "queued_at": envelope.occurred_at, "eta_s": None}


def _dispatched(event: JobDispatched, envelope: EventEnvelope) -> Columns:
    return {
        "phase": "dispatched",
        "phase_message": f"sent to trainer {event.trainer_id}",
        "trainer_id": event.trainer_id,
        "dispatch_id": event.dispatch_id,
        "lease_expires_at": event.lease_expires_at,
        "started": False,
        "queued_at": None,
    }


def _retried(event: JobRetried, envelope: EventEnvelope) -> Columns:
    reset = {"epochs_done": 0, "epoch": 0, "step": 0, "progress": None, "loss": None, "samples_per_s": None}
    # The new attempt has not started: its sizes come with its TrainingStarted (the last attempt's
    # would stay only when its TrainingStarted was applied before this, not after).
    reset |= {"epochs_total": 0, "steps_per_epoch": 0, "train_samples": None}
    return {**reset, "attempt": event.attempt, "checkpoint_uri": None, "failure_reason": None}


def _completed(event: JobCompleted, envelope: EventEnvelope) -> Columns:
    return {
        "artifact_uri": event.artifact_uri,
        "artifact_sha256": event.artifact_sha256,
        "epochs_done": event.epochs,
        "progress": 1.0,
        "eta_s": 0.0,
        "dispatch_id": None,
        "lease_expires_at": None,
    }


def _evaluated(event: JobEvaluationCompleted, envelope: EventEnvelope) -> Columns:
    return {"progress": 1.0, "eta_s": 0.0, "dispatch_id": None, "lease_expires_at": None}


_COLUMNS: dict[type[DomainEvent], Callable[[Any, EventEnvelope], Columns]] = {
    JobQueued: _queued,
    JobDispatched: _dispatched,
    JobStarted: lambda e, envelope: {"started": True, "device": e.device, "started_at": envelope.occurred_at},
    JobPriorityChanged: lambda e, _: {"priority": e.priority},
    JobCheckpointRecorded: lambda e, _: {"checkpoint_uri": e.checkpoint_uri, "epochs_done": e.epochs_done},
    JobPaused: lambda e, _: {**_NO_LEASE, "checkpoint_uri": e.checkpoint_uri, "eta_s": None},
    JobLeaseExpired: lambda e, _: {**_NO_LEASE, "eta_s": None},
    JobRetried: _retried,
    JobCompleted: _completed,
    JobEvaluationCompleted: _evaluated,
    JobCancelled: lambda e, _: {"dispatch_id": None, "lease_expires_at": None, "eta_s": None},
    JobFailed: lambda e, _: {
        "failure_reason": e.reason,
        "dispatch_id": None,
        "lease_expires_at": None,
        "eta_s": None,
    },
}
