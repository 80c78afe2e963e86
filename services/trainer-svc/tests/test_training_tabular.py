"""Tabular classifier and regressor trained from generated CSV and JSONL files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from trainer_samples import RecordingObserver, SpecFactory, blobs, linear_rows, write_csv, write_jsonl

from modelyard_trainer.training import Completed, TrainingControl, load_artifact, predict, run_training


def _classifier_file(directory: Path, kind: str) -> Path:
    features, labels = blobs(400)
    if kind == "csv":
        rows = [[*map(float, row), label] for row, label in zip(features, labels, strict=True)]
        return write_csv(directory / "animals.csv", ["a", "b", "c", "animal"], rows)
    records = [
        {"a": float(a), "b": float(b), "c": float(c), "animal": str(label)}
        for (a, b, c), label in zip(features, labels, strict=True)
    ]
    return write_jsonl(directory / "animals.jsonl", records)


def _regressor_file(directory: Path, kind: str) -> Path:
    features, target = linear_rows(600)
    if kind == "csv":
        rows = [[*map(float, row), float(y)] for row, y in zip(features, target, strict=True)]
        return write_csv(directory / "prices.csv", ["a", "b", "c", "price"], rows)
    records = [
        {"a": float(a), "b": float(b), "c": float(c), "price": float(y)}
        for (a, b, c), y in zip(features, target, strict=True)
    ]
    return write_jsonl(directory / "prices.jsonl", records)


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_tabular_classifier_separates_string_labelled_classes(
    kind: str, tmp_path: Path, make_spec: SpecFactory, observer: RecordingObserver
) -> None:
    dataset = _classifier_file(tmp_path, kind)
    spec = make_spec("tabular_classifier", dataset, target_column="animal", epochs=5, batch_size=32, lr=1e-2)

    outcome = run_training(spec, observer, TrainingControl())

    assert isinstance(outcome, Completed)
    assert outcome.metrics["val_accuracy"] > 0.9  # measured 0.96 (two Gaussian blobs 4.7 σ apart)
    model, config = load_artifact(outcome.artifact_path)
    assert config.class_labels == ["cat", "dog"]
    assert config.feature_names == ["a", "b", "c"]
    guesses = predict(model, config, [{"a": 3.0, "b": -3.0, "c": 2.0}, {"a": 0.0, "b": 0.0, "c": 0.0}])
    assert guesses.outputs == ["dog", "cat"]
    assert guesses.probabilities is not None
    assert all(abs(sum(p) - 1) < 1e-5 for p in guesses.probabilities)


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_tabular_regressor_fits_a_linear_target_in_its_own_units(
    kind: str, tmp_path: Path, make_spec: SpecFactory, observer: RecordingObserver
) -> None:
    dataset = _regressor_file(tmp_path, kind)
    spec = make_spec("tabular_regressor", dataset, target_column="price", epochs=20, batch_size=32, lr=1e-2)

    outcome = run_training(spec, observer, TrainingControl())

    assert isinstance(outcome, Completed)
    assert outcome.metrics["val_r2"] > 0.97
    _, target = linear_rows(600)
    assert outcome.metrics["val_rmse"] < 0.2 * target.std()  # reported in price units, not standardized
    assert {"val_mae", "val_rmse", "val_loss", "train_loss"} <= outcome.metrics.keys()
    assert all(result.val_accuracy is None for result, _ in observer.epochs)
    model, config = load_artifact(outcome.artifact_path)
    (value,) = predict(model, config, [[1.0, 50.0, 0.1]]).outputs
    assert value == pytest.approx(3.0 - 1.0 + 4.0 + 100, abs=0.2 * target.std())


def test_feature_columns_pick_and_order_the_model_inputs(tmp_path: Path, make_spec: SpecFactory) -> None:
    features, labels = blobs(200)
    rows = [[label, *map(float, row), 1.0] for row, label in zip(features, labels, strict=True)]
    dataset = write_csv(tmp_path / "wide.csv", ["animal", "a", "b", "c", "ignored"], rows)
    spec = make_spec(
        "tabular_classifier", dataset, target_column="animal", feature_columns=["c", "a"], epochs=1
    )

    outcome = run_training(spec, RecordingObserver(), TrainingControl())

    assert isinstance(outcome, Completed)
    _, config = load_artifact(outcome.artifact_path)
    assert config.feature_names == ["c", "a"]
    assert config.input_shape == (2,)
    assert np.isfinite(outcome.metrics["val_loss"])
