"""Evaluating a trained artifact on a dataset split: metrics checked against scikit-learn, latency."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    confusion_matrix,
    mean_absolute_error,
    precision_recall_fscore_support,
    r2_score,
    root_mean_squared_error,
)
from trainer_dataset_samples import SampleFile, csv_bytes, manifest_of, materialize_by_hand
from trainer_samples import RecordingObserver, linear_rows, write_csv

from modelyard_events.schemas.hyperparameters import validate_hyperparameters
from modelyard_trainer.training import (
    ArtifactError,
    Completed,
    ModelEvaluation,
    TrainingControl,
    TrainingDataError,
    TrainingError,
    TrainingSpec,
    evaluate_model,
    evaluate_regressor,
    load_artifact,
    predict,
    run_training,
)
from modelyard_trainer.training.classification_metrics import classification_scores
from modelyard_trainer.training.data import split_indices
from modelyard_trainer.training.model_evaluation import metric_label_names

ANIMALS = ["big cat", "dog", "eel"]  # "big cat" has a space: its metric names must not
CENTRES = np.array([[0.0, 0.0], [1.6, 0.0], [0.0, 1.6]])  # overlapping, so the model makes mistakes


def animal_rows(count: int, seed: int) -> list[list[object]]:
    """Two features; three overlapping Gaussian classes."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 3, count)
    features = rng.normal(size=(count, 2)) + CENTRES[classes]
    return [[float(x), float(y), ANIMALS[c]] for (x, y), c in zip(features, classes, strict=True)]


def train(family: str, dataset: Path, workdir: Path, **values: object) -> Completed:
    hyperparameters = validate_hyperparameters(family, {"epochs": 2, **values})
    spec = TrainingSpec("job-e", 1, family, dataset.as_uri(), hyperparameters, workdir, device="cpu")
    outcome = run_training(spec, RecordingObserver(), TrainingControl())
    assert isinstance(outcome, Completed)
    return outcome


@pytest.fixture(scope="module")
def animals_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("animals")
    return write_csv(folder / "animals.csv", ["x", "y", "animal"], animal_rows(600, seed=5))


@pytest.fixture(scope="module")
def animals_model(animals_csv: Path) -> Completed:
    return train("tabular_classifier", animals_csv, animals_csv.parent / "run", target_column="animal")


