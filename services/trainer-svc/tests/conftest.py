"""Fixtures of the trainer tests: tiny datasets on disk, a spec builder and a recording observer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from trainer_samples import RecordingObserver, SpecFactory

from modelyard_events.schemas.hyperparameters import validate_hyperparameters
from modelyard_trainer.datasets.digits import export_digits
from modelyard_trainer.training import TrainingSpec


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


@pytest.fixture(scope="session")
def digits_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_digits(tmp_path_factory.mktemp("datasets") / "digits.npz")


@pytest.fixture
def make_spec(tmp_path: Path) -> SpecFactory:
    """A CPU spec for `family` on `dataset`; hyperparameters from keywords; workdir under tmp_path."""

    def build(family: str, dataset: Path, workdir: str = "run", **values: Any) -> TrainingSpec:
        options = {
            key: values.pop(key) for key in ("resume_from", "progress_interval_s", "device") if key in values
        }
        options.setdefault("device", "cpu")
        hyperparameters = validate_hyperparameters(family, values)
        return TrainingSpec(
            "job-1", 1, family, dataset.as_uri(), hyperparameters, tmp_path / workdir, **options
        )

    return build
