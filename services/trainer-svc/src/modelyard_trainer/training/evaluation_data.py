"""The samples a trained model is evaluated on: one split of its dataset, scaled the artifact's way.

The split is read as training reads the data (data.py): a dataset version's own `val` or `test`
split, or, for a plain file, the validation rows `split_indices` holds out with the artifact's
`seed` and `val_fraction`. Inputs are scaled with the statistics stored in the artifact, never
refit, so the model sees exactly what it would see in production.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from modelyard_events.schemas.datasets import SplitName
from modelyard_events.schemas.hyperparameters import TabularHyperparameters, validate_hyperparameters
from modelyard_trainer.training.artifacts import ArtifactConfig
from modelyard_trainer.training.data import IMAGE_FAMILY, dataset_path, split_indices
from modelyard_trainer.training.errors import TrainingDataError
from modelyard_trainer.training.image_files import read_images
from modelyard_trainer.training.memory_budget import check_memory_budget
from modelyard_trainer.training.preprocessing import ImageScaling, TabularScaling
from modelyard_trainer.training.tabular_files import (
    ClassLabel,
    Table,
    read_table,
    regression_targets,
    row_class_labels,
)
from modelyard_trainer.training.version_files import (
    MaterializedVersion,
    read_materialized_version,
    version_split_images,
    version_split_table,
)

EVALUATION_SPLITS: dict[str, SplitName] = {"val": "val", "test": "test"}
_LABELS_LISTED = 20


@dataclass(frozen=True)
class EvaluationSamples:
    """Scaled float32 inputs and their targets: class indices in the artifact's class order (int64),
    or a regressor's targets in their own units (float64)."""

    inputs: torch.Tensor
    targets: torch.Tensor


def load_evaluation_samples(
    config: ArtifactConfig, dataset_uri: str, split: str, memory_budget_bytes: int | None
) -> EvaluationSamples:
    """Split `split` of the dataset at `dataset_uri`, ready for the model `config` describes.

    TrainingDataError names an unknown split, a plain file asked for its (absent) test split, inputs
    of another shape, missing feature columns, or labels the model does not know.
    """
    split_name = EVALUATION_SPLITS.get(split)
    if split_name is None:
        raise TrainingDataError(f"split {split!r} cannot be evaluated; use {' or '.join(EVALUATION_SPLITS)}")
    path = dataset_path(dataset_uri)
    version = read_materialized_version(path)
    if version is not None:
        if memory_budget_bytes is not None:
            check_memory_budget(version, config.family, memory_budget_bytes, (split_name,))
        inputs, targets = _version_split(config, version, split_name)
    else:
        if split != "val":
            raise TrainingDataError(
                f"{path.name} is a plain file with no {split} split; evaluate on val (the rows the "
                "artifact's seed and val_fraction held out) or on a dataset version that has one"
            )
        inputs, targets = _held_out_rows(config, path)
    return _samples(config, inputs, targets, f"the {split} split of {path.name}")


def _version_split(
    config: ArtifactConfig, version: MaterializedVersion, split: SplitName
) -> tuple[Any, list[Any]]:
    if config.family == IMAGE_FAMILY:
        images, names = version_split_images(version, split)
        return images, list(names)
    hp = _tabular_hyperparameters(config)
    table = version_split_table(version, split, hp.target_column, config.feature_names)
    return table.features, _table_targets(config, table)


def _held_out_rows(config: ArtifactConfig, path: Path) -> tuple[Any, list[Any]]:
    hp = validate_hyperparameters(config.family, config.hyperparameters)
    if config.family == IMAGE_FAMILY:
        images, labels = read_images(path)
        _, val = split_indices(len(images), hp.val_fraction, hp.seed)
        return images[val.numpy()], labels[val.numpy()].tolist()
    tabular = _tabular_hyperparameters(config)
    table = read_table(path, tabular.target_column, config.feature_names)
    _, val = split_indices(len(table.features), hp.val_fraction, hp.seed)
    rows = val.numpy()
    targets = _table_targets(config, table)
    return table.features[rows], [targets[row] for row in rows]


def _tabular_hyperparameters(config: ArtifactConfig) -> TabularHyperparameters:
    hp = validate_hyperparameters(config.family, config.hyperparameters)
    assert isinstance(hp, TabularHyperparameters)  # load_artifact validated the family's model
    return hp


def _table_targets(config: ArtifactConfig, table: Table) -> list[Any]:
    if config.class_labels is None:
        return [float(value) for value in regression_targets(table)]
    return list(row_class_labels(table))


def _samples(config: ArtifactConfig, inputs: Any, targets: list[Any], source: str) -> EvaluationSamples:
    scaling = config.scaling
    if isinstance(scaling, ImageScaling):
        if tuple(inputs.shape[1:]) != config.input_shape:
            raise TrainingDataError(
                f"{source}: images are {tuple(inputs.shape[1:])} (C×H×W), but the model takes "
                f"{config.input_shape}"
            )
        scaled = scaling.images(inputs)
    else:
        assert isinstance(scaling, TabularScaling)
        scaled = scaling.features(inputs)
    if config.class_labels is None:
        values = torch.tensor(targets, dtype=torch.float64)
    else:
        values = torch.from_numpy(class_indices(targets, config.class_labels, source))
    return EvaluationSamples(torch.from_numpy(scaled), values)


def class_indices(labels: list[ClassLabel], classes: list[ClassLabel], source: str) -> npt.NDArray[np.int64]:
    """The position of each label in `classes`, matched by text (class 3 and label "3" are one class,
    so a model trained on an .npz reads a version's class names); TrainingDataError names labels the
    model does not know."""
    index = {str(label): position for position, label in enumerate(classes)}
    unknown = sorted({str(label) for label in labels} - index.keys())
    if unknown:
        raise TrainingDataError(
            f"{source} has label(s) {_listed(unknown)} that the model does not know; "
            f"its classes are {_listed([str(label) for label in classes])}"
        )
    return np.asarray([index[str(label)] for label in labels], dtype=np.int64)


def _listed(labels: list[str]) -> str:
    shown = ", ".join(repr(label) for label in labels[:_LABELS_LISTED])
    hidden = len(labels) - _LABELS_LISTED
    return f"{shown} and {hidden:,} more" if hidden > 0 else shown
