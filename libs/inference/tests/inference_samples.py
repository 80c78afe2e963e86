"""Tiny artifacts written the way a trainer writes them (`artifact_payload` + `torch.save`), untrained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from modelyard_events.schemas.hyperparameters import validate_hyperparameters
from modelyard_inference import (
    ArtifactConfig,
    ClassLabel,
    ImageScaling,
    TabularScaling,
    artifact_payload,
    build_model,
)

FEATURES = ["height", "weight", "age"]
ANIMALS: list[ClassLabel] = ["cat", "dog", "horse"]
IMAGE_SHAPE = (1, 5, 5)


def tabular_config(class_labels: list[ClassLabel] | None = ANIMALS) -> ArtifactConfig:
    """A classifier of three animals (or, with None, a regressor) over three features."""
    family = "tabular_regressor" if class_labels is None else "tabular_classifier"
    hyperparameters = validate_hyperparameters(
        family, {"hidden_layers": [8], "target_column": "label"}
    ).model_dump(mode="json")
    target = (50.0, 4.0) if class_labels is None else (None, None)
    scaling = TabularScaling(FEATURES, [170.0, 70.0, 30.0], [10.0, 15.0, 8.0], *target)
    return ArtifactConfig(family, hyperparameters, (len(FEATURES),), class_labels, scaling, {"loss": 0.5})


def image_config() -> ArtifactConfig:
    """A digit classifier for one-channel 5×5 images of 0-255 pixels."""
    hyperparameters = validate_hyperparameters("image_classifier", {"channels": 4}).model_dump(mode="json")
    scaling = ImageScaling(0.0, 255.0, [0.3], [0.2])
    return ArtifactConfig("image_classifier", hyperparameters, IMAGE_SHAPE, list(range(10)), scaling, {})


def write_artifact(path: Path, config: ArtifactConfig, seed: int = 0) -> Path:
    """A freshly initialized network for `config`, saved at `path` as a trainer saves one."""
    torch.manual_seed(seed)
    hyperparameters = validate_hyperparameters(config.family, config.hyperparameters)
    classes = None if config.class_labels is None else len(config.class_labels)
    model = build_model(config.family, hyperparameters, config.input_shape, classes)
    torch.save(artifact_payload(model, config), path)
    return path


def payload_of(path: Path) -> dict[str, Any]:
    """The artifact's dict as stored."""
    payload: dict[str, Any] = torch.load(path, weights_only=True)
    return payload
