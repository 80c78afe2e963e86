"""Engine callbacks and outcomes, translated into trainer events (`modelyard_events.schemas.training`).

Pure functions: no I/O, no clock. Every report names the run it belongs to
(job, attempt, dispatch, trainer), so job-svc can tell current from stale dispatches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from modelyard_events.envelope import Actor, CommandContext, EventEnvelope
from modelyard_events.schemas.bounds import truncate_text
from modelyard_events.schemas.hyperparameters import HyperparameterError
from modelyard_events.schemas.registry import (
    CONFUSION_MAX_CLASSES,
    MAX_CLASS_NAME_CHARS,
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
    TrainingReport,
    TrainingStarted,
)
from modelyard_trainer.training import (
    Cancelled,
    CheckpointInfo,
    ClassMetrics,
    Completed,
    EpochResult,
    ModelEvaluation,
    Outcome,
    Paused,
    Progress,
    StartInfo,
    TrainingError,
)

TRAINER_ROLE = "trainer"


@dataclass(frozen=True)
class RunIdentity:
    """Which run a report is about: the fields every `TrainingReport` carries."""

    job_id: str
    attempt: int
    dispatch_id: str
    trainer_id: str

    def fields(self) -> dict[str, Any]:
        """The identity as event fields."""
        return asdict(self)


def report_context(trainer_id: str, dispatch: EventEnvelope) -> CommandContext:
    """The context of a run's reports: the trainer acts, caused by the `JobDispatched` envelope."""
    return CommandContext(
        actor=Actor(subject=trainer_id, roles=(TRAINER_ROLE,)),
        org_id=dispatch.org_id,
        correlation_id=dispatch.correlation_id,
        causation_id=str(dispatch.event_id),
    )


def started_report(run: RunIdentity, info: StartInfo) -> TrainingStarted:
    """`TrainingStarted` from the engine's start information."""
    return TrainingStarted(**run.fields(), **asdict(info))


def progress_report(run: RunIdentity, progress: Progress) -> TrainingProgressed:
    """`TrainingProgressed` from a throttled progress report."""
    return TrainingProgressed(**run.fields(), **asdict(progress))


def epoch_reports(run: RunIdentity, result: EpochResult, checkpoint: CheckpointInfo) -> list[TrainingReport]:
    """`EpochCompleted` then `CheckpointSaved`: an epoch ended and its checkpoint is on disk."""
    saved = CheckpointSaved(
        **run.fields(),
        epochs_done=checkpoint.epochs_done,
        step=checkpoint.step,
        checkpoint_uri=checkpoint.path.as_uri(),
        sha256=checkpoint.sha256,
        size_bytes=checkpoint.size_bytes,
    )
    return [EpochCompleted(**run.fields(), **asdict(result)), saved]


def outcome_report(run: RunIdentity, outcome: Outcome) -> TrainingReport:
    """The last report of a run that returned: completed, paused (with its checkpoint) or cancelled."""
    if isinstance(outcome, Completed):
        return TrainingCompleted(
            **run.fields(),
            artifact_uri=outcome.artifact_path.as_uri(),
            artifact_sha256=outcome.sha256,
            artifact_size_bytes=outcome.size_bytes,
            metrics=outcome.metrics,
            epochs=outcome.epochs,
            dataset_manifest_sha256=outcome.dataset_manifest_sha256,
        )
    if isinstance(outcome, Paused):
        checkpoint = outcome.checkpoint
        return TrainingPaused(
            **run.fields(),
            checkpoint_uri=checkpoint.path.as_uri(),
            epochs_done=checkpoint.epochs_done,
            step=checkpoint.step,
        )
    if isinstance(outcome, Cancelled):
        return TrainingCancelled(**run.fields())
    raise TypeError(f"not a training outcome: {outcome!r}")


def evaluation_started_report(run: RunIdentity, device: str) -> TrainingStarted:
    """`TrainingStarted` of an evaluation run: no epochs, no steps, nothing trained (job-svc moves the
    job to running on it, as for a training run)."""
    return TrainingStarted(
        **run.fields(),
        device=device,
        amp=False,
        start_epoch=1,
        start_step=0,
        epochs_total=0,
        steps_per_epoch=0,
        train_samples=0,
        val_samples=0,
    )


def evaluated_report(
    run: RunIdentity, evaluation: ModelEvaluation, dataset_uri: str, split: str
) -> EvaluationCompleted:
    """`EvaluationCompleted` with the engine's figures (see `evaluation_report`)."""
    return EvaluationCompleted(**run.fields(), report=evaluation_report(evaluation, dataset_uri, split))


def evaluation_report(evaluation: ModelEvaluation, dataset_uri: str, split: str) -> EvaluationReport:
    """The engine's evaluation as the registry records it: every class's scores up to PER_CLASS_MAX
    (above it, the classes with the lowest recall: `weakest_classes`), how many classes there are,
    and the confusion matrix only for at most CONFUSION_MAX_CLASSES classes."""
    classes = evaluation.per_class
    return EvaluationReport(
        dataset_uri=dataset_uri,
        split=split,
        samples=evaluation.samples,
        device=evaluation.device,
        accuracy=evaluation.accuracy,
        precision=evaluation.precision_macro,
        recall=evaluation.recall_macro,
        f1=evaluation.f1_macro,
        latency_p50_ms=evaluation.latency_p50_ms,
        latency_p95_ms=evaluation.latency_p95_ms,
        per_class=[_class_scores(metrics) for metrics in weakest_classes(classes, PER_CLASS_MAX)],
        classes_total=len(classes),
        confusion=evaluation.confusion if len(classes) <= CONFUSION_MAX_CLASSES else None,
    )


def weakest_classes(per_class: Sequence[ClassMetrics], limit: int) -> list[ClassMetrics]:
    """Every class when there are at most `limit`; else the `limit` with the lowest recall (earlier
    classes first among equals), so a gate on the worst class still reads it. Class order kept."""
    if len(per_class) <= limit:
        return list(per_class)
    weakest = sorted(range(len(per_class)), key=lambda index: (per_class[index].recall, index))[:limit]
    return [per_class[index] for index in sorted(weakest)]


def _class_scores(metrics: ClassMetrics) -> ClassScores:
    return ClassScores(
        label=metrics.label[:MAX_CLASS_NAME_CHARS],
        precision=metrics.precision,
        recall=metrics.recall,
        f1=metrics.f1,
        support=metrics.support,
    )


def failure_report(run: RunIdentity, error: BaseException, full_text_at: str | None = None) -> TrainingFailed:
    """`TrainingFailed` whose reason a person can act on, whatever stopped the run.

    A reason longer than the event holds is cut with a marker naming `full_text_at`, where the
    caller kept the whole text (the worker's `keep_failure_text`).
    """
    return TrainingFailed(
        **run.fields(), reason=truncate_text(failure_reason(error), full_text_at=full_text_at)
    )


def failure_reason(error: BaseException) -> str:
    """Engine and data errors speak for themselves; anything else is named as unexpected."""
    if isinstance(error, TrainingError):
        return str(error)
    if isinstance(error, HyperparameterError):
        return f"hyperparameters refused by the trainer: {error}"
    if isinstance(error, ValueError):
        return f"cannot start the run: {error}"
    return f"unexpected trainer error ({type(error).__name__}): {error}"
