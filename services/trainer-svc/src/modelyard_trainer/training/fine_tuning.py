"""Fine-tuning: a run that starts from the weights of a base model artifact instead of a fresh init.

Kept strict on purpose: the base must be of the same family, take inputs of the same shape (and,
for tables, the same feature columns in the same order), keep the same network size, and, for
classifiers, have the same class labels in the same order (`[0, 1]` and `["0", "1"]` differ), so
each output keeps its meaning. Only the weights are taken: the input scaling is fitted on the new
data as in any run (the weights adapt to it in training), and a checkpoint to resume from wins
over the base.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from modelyard_events.schemas.hyperparameters import CommonHyperparameters
from modelyard_trainer.training.artifacts import ArtifactConfig, load_artifact
from modelyard_trainer.training.data import TrainingData
from modelyard_trainer.training.errors import ArtifactError, IncompatibleBaseError
from modelyard_trainer.training.tabular_files import ClassLabel

ARCHITECTURE_FIELDS = ("channels", "hidden_layers")  # the hyperparameters that size the network
_LISTED = 20


def check_base_compatible(
    base: ArtifactConfig,
    family: str,
    input_shape: Sequence[int],
    class_labels: Sequence[ClassLabel] | None,
    *,
    feature_names: Sequence[str] | None = None,
    hyperparameters: CommonHyperparameters | None = None,
) -> None:
    """Nothing when a run of `family` on inputs of `input_shape` and classes `class_labels` (None:
    regressor) can start from `base`; IncompatibleBaseError naming every difference otherwise.

    `feature_names` and `hyperparameters`, when given, must match too (feature columns in order;
    the network's size: channels or hidden_layers).
    """
    problems = []
    if base.family != family:
        problems.append(f"the base is a {base.family}, this run trains {family}")
    if tuple(base.input_shape) != tuple(input_shape):
        problems.append(f"the base takes inputs of shape {base.input_shape}, this data {tuple(input_shape)}")
    if feature_names is not None and base.feature_names is not None:
        problems += _list_difference("feature columns", base.feature_names, list(feature_names))
    if base.class_labels is not None or class_labels is not None:
        problems += _list_difference("class labels", base.class_labels or [], list(class_labels or []))
    if hyperparameters is not None:
        problems += _architecture_difference(base, hyperparameters)
    if problems:
        raise IncompatibleBaseError("cannot fine-tune from this base model: " + "; ".join(problems))


def load_base_weights(
    path: Path, model: nn.Module, family: str, data: TrainingData, hyperparameters: CommonHyperparameters
) -> None:
    """Copy the weights (and BatchNorm statistics) of the base artifact at `path` into `model`
    after checking it fits; IncompatibleBaseError when it does not or cannot be read."""
    try:
        base_model, base = load_artifact(path)
    except ArtifactError as error:
        raise IncompatibleBaseError(f"cannot fine-tune from base {path}: {error}") from None
    try:
        check_base_compatible(
            base,
            family,
            data.input_shape,
            data.class_labels,
            feature_names=data.feature_names,
            hyperparameters=hyperparameters,
        )
    except IncompatibleBaseError as error:
        raise IncompatibleBaseError(f"{path}: {error}") from None
    model.load_state_dict(base_model.state_dict())


def _list_difference(what: str, base: Sequence[ClassLabel], here: Sequence[ClassLabel]) -> list[str]:
    if base == here:
        return []
    if len(base) != len(here):
        return [f"the base has {len(base)} {what} ({_listed(base)}), this data {len(here)} ({_listed(here)})"]
    position = next(i for i, (a, b) in enumerate(zip(base, here, strict=True)) if a != b)
    return [
        f"{what} differ first at position {position}: the base has {base[position]!r}, "
        f"this data {here[position]!r}"
    ]


def _architecture_difference(base: ArtifactConfig, hyperparameters: CommonHyperparameters) -> list[str]:
    here = hyperparameters.model_dump()
    return [
        f"the base has {field} {base.hyperparameters.get(field)!r}, this run {here.get(field)!r}"
        for field in ARCHITECTURE_FIELDS
        if base.hyperparameters.get(field) != here.get(field)
    ]


def _listed(values: Sequence[ClassLabel]) -> str:
    shown = ", ".join(repr(value) for value in values[:_LISTED])
    hidden = len(values) - _LISTED
    return f"{shown} and {hidden:,} more" if hidden > 0 else shown
