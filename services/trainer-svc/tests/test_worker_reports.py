"""The engine's callbacks and outcomes become trainer events, field for field."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from worker_samples import dispatch_of, envelope_of

from modelyard_events.envelope import Actor
from modelyard_events.schemas.hyperparameters import validate_hyperparameters
from modelyard_events.schemas.training import (
    CheckpointSaved,
    EpochCompleted,
    TrainingCancelled,
    TrainingCompleted,
    TrainingFailed,
    TrainingPaused,
    TrainingProgressed,
    TrainingStarted,
)
from modelyard_trainer.reports import (
    RunIdentity,
    epoch_reports,
    failure_report,
    outcome_report,
    progress_report,
    report_context,
    started_report,
)
from modelyard_trainer.training import (
    Cancelled,
    CheckpointInfo,
    Completed,
    EpochResult,
    Paused,
    Progress,
    StartInfo,
    TrainingDataError,
    TrainingError,
)

RUN = RunIdentity(job_id="job-1", attempt=2, dispatch_id="dsp-1", trainer_id="trainer-a")
IDENTITY = {"job_id": "job-1", "attempt": 2, "dispatch_id": "dsp-1", "trainer_id": "trainer-a"}
CHECKPOINT = CheckpointInfo(Path("/runs/job-1/attempt-2/checkpoints/e1.pt"), "ab" * 32, 1234, 1, 0)


def test_started_report_carries_the_run_and_the_start_information() -> None:
    info = StartInfo("cuda:0", True, 2, 5, 10, 20, 800, 200)

    report = started_report(RUN, info)

    assert report == TrainingStarted(
        **IDENTITY,
        device="cuda:0",
        amp=True,
        start_epoch=2,
        start_step=5,
        epochs_total=10,
        steps_per_epoch=20,
        train_samples=800,
        val_samples=200,
    )


def test_progress_report_keeps_the_measured_values() -> None:
    report = progress_report(RUN, Progress(3, 7, 20, 0.5, 1500.0, None))

    assert report == TrainingProgressed(
        **IDENTITY, epoch=3, step=7, steps_total=20, loss=0.5, samples_per_s=1500.0, eta_s=None
    )


def test_an_epoch_is_reported_then_its_checkpoint_as_a_file_uri() -> None:
    result = EpochResult(1, 0.9, 0.8, 0.7, {"val_accuracy": 0.7}, 900.0, 2.5, None, None)

    epoch, saved = epoch_reports(RUN, result, CHECKPOINT)

    assert isinstance(epoch, EpochCompleted)
    assert (epoch.epoch, epoch.val_accuracy, epoch.metrics) == (1, 0.7, {"val_accuracy": 0.7})
    assert saved == CheckpointSaved(
        **IDENTITY,
        epochs_done=1,
        step=0,
        checkpoint_uri="file:///runs/job-1/attempt-2/checkpoints/e1.pt",
        sha256="ab" * 32,
        size_bytes=1234,
    )


def test_completed_run_reports_the_artifact_file_uri_hash_size_and_metrics() -> None:
    outcome = Completed(Path("/runs/job-1/attempt-2/model.pt"), "cd" * 32, 4321, {"val_loss": 0.1}, 3)

    assert outcome_report(RUN, outcome) == TrainingCompleted(
        **IDENTITY,
        artifact_uri="file:///runs/job-1/attempt-2/model.pt",
        artifact_sha256="cd" * 32,
        artifact_size_bytes=4321,
        metrics={"val_loss": 0.1},
        epochs=3,
    )


def test_paused_run_reports_the_checkpoint_to_resume_from() -> None:
    assert outcome_report(RUN, Paused(CHECKPOINT)) == TrainingPaused(
        **IDENTITY, checkpoint_uri=CHECKPOINT.path.as_uri(), epochs_done=1, step=0
    )


def test_cancelled_run_reports_training_cancelled() -> None:
    assert outcome_report(RUN, Cancelled()) == TrainingCancelled(**IDENTITY)


def _hyperparameter_error() -> Exception:
    try:
        validate_hyperparameters("image_classifier", {"epochs": 0})
    except ValueError as error:
        return error
    raise AssertionError("epochs=0 was accepted")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (TrainingDataError("digits.npz: no `labels` array"), "digits.npz: no `labels` array"),
        (TrainingError("CUDA out of memory"), "CUDA out of memory"),
        (_hyperparameter_error(), "hyperparameters refused by the trainer: hyperparameters.epochs"),
        (ValueError("checkpoint is not a file URI"), "cannot start the run: checkpoint is not a file URI"),
        (RuntimeError("boom"), "unexpected trainer error (RuntimeError): boom"),
    ],
)
def test_any_failure_becomes_training_failed_with_a_reason_for_a_person(
    error: Exception, reason: str
) -> None:
    report = failure_report(RUN, error)

    assert isinstance(report, TrainingFailed)
    assert report.reason.startswith(reason)
    assert report.model_dump(include=set(IDENTITY)) == IDENTITY


def test_reports_are_caused_by_the_dispatch_and_keep_its_organization_and_correlation() -> None:
    envelope = envelope_of(dispatch_of(), org_id="org-7", correlation_id=str(uuid.uuid4()))

    context = report_context("trainer-a", envelope)

    assert context.actor == Actor(subject="trainer-a", roles=("trainer",))
    assert (context.org_id, context.correlation_id) == ("org-7", envelope.correlation_id)
    assert context.causation_id == str(envelope.event_id)
