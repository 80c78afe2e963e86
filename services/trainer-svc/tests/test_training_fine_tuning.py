"""Fine-tuning: a run starts from a base artifact's weights, and a base that does not fit is refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from trainer_samples import RecordingObserver, SpecFactory, blobs, write_csv

from modelyard_events.schemas.hyperparameters import validate_hyperparameters
from modelyard_trainer.training import (
    Completed,
    IncompatibleBaseError,
    TrainingControl,
    TrainingSpec,
    check_base_compatible,
    load_artifact,
    run_training,
)

# Adam moves each weight by about lr per step: with 1e-6 and a few steps a run barely leaves its start.
STILL = {"target_column": "animal", "epochs": 1, "lr": 1e-6}


def animals(path: Path, rows: int = 300, labels: tuple[str, str] = ("cat", "dog")) -> Path:
    features, names = blobs(rows)
    named = np.where(names == "cat", labels[0], labels[1])
    table = [[*map(float, row), label] for row, label in zip(features, named, strict=True)]
    return write_csv(path, ["a", "b", "c", "animal"], table)


def weights(path: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(path, weights_only=True)["state_dict"]
    return state


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Completed:
    folder = tmp_path_factory.mktemp("base")
    hyperparameters = validate_hyperparameters(
        "tabular_classifier", {"target_column": "animal", "epochs": 5, "lr": 1e-2}
    )
    dataset = animals(folder / "animals.csv")
    spec = TrainingSpec(
        "job-b", 1, "tabular_classifier", dataset.as_uri(), hyperparameters, folder / "run", device="cpu"
    )
    outcome = run_training(spec, RecordingObserver(), TrainingControl())
    assert isinstance(outcome, Completed)
    return outcome


def test_a_fine_tuned_run_starts_from_the_base_weights(
    base: Completed, tmp_path: Path, make_spec: SpecFactory
) -> None:
    dataset = animals(tmp_path / "more.csv", rows=200)
    scratch = make_spec("tabular_classifier", dataset, "scratch", **STILL)
    tuned = replace(scratch, workdir=tmp_path / "tuned", base_artifact=base.artifact_path)

    from_scratch = run_training(scratch, RecordingObserver(), TrainingControl())
    fine_tuned = run_training(tuned, RecordingObserver(), TrainingControl())

    assert isinstance(from_scratch, Completed)
    assert isinstance(fine_tuned, Completed)
    start, after = weights(base.artifact_path), weights(fine_tuned.artifact_path)
    assert all(torch.allclose(start[name], after[name], atol=1e-4) for name in start)
    assert not torch.allclose(start["0.weight"], weights(from_scratch.artifact_path)["0.weight"], atol=1e-2)
    assert fine_tuned.metrics["val_accuracy"] > 0.9  # measured 0.975: the base's skill, kept
    assert fine_tuned.metrics["val_loss"] < 0.5 * from_scratch.metrics["val_loss"]


def test_other_class_labels_are_refused_naming_the_difference(
    base: Completed, tmp_path: Path, make_spec: SpecFactory
) -> None:
    dataset = animals(tmp_path / "other.csv", labels=("cat", "eel"))
    spec = replace(make_spec("tabular_classifier", dataset, **STILL), base_artifact=base.artifact_path)

    with pytest.raises(
        IncompatibleBaseError,
        match="class labels differ first at position 1: the base has 'dog', this data 'eel'",
    ):
        run_training(spec, RecordingObserver(), TrainingControl())


def test_another_network_size_is_refused_naming_it(
    base: Completed, tmp_path: Path, make_spec: SpecFactory
) -> None:
    dataset = animals(tmp_path / "same.csv")
    spec = make_spec("tabular_classifier", dataset, hidden_layers=[32], **STILL)

    with pytest.raises(
        IncompatibleBaseError, match=r"the base has hidden_layers \[64, 64\], this run \[32\]"
    ):
        run_training(replace(spec, base_artifact=base.artifact_path), RecordingObserver(), TrainingControl())


def test_every_difference_is_named_at_once(base: Completed) -> None:
    _, config = load_artifact(base.artifact_path)

    with pytest.raises(IncompatibleBaseError) as refused:
        check_base_compatible(config, "image_classifier", (1, 8, 8), list(range(10)))

    message = str(refused.value)
    assert "the base is a tabular_classifier, this run trains image_classifier" in message
    assert "the base takes inputs of shape (3,), this data (1, 8, 8)" in message
    assert "the base has 2 class labels ('cat', 'dog'), this data 10 (0, 1, 2," in message
    check_base_compatible(config, "tabular_classifier", (3,), ["cat", "dog"], feature_names=["a", "b", "c"])
    with pytest.raises(IncompatibleBaseError, match="feature columns differ first at position 0"):
        check_base_compatible(
            config, "tabular_classifier", (3,), ["cat", "dog"], feature_names=["c", "b", "a"]
        )


def test_a_checkpoint_to_resume_from_wins_over_the_base(tmp_path: Path, make_spec: SpecFactory) -> None:
    dataset = animals(tmp_path / "animals.csv")
    first = RecordingObserver()
    spec = make_spec("tabular_classifier", dataset, target_column="animal", epochs=2)
    straight = run_training(spec, first, TrainingControl())
    _, checkpoint = first.epochs[0]
    not_an_artifact = tmp_path / "missing.pt"  # loading it would fail the run

    resumed = run_training(
        replace(
            spec, workdir=tmp_path / "resumed", resume_from=checkpoint.path, base_artifact=not_an_artifact
        ),
        RecordingObserver(),
        TrainingControl(),
    )

    assert isinstance(straight, Completed)
    assert isinstance(resumed, Completed)
    assert resumed.metrics == straight.metrics


def test_an_unreadable_base_fails_the_run_naming_it(tmp_path: Path, make_spec: SpecFactory) -> None:
    dataset = animals(tmp_path / "animals.csv")
    missing = tmp_path / "missing.pt"
    spec = replace(make_spec("tabular_classifier", dataset, **STILL), base_artifact=missing)

    with pytest.raises(IncompatibleBaseError, match=f"cannot fine-tune from base {missing}"):
        run_training(spec, RecordingObserver(), TrainingControl())
