"""From a dataset URI (a data file, or a materialized version's manifest) to training and validation
tensors, scaled with training-split statistics."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import numpy.typing as npt
import torch

from modelyard_events.schemas.hyperparameters import CommonHyperparameters, TabularHyperparameters
from modelyard_trainer.training.errors import TrainingDataError
from modelyard_trainer.training.image_files import read_images
from modelyard_trainer.training.memory_budget import check_memory_budget
from modelyard_trainer.training.preprocessing import ImageScaling, TabularScaling
from modelyard_trainer.training.tabular_files import (
    ClassLabel,
    Table,
    class_targets,
    read_table,
    regression_targets,
)
from modelyard_trainer.training.version_files import (
    MaterializedVersion,
    read_materialized_version,
    version_images,
    version_table,
)

IMAGE_FAMILY = "image_classifier"
CLASSIFIERS = ("image_classifier", "tabular_classifier")


@dataclass(frozen=True)
class TrainingData:
    """Both splits as CPU tensors (float32 inputs; int64 class indices or float32 targets) and what
    inference needs to treat new inputs the same way."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    input_shape: tuple[int, ...]
    class_labels: list[ClassLabel] | None  # None for regressors
    scaling: ImageScaling | TabularScaling
    dataset_manifest_sha256: str | None = None  # set when the data is a published dataset version

    @property
    def feature_names(self) -> list[str] | None:
        """Column names in model input order (tabular families only)."""
        return self.scaling.feature_names if isinstance(self.scaling, TabularScaling) else None

    def signature(self) -> dict[str, Any]:
        """What a checkpoint records so a resume on different data is refused."""
        signature: dict[str, Any] = {
            "train_samples": len(self.train_x),
            "val_samples": len(self.val_x),
            "input_shape": list(self.input_shape),
            "class_labels": self.class_labels,
        }
        if self.dataset_manifest_sha256 is not None:  # only then, so older checkpoints still match
            signature["dataset_manifest_sha256"] = self.dataset_manifest_sha256
        return signature


def dataset_path(uri: str) -> Path:
    """The local file a `file:///abs/path` URI names; TrainingDataError for other schemes or no file."""
    parts = urlsplit(uri)
    if not parts.scheme:
        raise TrainingDataError(f"dataset URI {uri!r} has no scheme; expected file:///absolute/path")
    if parts.scheme == "dataset":
        raise TrainingDataError(
            f"{uri!r} names a dataset version: the trainer worker fetches it from dataset-svc before "
            "training, and the engine reads the fetched copy through its file://…/manifest.json"
        )
    if parts.scheme != "file":
        raise TrainingDataError(
            f"unknown dataset URI scheme {parts.scheme!r} in {uri!r}; this trainer reads file:// "
            "and dataset://<dataset_id>/<version>"
        )
    if parts.netloc not in ("", "localhost"):
        raise TrainingDataError(f"dataset URI {uri!r} names host {parts.netloc!r}; only local files are read")
    path = Path(unquote(parts.path))
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "not found"
        raise TrainingDataError(f"dataset file {what}: {path}")
    return path


def split_indices(count: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint train and validation row indices, a pure function of (count, val_fraction, seed)."""
    if count < 2:
        raise TrainingDataError(f"the dataset has {count} sample(s); at least 2 are needed to hold some out")
    held_out = min(count - 1, max(1, round(count * val_fraction)))
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[held_out:], order[:held_out]


def load_training_data(
    family: str,
    dataset_uri: str,
    hyperparameters: CommonHyperparameters,
    memory_budget_bytes: int | None = None,
) -> TrainingData:
    """Read, check, split and scale the dataset for `family`; TrainingDataError names what is wrong.

    A materialized dataset version (its manifest.json) brings its own split: train and val follow
    the manifest and `val_fraction` is not used; the test split is held out. With a memory budget,
    a version whose loading would need more is refused before any sample is decoded.
    """
    path = dataset_path(dataset_uri)
    version = read_materialized_version(path)
    if version is not None and memory_budget_bytes is not None:
        check_memory_budget(version, family, memory_budget_bytes)
    if family == IMAGE_FAMILY:
        if version is not None:
            return _version_image_data(version)
        return _image_data(path, hyperparameters)
    if not isinstance(hyperparameters, TabularHyperparameters):
        raise TrainingDataError(f"family {family!r} needs tabular hyperparameters (target_column …)")
    if version is not None:
        table, train_rows = version_table(
            version, hyperparameters.target_column, hyperparameters.feature_columns
        )
        rows = torch.arange(len(table.features))
        data = _tabular_training_data(table, family, rows[:train_rows], rows[train_rows:])
        return replace(data, dataset_manifest_sha256=version.manifest_sha256)
    table = read_table(path, hyperparameters.target_column, hyperparameters.feature_columns)
    train, val = split_indices(len(table.features), hyperparameters.val_fraction, hyperparameters.seed)
    return _tabular_training_data(table, family, train, val)


def _image_data(path: Path, hp: CommonHyperparameters) -> TrainingData:
    images, labels = read_images(path)
    classes = sorted({int(label) for label in labels})
    if len(classes) < 2:
        raise TrainingDataError(
            f"{path.name}: every label is {classes[0]}; a classifier needs at least two classes"
        )
    index = np.searchsorted(np.asarray(classes), labels).astype(np.int64)
    train, val = split_indices(len(images), hp.val_fraction, hp.seed)
    return _image_training_data(images, index, train, val, list(classes))


def _version_image_data(version: MaterializedVersion) -> TrainingData:
    split = version_images(version)
    images = np.concatenate([split.train_images, split.val_images])
    targets = np.concatenate([split.train_targets, split.val_targets])
    rows = torch.arange(len(images))
    cut = len(split.train_images)
    data = _image_training_data(images, targets, rows[:cut], rows[cut:], list(split.classes))
    return replace(data, dataset_manifest_sha256=version.manifest_sha256)


def _image_training_data(
    images: npt.NDArray[Any],
    targets: npt.NDArray[np.int64],
    train: torch.Tensor,
    val: torch.Tensor,
    classes: list[ClassLabel],
) -> TrainingData:
    scaling = ImageScaling.fit(images[train.numpy()])
    inputs = torch.from_numpy(scaling.images(images))
    labels = torch.from_numpy(targets)
    return TrainingData(
        inputs[train], labels[train], inputs[val], labels[val], tuple(images.shape[1:]), classes, scaling
    )


def _tabular_training_data(table: Table, family: str, train: torch.Tensor, val: torch.Tensor) -> TrainingData:
    rows = train.numpy()
    classes: list[ClassLabel] | None = None
    targets: npt.NDArray[Any]
    if family in CLASSIFIERS:
        targets, classes = class_targets(table)
        scaling = TabularScaling.fit(table.feature_names, table.features[rows])
    else:
        raw = regression_targets(table)
        scaling = TabularScaling.fit(table.feature_names, table.features[rows], raw[rows])
        targets = scaling.target(raw)
    inputs = torch.from_numpy(scaling.features(table.features))
    labels = torch.from_numpy(targets)
    return TrainingData(
        inputs[train], labels[train], inputs[val], labels[val], (len(table.feature_names),), classes, scaling
    )
