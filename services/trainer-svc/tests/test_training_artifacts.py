"""The artifact: one file, loadable with weights_only=True on a box without the trainer's classes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from trainer_samples import RecordingObserver

from modelyard_trainer.training import (
    ArtifactError,
    Completed,
    TrainingControl,
    load_artifact,
    predict,
    probe_input,
    run_training,
)


@pytest.fixture(scope="module")
def digits_artifact(digits_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Completed:
    from modelyard_events.schemas.hyperparameters import validate_hyperparameters
    from modelyard_trainer.training import TrainingSpec

    hyperparameters = validate_hyperparameters("image_classifier", {"epochs": 3, "channels": 8, "lr": 3e-3})
    workdir = tmp_path_factory.mktemp("artifact")
    spec = TrainingSpec(
        "job-a", 1, "image_classifier", digits_npz.as_uri(), hyperparameters, workdir, device="cpu"
    )
    outcome = run_training(spec, RecordingObserver(), TrainingControl())
    assert isinstance(outcome, Completed)
    return outcome


def test_artifact_is_one_hashed_file_of_plain_values(digits_artifact: Completed) -> None:
    path = digits_artifact.artifact_path
    assert path.name == "model.pt"
    assert digits_artifact.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert digits_artifact.size_bytes == path.stat().st_size

    payload = torch.load(path, weights_only=True)  # refuses anything but tensors and primitives

    config = payload["config"]
    assert config["family"] == "image_classifier"
    assert config["input_shape"] == [1, 8, 8]
    assert config["class_labels"] == list(range(10))
    assert config["hyperparameters"]["channels"] == 8
    assert set(config["scaling"]) >= {"pixel_min", "pixel_max", "channel_mean", "channel_std"}
    assert payload["metrics"] == digits_artifact.metrics


def test_loaded_artifact_predicts_the_digits_it_was_trained_on(
    digits_artifact: Completed, digits_npz: Path
) -> None:
    with np.load(digits_npz) as digits:
        images, labels = digits["images"], digits["labels"]
    model, config = load_artifact(digits_artifact.artifact_path)

    guesses = predict(model, config, images[:200])

    accuracy = np.mean(np.asarray(guesses.outputs) == labels[:200])
    assert accuracy > 0.9
    assert guesses.probabilities is not None
    assert len(guesses.probabilities[0]) == 10
    (single,) = predict(model, config, images[0]).outputs  # one H×W image
    assert single in range(10)
    assert len(predict(model, config, probe_input(config)).outputs) == 1


def test_predict_names_the_expected_input_shape(digits_artifact: Completed) -> None:
    model, config = load_artifact(digits_artifact.artifact_path)

    with pytest.raises(ValueError, match=r"images must be \(1, 8, 8\)"):
        predict(model, config, np.zeros((2, 5, 5)))


def test_a_file_that_is_not_an_artifact_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(2)}, other)

    with pytest.raises(ArtifactError, match="not a Modelyard model artifact"):
        load_artifact(other)


def test_an_edge_loads_the_trainers_artifact_with_the_inference_library_alone(
    digits_artifact: Completed,
) -> None:
    import modelyard_inference
    from modelyard_trainer.training import errors, preprocessing

    loaded = modelyard_inference.load_model(digits_artifact.artifact_path)
    run = modelyard_inference.measure_on_probes(loaded, modelyard_inference.probe_inputs(loaded.config, 8))

    assert loaded.class_labels == list(range(10))
    assert all(label in range(10) for label in run.labels)
    assert run.latency_p50_ms <= run.latency_p95_ms
    # The trainer re-exports the library's classes, so its isinstance checks and excepts still match.
    assert errors.ArtifactError is modelyard_inference.ArtifactError
    assert isinstance(loaded.config.scaling, preprocessing.ImageScaling)
