"""Jobs in every state and trainer reports for them, built through the aggregate's own commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.jobs import ModelInput
from modelyard_events.schemas.registry import ClassScores, EvaluationReport, ModelEvaluationRequested
from modelyard_events.schemas.training import (
    CheckpointSaved,
    EpochCompleted,
    EvaluationCompleted,
    TrainingCancelled,
    TrainingCompleted,
    TrainingFailed,
    TrainingPaused,
    TrainingProgressed,
    TrainingStarted,
)
from modelyard_job.domain import JobState, TrainingJob
from modelyard_job.domain.job_kinds import EvaluationRun

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
LEASE_TTL = timedelta(seconds=30)


def create_request(**overrides: Any) -> dict[str, Any]:
    """A valid CreateJob request; override any field."""
    request: dict[str, Any] = {
        "job_id": "j-12",
        "org_id": "org-acme",
        "name": "digits baseline",
        "ai_module": "digit-reader",
        "family": "image_classifier",
        "dataset_uri": "dataset://digits/versions/1",
        "hyperparameters": {"epochs": 3, "lr": 0.01},
        "priority": 50,
        "created_by": "alice",
    }
    return request | overrides


def model_input(**overrides: Any) -> ModelInput:
    """A registered version of digit-reader, as a job's model input."""
    fields: dict[str, Any] = {
        "version_id": "mv-7",
        "ai_module": "digit-reader",
        "semantic_version": "1.2.0",
        "artifact_sha256": "12" * 32,
        "artifact_size_bytes": 4096,
    }
    return ModelInput(**(fields | overrides))


def evaluation_requested(**overrides: Any) -> ModelEvaluationRequested:
    """The registry asking for an evaluation run of mv-7 on the val split."""
    fields: dict[str, Any] = {
        "version_id": "mv-7",
        "org_id": "org-acme",
        "ai_module": "digit-reader",
        "semantic_version": "1.2.0",
        "family": "image_classifier",
        "artifact_sha256": "12" * 32,
        "artifact_size_bytes": 4096,
        "evaluation_id": "ev-1",
        "job_id": "j-12",
        "dataset_uri": "dataset://digits/1",
        "split": "val",
        "requested_by": "bob",
    }
    return ModelEvaluationRequested(**(fields | overrides))


def evaluation_run(priority: int = 50, **overrides: Any) -> EvaluationRun:
    """The evaluation run of `evaluation_requested(**overrides)`."""
    return EvaluationRun.requested(evaluation_requested(**overrides), priority)


def running_evaluation(dispatch_id: str = "d-1", trainer_id: str = "t-1") -> TrainingJob:
    """An evaluation job whose trainer reported TrainingStarted."""
    job = TrainingJob.rebuild("j-12", TrainingJob.create_evaluation(evaluation_run()))
    job = decide(
        job, job.dispatch(trainer_id=trainer_id, dispatch_id=dispatch_id, now=NOW, lease_ttl=LEASE_TTL)
    )
    return decide(job, job.on_training_report(started(job)))


def decide(job: TrainingJob, events: list[DomainEvent]) -> TrainingJob:
    """The job after the events a command returned (what the handler appends)."""
    return job.apply_all(events)


def pending_job(**overrides: Any) -> TrainingJob:
    """A job with only JobCreated recorded."""
    request = create_request(**overrides)
    created = TrainingJob.create(**request)[0]
    return TrainingJob.rebuild(request["job_id"], [created])


def queued_job(**overrides: Any) -> TrainingJob:
    """A freshly created job, waiting in the queue."""
    request = create_request(**overrides)
    return TrainingJob.rebuild(request["job_id"], TrainingJob.create(**request))


def dispatched_job(dispatch_id: str = "d-1", trainer_id: str = "t-1", **overrides: Any) -> TrainingJob:
    """A job leased to a trainer that has not reported it started."""
    job = queued_job(**overrides)
    return decide(
        job, job.dispatch(trainer_id=trainer_id, dispatch_id=dispatch_id, now=NOW, lease_ttl=LEASE_TTL)
    )


def running_job(dispatch_id: str = "d-1", trainer_id: str = "t-1", **overrides: Any) -> TrainingJob:
    """A job whose trainer reported TrainingStarted."""
    job = dispatched_job(dispatch_id, trainer_id, **overrides)
    return decide(job, job.on_training_report(started(job)))


def with_checkpoint(
    job: TrainingJob, uri: str = "file:///ckpt/j-12-e2.pt", epochs_done: int = 2
) -> TrainingJob:
    """A running job after its trainer reported a checkpoint."""
    return decide(job, job.on_training_report(checkpoint_saved(job, uri, epochs_done)))


def paused_job(checkpoint_uri: str = "file:///ckpt/j-12-e2.pt") -> TrainingJob:
    """A job paused while running, after its trainer saved `checkpoint_uri`."""
    job = with_checkpoint(running_job(), checkpoint_uri)
    job = decide(job, job.pause("make room"))
    return decide(job, job.on_training_report(training_paused(job, checkpoint_uri)))


