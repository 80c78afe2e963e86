"""Hyperparameters that would not fit a worker's memory are refused at CreateJob, naming field and cap."""

from __future__ import annotations

import pytest
from job_builders import create_request

from modelyard_job.domain import InvalidJobSpec, TrainingJob
from modelyard_job.domain.hyperparameter_caps import (
    MAX_BATCH_SIZE,
    MAX_CHANNELS,
    MAX_HIDDEN_LAYERS,
    MAX_HIDDEN_UNITS,
)

TABULAR = {"family": "tabular_classifier"}


def problems(**overrides: object) -> dict[str, str]:
    with pytest.raises(InvalidJobSpec) as caught:
        TrainingJob.create(**create_request(**overrides))
    return caught.value.problems


def accepted(**overrides: object) -> bool:
    return bool(TrainingJob.create(**create_request(**overrides)))


class TestHyperparameterCaps:
    def test_a_batch_above_the_cap_is_refused_naming_the_cap_and_the_value(self) -> None:
        found = problems(hyperparameters={"batch_size": 65536})

        assert found == {
            "hyperparameters.batch_size": "at most 4096 samples a step (this platform's cap, so a run "
            "fits a worker's memory); got 65536"
        }

    def test_too_many_hidden_layers_are_refused(self) -> None:
        hidden = [64] * (MAX_HIDDEN_LAYERS + 1)

        found = problems(**TABULAR, hyperparameters={"target_column": "y", "hidden_layers": hidden})

        assert found["hyperparameters.hidden_layers"].startswith(f"at most {MAX_HIDDEN_LAYERS} layers")

    def test_a_hidden_layer_wider_than_the_cap_is_refused(self) -> None:
        hidden = [64, 8192, 64]

        found = problems(**TABULAR, hyperparameters={"target_column": "y", "hidden_layers": hidden})

        assert found["hyperparameters.hidden_layers"].startswith(f"at most {MAX_HIDDEN_UNITS} units")
        assert found["hyperparameters.hidden_layers"].endswith("got 8192")

    def test_cnn_channels_above_the_cap_are_refused(self) -> None:
        found = problems(hyperparameters={"channels": 512})

        assert "hyperparameters.channels" in found

    def test_caps_are_reported_with_every_other_wrong_field(self) -> None:
        found = problems(name=" ", hyperparameters={"batch_size": 10_000, "channels": 300})

        assert set(found) == {"name", "hyperparameters.batch_size", "hyperparameters.channels"}

    def test_values_at_the_caps_are_accepted(self) -> None:
        at_caps = {"target_column": "y", "batch_size": MAX_BATCH_SIZE}
        at_caps["hidden_layers"] = [MAX_HIDDEN_UNITS] * MAX_HIDDEN_LAYERS  # type: ignore[assignment]

        assert accepted(**TABULAR, hyperparameters=at_caps)
        assert accepted(hyperparameters={"channels": MAX_CHANNELS, "batch_size": MAX_BATCH_SIZE})
