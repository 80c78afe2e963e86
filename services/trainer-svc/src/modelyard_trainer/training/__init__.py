"""The training engine: `run_training(spec, observer, control)` and what it reads and writes, and
`evaluate_model` / `evaluate_regressor` to test a trained artifact on a dataset split.

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
from modelyard_trainer.training.classification_metrics import ClassMetrics
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
from modelyard_trainer.training.errors import (
    ArtifactError,
    IncompatibleBaseError,
    TrainingDataError,
    TrainingError,
)
from modelyard_trainer.training.fine_tuning import check_base_compatible
from modelyard_trainer.training.model_evaluation import (
    ModelEvaluation,
    RegressionEvaluation,
    evaluate_model,
    evaluate_regressor,
)

__all__ = [
    "ArtifactConfig",
    "ArtifactError",
    "Cancelled",
    "CheckpointInfo",
    "ClassMetrics",
    "Completed",
    "EpochResult",
    "IncompatibleBaseError",
    "ModelEvaluation",
    "Outcome",
    "Paused",
    "Predictions",
    "Progress",
    "RegressionEvaluation",
    "StartInfo",
    "TrainingControl",
    "TrainingDataError",
    "TrainingError",
    "TrainingObserver",
    "TrainingSpec",
    "check_base_compatible",
    "evaluate_model",
    "evaluate_regressor",
    "load_artifact",
    "predict",
    "probe_input",
    "run_training",
    "sha256_of",
]
