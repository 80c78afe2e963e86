"""What the engine takes (a spec, an observer) and what it gives back (an outcome).

These are plain frozen dataclasses so the worker can translate them into the
trainer events of `modelyard_events.schemas.training` field by field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelyard_events.schemas.hyperparameters import CommonHyperparameters
from modelyard_events.schemas.training import RunPhase


@dataclass(frozen=True)
class TrainingSpec:
    """One run of one job attempt.

    `hyperparameters` is the validated model from `validate_hyperparameters(family, …)`.
    Checkpoints go to `workdir/checkpoints/`, the artifact to `workdir/model.pt`.
    `device` None means CUDA when available, else CPU. `memory_budget_bytes` (None: unchecked) is
    what loading a dataset version may take; a version that needs more fails before it is decoded.
    `base_artifact` (fine-tuning) starts the model from that artifact's weights instead of a fresh
    init, after checking it fits (`check_base_compatible`); a `resume_from` checkpoint wins over it.
    """

    job_id: str
    attempt: int
    family: str
    dataset_uri: str
    hyperparameters: CommonHyperparameters
    workdir: Path
    resume_from: Path | None = None
    device: str | None = None
    progress_interval_s: float = 1.0
    memory_budget_bytes: int | None = None
    base_artifact: Path | None = None


@dataclass(frozen=True)
class StartInfo:
    """The data is loaded, the model built (and restored); the first step is next."""

    device: str
    amp: bool
    start_epoch: int  # 1-based; > 1 only when resumed
    start_step: int  # steps of start_epoch already done by an earlier run
    epochs_total: int
    steps_per_epoch: int
    train_samples: int
    val_samples: int


@dataclass(frozen=True)
class Progress:
    """A throttled report inside an epoch; `loss` and `samples_per_s` cover the steps since the last one."""

    epoch: int  # 1-based
    step: int  # steps of this epoch done, 1 … steps_total
    steps_total: int
    loss: float
    samples_per_s: float
    eta_s: float | None  # remaining training samples / samples_per_s; validation not included


@dataclass(frozen=True)
class EpochResult:
    """An epoch ended and was validated; every value is measured (GPU fields None off NVIDIA)."""

    epoch: int  # 1-based
    train_loss: float
    val_loss: float
    val_accuracy: float | None  # None for regressors
    metrics: dict[str, float]
    samples_per_s: float  # training samples of this epoch / training time, validation excluded
    duration_s: float  # training and validation of this epoch in this run
    gpu_utilization_pct: float | None
    gpu_memory_bytes: int | None


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint on disk: `epochs_done` whole epochs plus `step` steps into the next."""

    path: Path
    sha256: str
    size_bytes: int
    epochs_done: int
    step: int


@dataclass(frozen=True)
class Completed:
    """Every epoch ran; the artifact is written and hashed. `dataset_manifest_sha256` names the
    published dataset version trained on (None for a plain file)."""

    artifact_path: Path
    sha256: str
    size_bytes: int
    metrics: dict[str, float]
    epochs: int
    dataset_manifest_sha256: str | None = None


@dataclass(frozen=True)
class Paused:
    """Stopped before a step on request, after saving `checkpoint` to resume from."""

    checkpoint: CheckpointInfo


@dataclass(frozen=True)
class Cancelled:
    """Stopped before a step on request; nothing was saved."""


Outcome = Completed | Paused | Cancelled


class TrainingObserver(Protocol):
    """Receives reports from the training thread; must return quickly (it blocks the next step)."""

    def phase(self, phase: RunPhase, message: str) -> None:
        """Called as the run moves through its phases before `started` (loading data, building the model)."""

    def started(self, info: StartInfo) -> None:
        """Called once, before the first step."""

    def progressed(self, progress: Progress) -> None:
        """Called after a step, at most once per `progress_interval_s`."""

    def epoch_completed(self, result: EpochResult, checkpoint: CheckpointInfo) -> None:
        """Called after each epoch's validation and checkpoint."""
