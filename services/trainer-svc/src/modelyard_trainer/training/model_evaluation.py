"""Testing a trained model artifact: its metrics on one split of a dataset, and its latency.

What the model registry's testing phase runs. The artifact is loaded with `load_artifact`, the
split read and scaled as `evaluation_data` describes, the predictions made in float32 (no AMP)
on the chosen device. Classifiers (`evaluate_model`) get accuracy, per-class and macro precision,
recall and F1 (conventions in `classification_metrics`) and a confusion matrix; regressors
(`evaluate_regressor`) get MAE and RMSE in the target's units and R².
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from modelyard_trainer.training.artifacts import ArtifactConfig, load_artifact
from modelyard_trainer.training.classification_metrics import (
    ClassMetrics,
    classification_scores,
    confusion_matrix,
)
from modelyard_trainer.training.device import resolve_device
from modelyard_trainer.training.errors import TrainingError
from modelyard_trainer.training.evaluation_data import EvaluationSamples, load_evaluation_samples
from modelyard_trainer.training.latency import Latency, measure_latency
from modelyard_trainer.training.preprocessing import TabularScaling

_BATCH = 1024
_UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_.:-]")


@dataclass(frozen=True)
class ModelEvaluation:
    """A classifier on one split: macro averages over the classes present in the truth or the
    predictions, per-class metrics and the confusion matrix (rows true, columns predicted) in the
    artifact's class order, and per-sample latency on `device`."""

    samples: int
    accuracy: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    per_class: list[ClassMetrics]
    confusion: list[list[int]]
    latency_p50_ms: float
    latency_p95_ms: float
    device: str

    def metrics(self) -> dict[str, float]:
        """Flat metrics: accuracy, precision, recall, f1 (macro), inference_time_ms (p50),
        latency_p95_ms, and precision_<label>, recall_<label>, f1_<label> per class, every name
        matching [A-Za-z0-9_.:-]+ (other characters of a label become `_`)."""
        values = {
            "accuracy": self.accuracy,
            "precision": self.precision_macro,
            "recall": self.recall_macro,
            "f1": self.f1_macro,
            "inference_time_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
        }
        names = metric_label_names([metrics.label for metrics in self.per_class])
        for name, metrics in zip(names, self.per_class, strict=True):
            values[f"precision_{name}"] = metrics.precision
            values[f"recall_{name}"] = metrics.recall
            values[f"f1_{name}"] = metrics.f1
        return values


@dataclass(frozen=True)
class RegressionEvaluation:
    """A regressor on one split: MAE and RMSE in the target's units, R² (None when the split's
    targets are all equal), and per-sample latency on `device`."""

    samples: int
    mae: float
    rmse: float
    r2: float | None
    latency_p50_ms: float
    latency_p95_ms: float
    device: str

    def metrics(self) -> dict[str, float]:
        """Flat metrics: mae, rmse, r2 (when defined), inference_time_ms (p50), latency_p95_ms."""
        values = {"mae": self.mae, "rmse": self.rmse}
        if self.r2 is not None:
            values["r2"] = self.r2
        return values | {"inference_time_ms": self.latency_p50_ms, "latency_p95_ms": self.latency_p95_ms}


def evaluate_model(
    artifact_path: Path,
    dataset_uri: str,
    split: str,
    *,
    device: str | None = None,
    memory_budget_bytes: int | None = None,
    latency_samples: int = 200,
) -> ModelEvaluation:
    """Evaluate the classifier artifact at `artifact_path` on split `split` ("val" or "test").

    Raises ArtifactError for a file that is not a sound artifact, TrainingError for a regressor
    (use `evaluate_regressor`) or an unusable device, TrainingDataError for the data (an unknown
    split, a label the model does not know …), ValueError for `latency_samples` < 1.
    """
    model, config, placed = _loaded(artifact_path, device, latency_samples)
    if config.class_labels is None:
        raise TrainingError(
            f"{artifact_path} is a {config.family}; evaluate_model evaluates classifiers, "
            "evaluate_regressor regressors"
        )
    samples = load_evaluation_samples(config, dataset_uri, split, memory_budget_bytes)
    latency = measure_latency(model, samples.inputs, placed, latency_samples)
    predicted = torch.cat([batch.argmax(dim=1) for batch in _outputs(model, samples, placed)])
    confusion = confusion_matrix(samples.targets.to(placed), predicted, len(config.class_labels))
    scores = classification_scores(confusion, [str(label) for label in config.class_labels])
    return ModelEvaluation(
        len(samples.targets),
        scores.accuracy,
        scores.precision_macro,
        scores.recall_macro,
        scores.f1_macro,
        scores.per_class,
        scores.confusion,
        latency.p50_ms,
        latency.p95_ms,
        str(placed),
    )


def evaluate_regressor(
    artifact_path: Path,
    dataset_uri: str,
    split: str,
    *,
    device: str | None = None,
    memory_budget_bytes: int | None = None,
    latency_samples: int = 200,
) -> RegressionEvaluation:
    """Evaluate the regressor artifact at `artifact_path` on split `split`; raises as `evaluate_model`
    does, with TrainingError for a classifier."""
    model, config, placed = _loaded(artifact_path, device, latency_samples)
    scaling = config.scaling
    if config.class_labels is not None or not isinstance(scaling, TabularScaling):
        raise TrainingError(f"{artifact_path} is a {config.family}; evaluate_regressor evaluates regressors")
    samples = load_evaluation_samples(config, dataset_uri, split, memory_budget_bytes)
    latency = measure_latency(model, samples.inputs, placed, latency_samples)
    standardized = torch.cat([batch.squeeze(-1) for batch in _outputs(model, samples, placed)])
    predicted = standardized.double().cpu() * (scaling.target_std or 1.0) + (scaling.target_mean or 0.0)
    return _regression(samples.targets, predicted, latency, str(placed))


def metric_label_names(labels: list[str]) -> list[str]:
    """Each label made fit for a metric name ([A-Za-z0-9_.:-]+), made unique by its class index
    when two labels would read the same."""
    safe = [_UNSAFE_NAME_CHARACTERS.sub("_", label) or "_" for label in labels]
    counts = Counter(safe)
    taken: set[str] = set()
    names = []
    for index, name in enumerate(safe):
        if counts[name] > 1:
            name = f"{name}_{index}"
        while name in taken:
            name += "_"
        taken.add(name)
        names.append(name)
    return names


def _loaded(
    artifact_path: Path, device: str | None, latency_samples: int
) -> tuple[nn.Module, ArtifactConfig, torch.device]:
    if latency_samples < 1:  # before any work, not after reading the data
        raise ValueError(f"latency_samples must be ≥ 1, not {latency_samples}")
    placed = resolve_device(device)
    model, config = load_artifact(artifact_path, str(placed))
    return model, config, placed


def _outputs(model: nn.Module, samples: EvaluationSamples, device: torch.device) -> list[torch.Tensor]:
    with torch.inference_mode():
        return [
            model(samples.inputs[start : start + _BATCH].to(device)).float()
            for start in range(0, len(samples.inputs), _BATCH)
        ]


def _regression(
    targets: torch.Tensor, predicted: torch.Tensor, latency: Latency, device: str
) -> RegressionEvaluation:
    errors = predicted - targets
    spread = float(((targets - targets.mean()) ** 2).sum())
    r2 = 1.0 - float((errors**2).sum()) / spread if spread > 0 else None
    return RegressionEvaluation(
        len(targets),
        float(errors.abs().mean()),
        float((errors**2).mean().sqrt()),
        r2,
        latency.p50_ms,
        latency.p95_ms,
        device,
    )