def job_in(state: JobState) -> TrainingJob:
    """A job in `state`, reached the way production reaches it."""
    if state is JobState.PENDING:
        return pending_job()
    if state is JobState.QUEUED:
        return queued_job()
    if state is JobState.RUNNING:
        return running_job()
    if state is JobState.PAUSED:
        return paused_job()
    job = running_job()
    report = {
        JobState.COMPLETED: training_completed,
        JobState.FAILED: training_failed,
        JobState.CANCELLED: training_cancelled,
    }[state](job)
    if state is JobState.CANCELLED:
        job = decide(job, job.cancel("not needed"))
    return decide(job, job.on_training_report(report))


# ---- trainer reports, for the job's current dispatch unless told otherwise ----------------------------


def _report_fields(job: TrainingJob, dispatch_id: str | None, attempt: int | None) -> dict[str, Any]:
    current = job.current_dispatch
    return {
        "job_id": job.job_id,
        "attempt": attempt if attempt is not None else job.attempt,
        "dispatch_id": dispatch_id
        if dispatch_id is not None
        else (current.dispatch_id if current else "d-0"),
        "trainer_id": current.trainer_id if current else "t-1",
    }


def started(job: TrainingJob, dispatch_id: str | None = None, attempt: int | None = None) -> TrainingStarted:
    """TrainingStarted on CPU from epoch 1."""
    return TrainingStarted(
        **_report_fields(job, dispatch_id, attempt),
        device="cpu",
        amp=False,
        start_epoch=1,
        start_step=0,
        epochs_total=3,
        steps_per_epoch=10,
        train_samples=1000,
        val_samples=200,
    )


def checkpoint_saved(
    job: TrainingJob, uri: str, epochs_done: int, dispatch_id: str | None = None
) -> CheckpointSaved:
    """CheckpointSaved after `epochs_done` epochs."""
    return CheckpointSaved(
        **_report_fields(job, dispatch_id, None),
        epochs_done=epochs_done,
        step=0,
        checkpoint_uri=uri,
        sha256="ab" * 32,
        size_bytes=1024,
    )


def training_completed(job: TrainingJob, dispatch_id: str | None = None) -> TrainingCompleted:
    """TrainingCompleted with an artifact and metrics."""
    return TrainingCompleted(
        **_report_fields(job, dispatch_id, None),
        artifact_uri="file:///artifacts/j-12.pt",
        artifact_sha256="cd" * 32,
        artifact_size_bytes=2048,
        metrics={"val_accuracy": 0.97},
        epochs=3,
        dataset_manifest_sha256="ef" * 32,
    )


def training_failed(job: TrainingJob, dispatch_id: str | None = None) -> TrainingFailed:
    """TrainingFailed: out of memory."""
    return TrainingFailed(**_report_fields(job, dispatch_id, None), reason="CUDA out of memory")


def training_paused(job: TrainingJob, uri: str, dispatch_id: str | None = None) -> TrainingPaused:
    """TrainingPaused at `uri`."""
    return TrainingPaused(**_report_fields(job, dispatch_id, None), checkpoint_uri=uri, epochs_done=2, step=0)


def training_cancelled(job: TrainingJob, dispatch_id: str | None = None) -> TrainingCancelled:
    """TrainingCancelled."""
    return TrainingCancelled(**_report_fields(job, dispatch_id, None))


def progressed(job: TrainingJob) -> TrainingProgressed:
    """Throttled progress."""
    return TrainingProgressed(
        **_report_fields(job, None, None),
        epoch=1,
        step=5,
        steps_total=10,
        loss=0.5,
        samples_per_s=900.0,
        eta_s=12.0,
    )


def epoch_completed(job: TrainingJob) -> EpochCompleted:
    """An epoch's validation."""
    return EpochCompleted(
        **_report_fields(job, None, None),
        epoch=1,
        train_loss=0.4,
        val_loss=0.5,
        val_accuracy=0.9,
        metrics={"f1": 0.9},
        samples_per_s=900.0,
        duration_s=1.5,
        gpu_utilization_pct=None,
        gpu_memory_bytes=None,
    )


def evaluation_report() -> EvaluationReport:
    """What an evaluation run measured on two classes."""
    scores = [
        ClassScores(label="0", precision=0.9, recall=0.95, f1=0.92, support=20),
        ClassScores(label="1", precision=0.94, recall=0.9, f1=0.92, support=20),
    ]
    return EvaluationReport(
        dataset_uri="dataset://digits/1",
        split="val",
        samples=40,
        device="cpu",
        accuracy=0.925,
        precision=0.92,
        recall=0.925,
        f1=0.92,
        latency_p50_ms=0.4,
        latency_p95_ms=0.9,
        per_class=scores,
        classes_total=2,
        confusion=[[19, 1], [2, 18]],
    )


def evaluation_completed(job: TrainingJob, dispatch_id: str | None = None) -> EvaluationCompleted:
    """EvaluationCompleted with `evaluation_report()`."""
    return EvaluationCompleted(**_report_fields(job, dispatch_id, None), report=evaluation_report())