@pytest.fixture(scope="module")
def digits_model(digits_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Completed:
    return train("image_classifier", digits_npz, tmp_path_factory.mktemp("digits-run"), channels=8, lr=3e-3)


def assert_matches_sklearn(evaluation: ModelEvaluation, true: list[object], guessed: list[object]) -> None:
    """Per-class metrics and the confusion matrix over every class of the model, in its order; macro
    averages over the classes present (scikit-learn's default); labels compared as text."""
    true_text, guessed_text = [str(label) for label in true], [str(label) for label in guessed]
    classes = [metrics.label for metrics in evaluation.per_class]
    precision, recall, f1, support = precision_recall_fscore_support(
        true_text, guessed_text, labels=classes, zero_division=0
    )
    assert [m.precision for m in evaluation.per_class] == pytest.approx(precision.tolist())
    assert [m.recall for m in evaluation.per_class] == pytest.approx(recall.tolist())
    assert [m.f1 for m in evaluation.per_class] == pytest.approx(f1.tolist())
    assert [m.support for m in evaluation.per_class] == support.tolist()
    macro = precision_recall_fscore_support(true_text, guessed_text, average="macro", zero_division=0)
    assert (evaluation.precision_macro, evaluation.recall_macro, evaluation.f1_macro) == pytest.approx(
        macro[:3]
    )
    assert evaluation.confusion == confusion_matrix(true_text, guessed_text, labels=classes).tolist()
    assert evaluation.accuracy == pytest.approx(np.mean(np.asarray(true_text) == np.asarray(guessed_text)))
    assert evaluation.samples == len(true)


def test_a_classifier_on_its_held_out_rows_scores_as_scikit_learn_says(
    animals_csv: Path, animals_model: Completed
) -> None:
    rows = animal_rows(600, seed=5)
    _, val = split_indices(len(rows), 0.2, 0)  # the defaults the model was trained with
    held_out = [rows[i] for i in val.tolist()]
    model, config = load_artifact(animals_model.artifact_path)
    guessed = predict(model, config, [row[:2] for row in held_out]).outputs
    true = [row[2] for row in held_out]

    evaluation = evaluate_model(animals_model.artifact_path, animals_csv.as_uri(), "val")

    assert 0.6 < evaluation.accuracy < 1.0  # measured 0.68: overlapping classes leave mistakes to count
    assert evaluation.accuracy == pytest.approx(animals_model.metrics["val_accuracy"])
    assert [m.label for m in evaluation.per_class] == ANIMALS
    assert_matches_sklearn(evaluation, true, list(guessed))


def test_an_image_classifier_on_its_held_out_images_scores_as_scikit_learn_says(
    digits_npz: Path, digits_model: Completed
) -> None:
    with np.load(digits_npz) as digits:
        images, labels = digits["images"], digits["labels"]
    _, val = split_indices(len(images), 0.2, 0)
    model, config = load_artifact(digits_model.artifact_path)
    guessed = predict(model, config, images[val.numpy()]).outputs

    evaluation = evaluate_model(digits_model.artifact_path, digits_npz.as_uri(), "val")

    assert evaluation.accuracy == pytest.approx(digits_model.metrics["val_accuracy"])
    assert_matches_sklearn(evaluation, labels[val.numpy()].tolist(), list(guessed))


def test_metrics_are_flat_with_safe_names_and_latency_is_measured(
    animals_csv: Path, animals_model: Completed
) -> None:
    evaluation = evaluate_model(animals_model.artifact_path, animals_csv.as_uri(), "val", latency_samples=50)

    metrics = evaluation.metrics()
    assert all(re.fullmatch(r"[A-Za-z0-9_.:-]+", name) for name in metrics)
    assert metrics["recall_big_cat"] == evaluation.per_class[0].recall
    assert metrics["f1"] == evaluation.f1_macro
    assert metrics["inference_time_ms"] == evaluation.latency_p50_ms
    assert 0 < evaluation.latency_p50_ms <= evaluation.latency_p95_ms
    assert evaluation.device == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_metrics_are_those_of_the_cpu(digits_npz: Path, digits_model: Completed) -> None:
    on_cpu = evaluate_model(digits_model.artifact_path, digits_npz.as_uri(), "val", device="cpu")

    on_gpu = evaluate_model(digits_model.artifact_path, digits_npz.as_uri(), "val", device="cuda")

    assert on_gpu.device.startswith("cuda")
    assert on_gpu.confusion == on_cpu.confusion
    assert 0 < on_gpu.latency_p50_ms <= on_gpu.latency_p95_ms


def test_metric_names_of_labels_that_read_the_same_are_told_apart() -> None:
    assert metric_label_names(["a b", "a_b", "c/d", "é"]) == ["a_b_0", "a_b_1", "c_d", "_"]
    assert metric_label_names(["x", "x", "x_0"]) == ["x_0", "x_1", "x_0_"]


def test_a_class_never_predicted_has_precision_zero_and_an_absent_class_is_left_out_of_the_means() -> None:
    rng = np.random.default_rng(0)
    true = rng.integers(0, 3, 200)  # class 3 never occurs
    right = (rng.random(200) < 0.7) & (true != 2)
    guessed = np.where(right, true, rng.integers(0, 2, 200))  # class 2 never guessed
    confusion = np.zeros((4, 4), dtype=np.int64)
    np.add.at(confusion, (true, guessed), 1)

    scores = classification_scores(confusion, ["a", "b", "c", "d"])

    precision, recall, f1, support = precision_recall_fscore_support(
        true, guessed, labels=[0, 1, 2, 3], zero_division=0
    )
    assert [m.precision for m in scores.per_class] == pytest.approx(precision.tolist())
    assert (scores.per_class[2].precision, scores.per_class[3].support) == (0.0, 0)
    assert [m.recall for m in scores.per_class] == pytest.approx(recall.tolist())
    assert [m.f1 for m in scores.per_class] == pytest.approx(f1.tolist())
    assert [m.support for m in scores.per_class] == support.tolist()
    macro = precision_recall_fscore_support(true, guessed, average="macro", zero_division=0)
    assert (scores.precision_macro, scores.recall_macro, scores.f1_macro) == pytest.approx(macro[:3])
    assert scores.recall_macro == pytest.approx(np.mean(recall[:3]))  # "d": neither true nor guessed


def animal_version(cache: Path, test_rows: list[list[object]]) -> Path:
    files = [
        SampleFile(name, csv_bytes(["x", "y", "animal"], rows), split)  # type: ignore[arg-type]
        for name, rows, split in (
            ("train.csv", animal_rows(300, seed=1), "train"),
            ("val.csv", animal_rows(60, seed=2), "val"),
            ("test.csv", test_rows, "test"),
        )
    ]
    return materialize_by_hand(cache, files, manifest_of(files, task="none"))


def test_a_versions_test_split_is_evaluated_with_the_artifacts_scaling(tmp_path: Path) -> None:
    test_rows = [[x * 10, y * 10, label] for x, y, label in animal_rows(90, seed=3)]  # other units
    manifest = animal_version(tmp_path / "cache", test_rows)
    outcome = train("tabular_classifier", manifest, tmp_path / "run", target_column="animal")
    model, config = load_artifact(outcome.artifact_path)
    guessed = predict(model, config, [row[:2] for row in test_rows]).outputs  # scaled as in training

    evaluation = evaluate_model(outcome.artifact_path, manifest.as_uri(), "test")

    assert_matches_sklearn(evaluation, [row[2] for row in test_rows], list(guessed))
    assert evaluation.samples == 90


def test_a_label_the_model_does_not_know_is_refused_naming_it(tmp_path: Path) -> None:
    manifest = animal_version(tmp_path / "cache", [[0.0, 0.0, "dog"], [1.0, 1.0, "fox"]])
    outcome = train("tabular_classifier", manifest, tmp_path / "run", target_column="animal", epochs=1)

    with pytest.raises(TrainingDataError, match=r"test split of manifest.json has label\(s\) 'fox'"):
        evaluate_model(outcome.artifact_path, manifest.as_uri(), "test")


def test_a_split_too_big_for_the_memory_budget_is_refused_before_it_is_read(tmp_path: Path) -> None:
    manifest = animal_version(tmp_path / "cache", animal_rows(90, seed=3))
    outcome = train("tabular_classifier", manifest, tmp_path / "run", target_column="animal", epochs=1)

    with pytest.raises(TrainingDataError, match=r"needs about .* of memory to load its test split"):
        evaluate_model(outcome.artifact_path, manifest.as_uri(), "test", memory_budget_bytes=1000)


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ("holdout", r"split 'holdout' cannot be evaluated; use val or test"),
        ("train", r"split 'train' cannot be evaluated"),
        ("test", r"animals.csv is a plain file with no test split"),
    ],
)
def test_a_split_that_cannot_be_evaluated_is_refused(
    split: str, message: str, animals_csv: Path, animals_model: Completed
) -> None:
    with pytest.raises(TrainingDataError, match=message):
        evaluate_model(animals_model.artifact_path, animals_csv.as_uri(), split)


