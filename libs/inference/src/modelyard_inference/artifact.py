"""The model artifact: one `model.pt` an edge box can load with `torch.load(weights_only=True)`.

It holds only tensors, primitives, lists and dicts: the state dict, the config
needed to rebuild the network and scale inputs (family, hyperparameters, input
shape, class labels, feature names, fitted statistics) and the final metrics.
Trainers write it (`artifact_payload`, saved by the trainer); trainers and edges read it here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from modelyard_artifacts.model_file import MODEL_FORMAT
from modelyard_events.schemas.hyperparameters import HyperparameterError, validate_hyperparameters
from modelyard_inference.errors import ArtifactError
from modelyard_inference.labels import ClassLabel
from modelyard_inference.networks import build_model
from modelyard_inference.scaling import ImageScaling, TabularScaling

ARTIFACT_FORMAT = MODEL_FORMAT  # the contract lives in libs/artifacts (registry and edges read it)
ARTIFACT_NAME = "model.pt"


@dataclass(frozen=True)
class ArtifactConfig:
    """How to rebuild the network and prepare its inputs, as stored in the artifact."""

    family: str
    hyperparameters: dict[str, Any]
    input_shape: tuple[int, ...]
    class_labels: list[ClassLabel] | None  # None for regressors
    scaling: ImageScaling | TabularScaling
    metrics: dict[str, float]

    @property
    def feature_names(self) -> list[str] | None:
        """Model input columns in order (tabular families only)."""
        return self.scaling.feature_names if isinstance(self.scaling, TabularScaling) else None

    def to_dict(self) -> dict[str, Any]:
        """Plain values only, so the artifact loads with weights_only=True."""
        return {
            "family": self.family,
            "hyperparameters": dict(self.hyperparameters),
            "input_shape": list(self.input_shape),
            "class_labels": None if self.class_labels is None else list(self.class_labels),
            "feature_names": self.feature_names,
            "scaling": self.scaling.to_config(),
        }


@dataclass(frozen=True)
class Predictions:
    """One output per input: the class label (classifiers) or the value in target units (regressors)."""

    outputs: list[ClassLabel | float]
    probabilities: list[list[float]] | None  # per class in `class_labels` order; None for regressors


def artifact_payload(model: nn.Module, config: ArtifactConfig) -> dict[str, Any]:
    """What `model.pt` holds (for `torch.save`): the weights on CPU, the config and the metrics."""
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    return {
        "format": ARTIFACT_FORMAT,
        "state_dict": state,
        "config": config.to_dict(),
        "metrics": config.metrics,
    }


def load_artifact(path: Path, device: str = "cpu") -> tuple[nn.Module, ArtifactConfig]:
    """The network in eval mode on `device` and its config; ArtifactError if the file is not ours."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged or foreign file raises many types
        raise ArtifactError(f"{path} is not a readable model artifact: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"{path} is not a Modelyard model artifact ({ARTIFACT_FORMAT})")
    config = _config(payload["config"], payload["metrics"])
    try:
        hyperparameters = validate_hyperparameters(config.family, config.hyperparameters)
    except HyperparameterError as error:
        raise ArtifactError(f"{path}: stored hyperparameters are invalid: {error}") from None
    classes = None if config.class_labels is None else len(config.class_labels)
    model = build_model(config.family, hyperparameters, config.input_shape, classes)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise ArtifactError(f"{path}: weights do not fit the stored config: {error}") from None
    return model.to(device).eval(), config


def predict(model: nn.Module, config: ArtifactConfig, inputs: Any) -> Predictions:
    """Scale `inputs` as training did and run the model (no gradients).

    Images: one H×W / C×H×W image or a batch N×H×W / N×C×H×W. Tabular: one mapping
    of feature name to number, a list of them, or rows of numbers in `feature_names` order.
    """
    batch = prepared_inputs(config, inputs)
    parameter = next(model.parameters())
    with torch.inference_mode():
        outputs = model(torch.from_numpy(batch).to(parameter.device)).float().cpu()
    if config.class_labels is None:
        scaling = config.scaling
        assert isinstance(scaling, TabularScaling)
        assert scaling.target_std is not None
        values = outputs.squeeze(-1).double() * scaling.target_std + (scaling.target_mean or 0.0)
        return Predictions([float(v) for v in values.tolist()], None)
    probabilities = torch.softmax(outputs, dim=1)
    labels = [config.class_labels[i] for i in probabilities.argmax(dim=1).tolist()]
    return Predictions(list(labels), probabilities.tolist())


def probe_input(config: ArtifactConfig) -> npt.NDArray[np.float64]:
    """One valid input for a smoke inference: the training mean of every feature, or a mid-grey image."""
    scaling = config.scaling
    if isinstance(scaling, TabularScaling):
        return np.asarray([scaling.feature_mean], dtype=np.float64)
    middle = (scaling.pixel_min + scaling.pixel_max) / 2
    return np.full((1, *config.input_shape), middle, dtype=np.float64)


def raw_batch(config: ArtifactConfig, inputs: Any) -> npt.NDArray[Any]:
    """`inputs` as an unscaled batch N × `input_shape` (the forms `predict` accepts); ValueError if
    they do not fit. Images keep their dtype (a uint8 batch is not copied into floats here)."""
    scaling = config.scaling
    if isinstance(scaling, TabularScaling):
        return _rows(scaling.feature_names, inputs)
    images = np.asarray(inputs)
    shape = config.input_shape
    if images.shape[-len(shape) :] != shape and shape[0] == 1:
        images = images[..., np.newaxis, :, :]  # N×H×W or H×W for a single-channel model
    if images.shape == shape:
        images = images[np.newaxis]
    if images.ndim != 4 or images.shape[1:] != shape:
        raise ValueError(f"images must be {shape} (or a batch of them), not {np.asarray(inputs).shape}")
    return images


def prepared_inputs(config: ArtifactConfig, inputs: Any) -> npt.NDArray[np.float32]:
    """`inputs` as the float32 batch the network takes: reshaped by `raw_batch`, scaled as in training."""
    scaling = config.scaling
    batch = raw_batch(config, inputs)
    return scaling.images(batch) if isinstance(scaling, ImageScaling) else scaling.features(batch)


def _rows(names: list[str], inputs: Any) -> npt.NDArray[np.float64]:
    if isinstance(inputs, Mapping):
        inputs = [inputs]
    if isinstance(inputs, Sequence) and inputs and isinstance(inputs[0], Mapping):
        missing = sorted({name for row in inputs for name in names if name not in row})
        if missing:
            raise ValueError(f"inputs lack feature(s) {', '.join(missing)}")
        inputs = [[row[name] for name in names] for row in inputs]
    rows = np.asarray(inputs, dtype=np.float64)
    rows = rows[np.newaxis] if rows.ndim == 1 else rows
    if rows.ndim != 2 or rows.shape[1] != len(names):
        raise ValueError(
            f"inputs must be rows of {len(names)} numbers ({', '.join(names)}), not {rows.shape}"
        )
    return rows


def _config(raw: dict[str, Any], metrics: dict[str, Any]) -> ArtifactConfig:
    scaling_raw = raw["scaling"]
    scaling: ImageScaling | TabularScaling = (
        ImageScaling.from_config(scaling_raw)
        if scaling_raw["kind"] == "image"
        else TabularScaling.from_config(scaling_raw)
    )
    labels = raw["class_labels"]
    return ArtifactConfig(
        raw["family"],
        dict(raw["hyperparameters"]),
        tuple(int(n) for n in raw["input_shape"]),
        None if labels is None else list(labels),
        scaling,
        {str(k): float(v) for k, v in metrics.items()},
    )
