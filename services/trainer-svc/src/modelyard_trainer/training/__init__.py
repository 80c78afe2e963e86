"""The training engine: `run_training(spec, observer, control)` and what it reads and writes.

Pure training code (no Kafka, gRPC or database): the worker runs it in a thread
and turns its reports and outcome into trainer events.
"""

from modelyard_trainer.training.artifacts import (
    ArtifactConfig,
    Predictions,
    load_artifact,
    predict,
    probe_input,
)
from modelyard_trainer.training.contracts import (
    Cancelled,
    CheckpointInfo,
    Completed,
    EpochResult,
    Outcome,
    Paused,
    Progress,
    StartInfo,
    TrainingObserver,
    TrainingSpec,
)
from modelyard_trainer.training.control import TrainingControl
from modelyard_trainer.training.durable_files import sha256_of
from modelyard_trainer.training.engine import run_training
from modelyard_trainer.training.errors import ArtifactError, TrainingDataError, TrainingError

__all__ = [
    "ArtifactConfig",
    "ArtifactError",
    "Cancelled",
    "CheckpointInfo",
    "Completed",
    "EpochResult",
    "Outcome",
    "Paused",
    "Predictions",
    "Progress",
    "StartInfo",
    "TrainingControl",
    "TrainingDataError",
    "TrainingError",
    "TrainingObserver",
    "TrainingSpec",
    "load_artifact",
    "predict",
    "probe_input",
    "run_training",
    "sha256_of",
]
