"""Writing the model artifact (`model.pt`); reading and running it lives in modelyard_inference.artifact
(edges load artifacts without the trainer) and is re-exported here for the trainer's call sites."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from modelyard_inference.artifact import ARTIFACT_FORMAT as ARTIFACT_FORMAT
from modelyard_inference.artifact import ARTIFACT_NAME as ARTIFACT_NAME
from modelyard_inference.artifact import ArtifactConfig as ArtifactConfig
from modelyard_inference.artifact import Predictions as Predictions
from modelyard_inference.artifact import artifact_payload
from modelyard_inference.artifact import load_artifact as load_artifact
from modelyard_inference.artifact import predict as predict
from modelyard_inference.artifact import probe_input as probe_input
from modelyard_trainer.training.data import TrainingData
from modelyard_trainer.training.durable_files import WrittenFile, save_atomically


def write_artifact(
    workdir: Path,
    family: str,
    hyperparameters: dict[str, Any],
    data: TrainingData,
    model: nn.Module,
    metrics: dict[str, float],
) -> WrittenFile:
    """Write `workdir/model.pt` atomically; returns its SHA-256 and size."""
    config = ArtifactConfig(
        family, hyperparameters, data.input_shape, data.class_labels, data.scaling, metrics
    )
    return save_atomically(artifact_payload(model, config), workdir / ARTIFACT_NAME)
