"""A dataset version too big for the worker's memory fails its run before any sample is decoded."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from trainer_dataset_samples import (
    SampleFile,
    blob_csv_files,
    blob_path,
    manifest_of,
    materialize_by_hand,
    png_bytes,
)
from trainer_samples import RecordingObserver, SpecFactory
from worker_samples import dispatch_of, settings_for

from modelyard_events.schemas.hyperparameters import validate_hyperparameters
from modelyard_trainer.training import TrainingControl, TrainingDataError, run_training
from modelyard_trainer.training.data import load_training_data
from modelyard_trainer.training.memory_budget import (
    IMAGE_BYTES_PER_VALUE,
    TABLE_BYTES_PER_CELL,
    TABLE_BYTES_PER_FILE_BYTE,
    loading_bytes,
)
from modelyard_trainer.training.version_files import read_materialized_version
from modelyard_trainer.worker.spec import training_spec

CLASSES = ["cat", "dog"]


def rgb_files(count: int, side: int = 6) -> list[SampleFile]:
    """`count` RGB images, every fifth a val image and every tenth a test image (held out)."""
    rng = np.random.default_rng(1)
    return [
        SampleFile(
            f"img-{i}.png",
            png_bytes(rng.integers(0, 255, (side, side, 3))),
            "test" if i % 10 == 9 else "val" if i % 5 == 4 else "train",
            CLASSES[i % 2],
        )
        for i in range(count)
    ]


def image_version(cache: Path, files: list[SampleFile]) -> Path:
    return materialize_by_hand(cache, files, manifest_of(files, CLASSES))


class TestEstimatingWhatLoadingNeeds:
    def test_images_count_their_decoded_values_of_train_and_val_only(self, tmp_path: Path) -> None:
        files = rgb_files(20)
        version = read_materialized_version(image_version(tmp_path, files))
        assert version is not None
        loaded = sum(f.split != "test" for f in files)

        assert loading_bytes(version, "image_classifier") == loaded * 6 * 6 * 3 * IMAGE_BYTES_PER_VALUE

    def test_tables_count_their_cells_and_bytes(self, tmp_path: Path) -> None:
        files = blob_csv_files(rows=30)
        manifest = materialize_by_hand(tmp_path, files, manifest_of(files))
        version = read_materialized_version(manifest)
        assert version is not None
        expected = sum(
            TABLE_BYTES_PER_CELL * (f.data.count(b",") + f.data.count(b"\n") + 1)
            + TABLE_BYTES_PER_FILE_BYTE * len(f.data)
            for f in files
        )

        assert loading_bytes(version, "tabular_classifier") == expected


class TestTheBudget:
    def test_a_version_over_the_budget_is_refused_before_any_sample_is_decoded(self, tmp_path: Path) -> None:
        files = rgb_files(20)
        manifest = image_version(tmp_path, files)
        tampered = blob_path(tmp_path, files[0].sha256)
        tampered.write_bytes(files[1].data)  # loading would refuse (and remove) it; the budget comes first
        hyperparameters = validate_hyperparameters("image_classifier", {})

        with pytest.raises(TrainingDataError) as refused:
            load_training_data(
                "image_classifier", manifest.as_uri(), hyperparameters, memory_budget_bytes=1000
            )

        assert "dataset ds-1 v1 needs about 0.0 GB of memory to load" in str(refused.value)
        assert "MODELYARD_TRAINER_MEMORY_BUDGET_BYTES" in str(refused.value)
        assert tampered.exists()

    def test_a_version_within_the_budget_loads(self, tmp_path: Path) -> None:
        manifest = image_version(tmp_path, rgb_files(20))
        hyperparameters = validate_hyperparameters("image_classifier", {})

        data = load_training_data("image_classifier", manifest.as_uri(), hyperparameters, 10**6)

        assert (len(data.train_x), len(data.val_x)) == (16, 2)  # test held out

    def test_a_run_over_the_budget_fails_before_it_starts(
        self, tmp_path: Path, make_spec: SpecFactory, observer: RecordingObserver
    ) -> None:
        spec = make_spec("image_classifier", image_version(tmp_path, rgb_files(20)))
        spec = replace(spec, memory_budget_bytes=1)

        with pytest.raises(TrainingDataError, match="needs about"):
            run_training(spec, observer, TrainingControl())
        assert observer.starts == []


def test_a_run_gets_its_share_of_the_workers_budget(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, trainer_memory_budget_bytes=8_000_000_000, trainer_slots=4)

    spec = training_spec(dispatch_of(dataset_uri="file:///data/x.npz"), settings)

    assert spec.memory_budget_bytes == 2_000_000_000
