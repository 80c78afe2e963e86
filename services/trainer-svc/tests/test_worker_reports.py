"""The engine's callbacks and outcomes become trainer events, field for field."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from worker_samples import dispatch_of, envelope_of

from modelyard_events.envelope import Actor
from modelyard_events.schemas.hyperparameters import validate_hyperparameters
from modelyard_events.schemas.registry import (
    CONFUSION_MAX_CLASSES,
    PER_CLASS_MAX,
    ClassScores,
    EvaluationReport,
)
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
from modelyard_trainer.reports import (
    RunIdentity,
    epoch_reports,
    evaluated_report,
    evaluation_report,
    evaluation_started_report,
    failure_report,
    outcome_report,
    progress_report,
    report_context,
    started_report,
    weakest_classes,
)
from modelyard_trainer.training import (
    Cancelled,
    CheckpointInfo,
    ClassMetrics,
    Completed,
    EpochResult,
    ModelEvaluation,
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


def test_a_run_on_a_dataset_version_reports_the_versions_manifest_hash() -> None:
    outcome = Completed(Path("/runs/model.pt"), "cd" * 32, 4321, {}, 3, dataset_manifest_sha256="ef" * 32)

    report = outcome_report(RUN, outcome)

    assert isinstance(report, TrainingCompleted)
    assert report.dataset_manifest_sha256 == "ef" * 32


def evaluation_of(recalls: list[float]) -> ModelEvaluation:
    """An evaluation of one class per recall, class i labelled `c<i>`, with 10 samples each."""
    per_class = [ClassMetrics(f"c{i}", 0.5, recall, 0.5, 10) for i, recall in enumerate(recalls)]
    size = len(recalls)
    confusion = [[10 if row == column else 0 for column in range(size)] for row in range(size)]
    return ModelEvaluation(10 * size, 0.9, 0.8, 0.7, 0.6, per_class, confusion, 1.5, 2.5, "cuda:0")


def test_an_evaluation_becomes_the_registrys_report_field_for_field() -> None:
    evaluation = evaluation_of([1.0, 0.5])

    report = evaluated_report(RUN, evaluation, "dataset://ds-1/2", "test")

    assert report == EvaluationCompleted(
        **IDENTITY,
        report=EvaluationReport(
            dataset_uri="dataset://ds-1/2",
            split="test",
            samples=20,
            device="cuda:0",
            accuracy=0.9,
            precision=0.8,
            recall=0.7,
            f1=0.6,
            latency_p50_ms=1.5,
            latency_p95_ms=2.5,
            per_class=[
                ClassScores(label="c0", precision=0.5, recall=1.0, f1=0.5, support=10),
                ClassScores(label="c1", precision=0.5, recall=0.5, f1=0.5, support=10),
            ],
            classes_total=2,
            confusion=[[10, 0], [0, 10]],
        ),
    )


def test_above_the_per_class_limit_the_classes_with_the_lowest_recall_are_kept_in_class_order() -> None:
    recalls = [1.0 - (i % 7) / 10 for i in range(PER_CLASS_MAX + 44)]  # 300 classes, recall 0.4 … 1.0

    report = evaluation_report(evaluation_of(recalls), "dataset://ds-1/2", "val")

    kept = [int(c.label[1:]) for c in report.per_class]
    assert len(kept) == PER_CLASS_MAX
    assert kept == sorted(kept)
    dropped = set(range(len(recalls))) - set(kept)
    assert max(recalls[i] for i in kept) <= min(recalls[i] for i in dropped)
    assert min(c.recall for c in report.per_class) == min(recalls)  # a gate on the worst class still reads it
    assert report.classes_total == len(recalls)
    assert report.confusion is None


@pytest.mark.parametrize(
    ("classes", "carried"), [(CONFUSION_MAX_CLASSES, True), (CONFUSION_MAX_CLASSES + 1, False)]
)
def test_the_confusion_matrix_is_carried_only_for_few_classes(classes: int, carried: bool) -> None:
    report = evaluation_report(evaluation_of([0.9] * classes), "dataset://ds-1/2", "val")

    assert (report.confusion is not None) == carried
    assert len(report.per_class) == report.classes_total == classes


def test_weakest_classes_keeps_every_class_within_the_limit_and_breaks_ties_by_class_order() -> None:
    per_class = evaluation_of([0.5, 0.5, 0.5, 0.2]).per_class

    assert weakest_classes(per_class, 4) == per_class
    assert [c.label for c in weakest_classes(per_class, 2)] == ["c0", "c3"]


def test_an_evaluation_run_starts_with_nothing_to_train() -> None:
    report = evaluation_started_report(RUN, "cpu")

    assert (report.device, report.start_epoch, report.epochs_total, report.train_samples) == ("cpu", 1, 0, 0)


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
