"""Events of trainer-svc: what a trainer observed while running one dispatch.

Stream per dispatch (stream_type "training_run", stream_id = dispatch_id), so
two trainers that both believe they hold a job (one presumed dead) never write
to the same stream, and job-svc ignores reports whose dispatch is no longer
the job's current lease.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from modelyard_events.envelope import DomainEvent
from modelyard_events.registry import EventRegistry
from modelyard_events.schemas.bounds import Detail, Identifier, Name, Reason, Sha256Hex, Uri
from modelyard_events.schemas.jobs import MAX_METRICS
from modelyard_events.schemas.registry import EvaluationReport

RUN_STREAM = "training_run"


class TrainingReport(DomainEvent):
    """Fields every trainer report carries."""

    job_id: Identifier
    attempt: int = Field(ge=1)
    dispatch_id: Identifier
    trainer_id: Identifier


class TrainingStarted(TrainingReport):
    """The data is loaded and the first step is about to run."""

    type_name = "TrainingStarted"
    device: Name
    amp: bool
    start_epoch: int = Field(ge=1, description="1 unless resumed from a checkpoint")
    start_step: int = Field(ge=0, description="steps already done in start_epoch")
    epochs_total: int
    steps_per_epoch: int
    train_samples: int
    val_samples: int


RunPhase = Literal["fetching", "loading_data", "building_model"]
"""What a run does before its first step: fetching its dataset (and model) version, loading the data
into memory, building the model (or restoring a checkpoint or the base version's weights)."""


class TrainingPhaseChanged(TrainingReport):
    """A run moved to another phase before its first step; `message` says what it does, for a human."""

    type_name = "TrainingPhaseChanged"
    phase: RunPhase
    message: Detail


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
MAX_LOG_LINES_PER_EVENT = 20
"""Lines of one `TrainingLogged` (20 lines of the longest text stay far below an event's size bound)."""


def _without_nul(text: str) -> str:
    # PostgreSQL text cannot hold U+0000 (a projection would refuse the whole event), and no reader
    # needs it: it is shown as the replacement character.
    return text.replace("\x00", "\ufffd")


class LogLine(BaseModel):
    """One line the trainer logged while running a dispatch (a traceback is one line's text)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: AwareDatetime  # a time zone is required: a replay must read the same instant
    level: LogLevel
    logger: Annotated[Name, AfterValidator(_without_nul)]
    message: Annotated[Reason, AfterValidator(_without_nul)]


class TrainingLogged(TrainingReport):
    """Lines the trainer logged for this run, in order; `dropped` lines before them were not kept
    (a run keeps a bounded number of lines per attempt)."""

    type_name = "TrainingLogged"
    lines: list[LogLine] = Field(min_length=1, max_length=MAX_LOG_LINES_PER_EVENT)
    dropped: int = Field(default=0, ge=0)


class TrainingProgressed(TrainingReport):
    """Throttled progress inside an epoch (at most one per `progress_interval_s`)."""

    type_name = "TrainingProgressed"
    epoch: int
    step: int
    steps_total: int
    loss: float
    samples_per_s: float
    eta_s: float | None


class EpochCompleted(TrainingReport):
    """An epoch ended and was validated; measured values only (GPU fields null without NVIDIA)."""

    type_name = "EpochCompleted"
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float | None
    metrics: dict[Name, float] = Field(max_length=MAX_METRICS)
    samples_per_s: float
    duration_s: float
    gpu_utilization_pct: float | None
    gpu_memory_bytes: int | None


class CheckpointSaved(TrainingReport):
    """Model, optimizer and position saved: `epochs_done` full epochs plus `step` into the next."""

    type_name = "CheckpointSaved"
    epochs_done: int
    step: int
    checkpoint_uri: Uri
    sha256: Sha256Hex
    size_bytes: int


class TrainingCompleted(TrainingReport):
    """The artifact (weights + config + metrics) is written; its SHA-256 covers the file."""

    type_name = "TrainingCompleted"
    artifact_uri: Uri
    artifact_sha256: Sha256Hex
    artifact_size_bytes: int
    metrics: dict[Name, float] = Field(max_length=MAX_METRICS)
    epochs: int
    dataset_manifest_sha256: Sha256Hex | None = None


class EvaluationCompleted(TrainingReport):
    """An evaluation dispatch measured its model version on the held-out split (no artifact)."""

    type_name = "EvaluationCompleted"
    report: EvaluationReport


class TrainingFailed(TrainingReport):
    """Training stopped on an error (bad data, out of memory …); `reason` is for a human."""

    type_name = "TrainingFailed"
    reason: Reason


class TrainingPaused(TrainingReport):
    """Stopped at a step boundary on request, after saving `checkpoint_uri`."""

    type_name = "TrainingPaused"
    checkpoint_uri: Uri
    epochs_done: int
    step: int


class TrainingCancelled(TrainingReport):
    """Stopped at a step boundary on request; nothing more will be reported for this dispatch."""

    type_name = "TrainingCancelled"


TRAINER_EVENTS = EventRegistry(
    [
        TrainingPhaseChanged,
        TrainingLogged,
        TrainingStarted,
        TrainingProgressed,
        EpochCompleted,
        CheckpointSaved,
        TrainingCompleted,
        EvaluationCompleted,
        TrainingFailed,
        TrainingPaused,
        TrainingCancelled,
    ]
)