def test_a_corrupted_artifact_is_refused(animals_csv: Path, animals_model: Completed, tmp_path: Path) -> None:
    damaged = tmp_path / "model.pt"
    data = animals_model.artifact_path.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])

    with pytest.raises(ArtifactError, match="is not a readable model artifact"):
        evaluate_model(damaged, animals_csv.as_uri(), "val")


def test_a_regressor_is_evaluated_in_its_target_units_and_refused_as_a_classifier(tmp_path: Path) -> None:
    features, target = linear_rows(300)
    rows = [[*map(float, row), float(y)] for row, y in zip(features, target, strict=True)]
    dataset = write_csv(tmp_path / "prices.csv", ["a", "b", "c", "price"], rows)
    outcome = train("tabular_regressor", dataset, tmp_path / "run", target_column="price", lr=1e-2)
    _, val = split_indices(len(rows), 0.2, 0)
    model, config = load_artifact(outcome.artifact_path)
    guessed = predict(model, config, features[val.numpy()]).outputs
    true = target[val.numpy()]

    evaluation = evaluate_regressor(outcome.artifact_path, dataset.as_uri(), "val")

    assert evaluation.mae == pytest.approx(mean_absolute_error(true, guessed), rel=1e-5)
    assert evaluation.rmse == pytest.approx(root_mean_squared_error(true, guessed), rel=1e-5)
    assert evaluation.r2 == pytest.approx(r2_score(true, guessed), rel=1e-5)
    assert evaluation.metrics()["rmse"] == pytest.approx(outcome.metrics["val_rmse"], rel=1e-4)
    with pytest.raises(TrainingError, match="evaluate_model evaluates classifiers"):
        evaluate_model(outcome.artifact_path, dataset.as_uri(), "val")
