"""Engine callbacks and outcomes, translated into trainer events (`modelyard_events.schemas.training`).

Pure functions: no I/O, no clock. Every report names the run it belongs to
(job, attempt, dispatch, trainer), so job-svc can tell current from stale dispatches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from modelyard_events.envelope import Actor, CommandContext, EventEnvelope
from modelyard_events.schemas.bounds import truncate_text
from modelyard_events.schemas.hyperparameters import HyperparameterError
from modelyard_events.schemas.training import (
    CheckpointSaved,
    EpochCompleted,
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
    Completed,
    EpochResult,
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
