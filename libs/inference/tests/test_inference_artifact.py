"""An artifact loads back into the network that was saved and predicts in the training data's terms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from inference_samples import ANIMALS, FEATURES, image_config, payload_of, tabular_config, write_artifact

from modelyard_inference import (
    ARTIFACT_FORMAT,
    ArtifactError,
    Mlp,
    SmallCnn,
    load_artifact,
    predict,
    prepared_inputs,
    probe_input,
)


def test_artifact_holds_plain_values_and_loads_the_same_weights(tmp_path: Path) -> None:
    path = write_artifact(tmp_path / "model.pt", tabular_config())

    payload = payload_of(path)
    model, config = load_artifact(path)

    assert payload["format"] == ARTIFACT_FORMAT
    assert payload["config"]["feature_names"] == FEATURES
    assert payload["metrics"] == {"loss": 0.5}
    assert isinstance(model, Mlp)
    assert not model.training  # eval mode: dropout off, predictions repeatable
    assert config == tabular_config()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, payload["state_dict"][name])


def test_classifier_predicts_labels_from_feature_mappings_or_rows(tmp_path: Path) -> None:
    model, config = load_artifact(write_artifact(tmp_path / "model.pt", tabular_config()))
    rows = [[160.0, 60.0, 20.0], [185.0, 95.0, 45.0]]

    by_name = predict(model, config, [dict(zip(FEATURES, row, strict=True)) for row in rows])
    by_row = predict(model, config, rows)

    assert by_name == by_row
    with torch.inference_mode():
        logits = model(torch.from_numpy(prepared_inputs(config, rows)))
    assert by_row.outputs == [ANIMALS[i] for i in logits.argmax(dim=1).tolist()]
    assert by_row.probabilities is not None
    assert [sum(p) for p in by_row.probabilities] == pytest.approx([1.0, 1.0])


def test_regressor_predicts_in_target_units(tmp_path: Path) -> None:
    model, config = load_artifact(write_artifact(tmp_path / "model.pt", tabular_config(None)))
    rows = probe_input(config)

    (value,) = predict(model, config, rows).outputs
    with torch.inference_mode():
        standardized = float(model(torch.from_numpy(prepared_inputs(config, rows)))[0, 0])

    assert value == pytest.approx(standardized * 4.0 + 50.0)
    assert predict(model, config, rows).probabilities is None


def test_image_classifier_takes_one_image_or_a_batch_without_the_channel(tmp_path: Path) -> None:
    model, config = load_artifact(write_artifact(tmp_path / "model.pt", image_config()))
    images = np.random.default_rng(3).integers(0, 256, size=(4, 5, 5)).astype(np.uint8)

    batch = predict(model, config, images).outputs

    assert isinstance(model, SmallCnn)
    assert [predict(model, config, image).outputs[0] for image in images] == batch
    with pytest.raises(ValueError, match=r"images must be \(1, 5, 5\)"):
        predict(model, config, np.zeros((2, 4, 4)))


def test_missing_features_are_named(tmp_path: Path) -> None:
    model, config = load_artifact(write_artifact(tmp_path / "model.pt", tabular_config()))

    with pytest.raises(ValueError, match=r"lack feature.* age"):
        predict(model, config, {"height": 1.0, "weight": 2.0})


def test_files_that_are_not_artifacts_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a zip")
    mismatched = write_artifact(tmp_path / "model.pt", tabular_config())
    payload = payload_of(mismatched)
    payload["config"]["input_shape"] = [7]  # the stored weights take 3 features
    torch.save(payload, mismatched)

    with pytest.raises(ArtifactError, match="not a Modelyard model artifact"):
        load_artifact(foreign)
    with pytest.raises(ArtifactError, match="not a readable model artifact"):
        load_artifact(garbage)
    with pytest.raises(ArtifactError, match="weights do not fit"):
        load_artifact(mismatched)
