"""What a trainer's report (schemas.training) means for the job: the job events it implies, if any.

Reports arrive from Kafka at least once and may come from a trainer that lost its lease, so a report
is never an error: one whose dispatch is not the job's current lease is stale, one whose effect the
job already shows is a duplicate, and both give []. Facts win over requests: a trainer that completed
or failed while a pause or cancel was requested has completed or failed. A training job completes with
TrainingCompleted, an evaluation job with EvaluationCompleted; the other kind's result from the current
dispatch's own trainer is not stale but wrong (a trainer that does not know the job's kind, e.g. one
not yet upgraded), so the job fails saying so rather than waiting for lease lapses to fail it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.jobs import (
    JobCancelled,
    JobCheckpointRecorded,
    JobCompleted,
    JobEvaluationCompleted,
    JobFailed,
    JobPaused,
    JobStarted,
)
from modelyard_events.schemas.training import (
    CheckpointSaved,
    EvaluationCompleted,
    TrainingCancelled,
    TrainingCompleted,
    TrainingFailed,
    TrainingPaused,
    TrainingReport,
    TrainingStarted,
)
from modelyard_job.domain.transitions import JobState

if TYPE_CHECKING:
    from modelyard_job.domain.job import TrainingJob


def job_events_for_report(job: TrainingJob, report: TrainingReport) -> list[DomainEvent]:
    """The job events `report` implies; [] when it is stale, a duplicate, or progress only.

    Only a running job's current dispatch (same dispatch_id and attempt, reported by the trainer it was
    made for: trainer-svc checks that, and this holds against a compromised trainer-svc) can change the job;
    TrainingProgressed and EpochCompleted never do (the read models take them straight from the trainer).
    """
    current = job.current_dispatch
    if job.state is not JobState.RUNNING or current is None:
        return []
    if report.dispatch_id != current.dispatch_id or report.attempt != job.attempt:
        return []
    if report.trainer_id != current.trainer_id:
        return []
    decide = _DECISIONS.get(type(report))
    return decide(job, report) if decide is not None else []


def _started(job: TrainingJob, report: TrainingStarted) -> list[DomainEvent]:
    if job.current_dispatch is not None and job.current_dispatch.started:
        return []  # a redelivered TrainingStarted
    started = JobStarted(
        job_id=job.job_id,
        attempt=job.attempt,
        dispatch_id=report.dispatch_id,
        trainer_id=report.trainer_id,
        device=report.device,
        start_epoch=report.start_epoch,
    )
    return [started]


def _checkpoint(job: TrainingJob, report: CheckpointSaved) -> list[DomainEvent]:
    recorded = job.checkpoint_epochs_done
    # The same checkpoint again, or one older than the last recorded, must not move the resume point back.
    if report.checkpoint_uri == job.checkpoint_uri or (
        recorded is not None and report.epochs_done < recorded
    ):
        return []
    checkpoint = JobCheckpointRecorded(
        job_id=job.job_id,
        attempt=job.attempt,
        dispatch_id=report.dispatch_id,
        epochs_done=report.epochs_done,
        checkpoint_uri=report.checkpoint_uri,
        sha256=report.sha256,
    )
    return [checkpoint]


def _completed(job: TrainingJob, report: TrainingCompleted) -> list[DomainEvent]:
    if job.kind != "training":
        return _wrong_kind(job, report)
    base = job.model_input.version_id if job.model_input is not None else None
    completed = JobCompleted(
        job_id=job.job_id,
        org_id=job.org_id,
        ai_module=job.ai_module,
        attempt=job.attempt,
        dataset_uri=job.dataset_uri,
        artifact_uri=report.artifact_uri,
        artifact_sha256=report.artifact_sha256,
        artifact_size_bytes=report.artifact_size_bytes,
        metrics=dict(report.metrics),
        epochs=report.epochs,
        name=job.name,
        description=job.description,
        family=job.family,
        created_by=job.created_by,
        base_version_id=base,
        dataset_manifest_sha256=report.dataset_manifest_sha256,
    )
    return [completed]


def _evaluated(job: TrainingJob, report: EvaluationCompleted) -> list[DomainEvent]:
    if job.kind != "evaluation" or job.model_input is None or job.evaluation_id is None:
        return _wrong_kind(job, report)
    evaluated = JobEvaluationCompleted(
        job_id=job.job_id,
        org_id=job.org_id,
        ai_module=job.ai_module,
        attempt=job.attempt,
        model_version_id=job.model_input.version_id,
        evaluation_id=job.evaluation_id,
        report=report.report,
    )
    return [evaluated]


def _wrong_kind(job: TrainingJob, report: TrainingReport) -> list[DomainEvent]:
    reason = (
        f"trainer {report.trainer_id} reported {report.type_name} for {job.kind} job {job.job_id}; "
        f"it does not run {job.kind} jobs (upgrade the trainer)"
    )
    return [JobFailed(job_id=job.job_id, attempt=job.attempt, reason=reason)]


def _failed(job: TrainingJob, report: TrainingFailed) -> list[DomainEvent]:
    return [JobFailed(job_id=job.job_id, attempt=job.attempt, reason=report.reason)]


def _paused(job: TrainingJob, report: TrainingPaused) -> list[DomainEvent]:
    if job.cancel_request is not None:
        # Cancel came after the pause request: the trainer has stopped, which is all a cancel needs.
        return [JobCancelled(job_id=job.job_id, attempt=job.attempt, reason=job.cancel_request)]
    reason = job.pause_request if job.pause_request is not None else "paused by the trainer"
    paused = JobPaused(
        job_id=job.job_id, attempt=job.attempt, checkpoint_uri=report.checkpoint_uri, reason=reason
    )
    return [paused]


def _cancelled(job: TrainingJob, report: TrainingCancelled) -> list[DomainEvent]:
    reason = job.cancel_request if job.cancel_request is not None else "cancelled by the trainer"
    return [JobCancelled(job_id=job.job_id, attempt=job.attempt, reason=reason)]


_DECISIONS: dict[type[TrainingReport], Callable[[TrainingJob, Any], list[DomainEvent]]] = {
    TrainingStarted: _started,
    CheckpointSaved: _checkpoint,
    TrainingCompleted: _completed,
    EvaluationCompleted: _evaluated,
    TrainingFailed: _failed,
    TrainingPaused: _paused,
    TrainingCancelled: _cancelled,
}
