"""Creating a job: what a valid request records, and how every wrong field is reported."""

from __future__ import annotations

import pytest
from job_builders import create_request

from modelyard_events.domain_errors import InvalidArgument, NotFound
from modelyard_events.schemas.jobs import JobCreated, JobQueued
from modelyard_job.domain import InvalidJobSpec, JobState, TrainingJob


def refusal(**overrides: object) -> InvalidJobSpec:
    with pytest.raises(InvalidJobSpec) as caught:
        TrainingJob.create(**create_request(**overrides))
    return caught.value


class TestCreatingAJob:
    def test_a_valid_request_is_recorded_and_queued_as_attempt_one(self) -> None:
        created, queued = TrainingJob.create(**create_request())

        assert isinstance(created, JobCreated)
        assert (created.job_id, created.org_id, created.ai_module, created.priority) == (
            "j-12",
            "org-acme",
            "digit-reader",
            50,
        )
        assert queued == JobQueued(job_id="j-12", attempt=1, checkpoint_uri=None, reason="created")

    def test_the_family_defaults_are_filled_into_the_recorded_hyperparameters(self) -> None:
        created = TrainingJob.create(**create_request(hyperparameters={"epochs": 3}))[0]

        assert isinstance(created, JobCreated)
        assert created.hyperparameters["epochs"] == 3
        assert created.hyperparameters["batch_size"] == 64
        assert created.hyperparameters["channels"] == 32

    def test_the_rebuilt_job_is_queued_at_stream_version_two(self) -> None:
        request = create_request()
        job = TrainingJob.rebuild("j-12", TrainingJob.create(**request))

        assert job.state is JobState.QUEUED
        assert job.version == 2
        assert job.attempt == 1
        assert job.current_dispatch is None

    def test_the_request_id_is_recorded_for_idempotent_retries(self) -> None:
        created = TrainingJob.create(**create_request(request_id="req-1"))[0]

        assert isinstance(created, JobCreated)
        assert created.request_id == "req-1"


class TestRefusingAnInvalidJob:
    def test_every_wrong_field_is_reported_at_once(self) -> None:
        error = refusal(
            name="  ",
            ai_module="Digit Reader",
            dataset_uri="s3://bucket/digits.csv",
            priority=101,
            hyperparameters={"lr": -1, "learning_rate": 0.1},
        )

        assert set(error.problems) == {
            "name",
            "ai_module",
            "dataset_uri",
            "priority",
            "hyperparameters.lr",
            "hyperparameters.learning_rate",
        }
        assert isinstance(error, InvalidArgument)
        assert error.field == "name"
        for field in error.problems:
            assert f"{field}: " in error.message

    def test_an_unknown_hyperparameter_is_named_with_what_the_family_takes(self) -> None:
        error = refusal(hyperparameters={"learning_rate": 0.1})

        assert error.field == "hyperparameters.learning_rate"
        assert "unknown hyperparameter" in error.message
        assert "lr" in error.problems["hyperparameters.learning_rate"]

    def test_an_out_of_range_hyperparameter_says_what_was_given(self) -> None:
        error = refusal(hyperparameters={"epochs": 0})

        assert error.field == "hyperparameters.epochs"
        assert "got 0" in error.message

    def test_a_missing_required_hyperparameter_is_named(self) -> None:
        error = refusal(family="tabular_classifier", hyperparameters={})

        assert error.problems == {"hyperparameters.target_column": "required for this family"}

    def test_an_unknown_family_is_reported_on_the_family_field(self) -> None:
        error = refusal(family="llm", hyperparameters={"lr": 5})

        assert error.field == "family"
        assert "image_classifier" in error.message
        assert set(error.problems) == {"family"}

    @pytest.mark.parametrize("name", ["", "   ", "x" * 201])
    def test_a_name_must_have_1_to_200_characters(self, name: str) -> None:
        assert refusal(name=name).field == "name"

    @pytest.mark.parametrize("name", ["x", "x" * 200])
    def test_names_at_the_bounds_are_accepted(self, name: str) -> None:
        assert len(TrainingJob.create(**create_request(name=name))) == 2

    @pytest.mark.parametrize("ai_module", ["", "Digit", "digit reader", "-digit", "digit--reader", "d" * 65])
    def test_an_ai_module_must_be_a_slug(self, ai_module: str) -> None:
        error = refusal(ai_module=ai_module)

        assert error.field == "ai_module"
        assert "slug" in error.message

    @pytest.mark.parametrize("ai_module", ["digits", "defect-detector", "line_3", "d" * 64])
    def test_slugs_are_accepted_as_ai_modules(self, ai_module: str) -> None:
        assert len(TrainingJob.create(**create_request(ai_module=ai_module))) == 2

    @pytest.mark.parametrize("uri", ["", "dataset://", "file://", "s3://b/k", "/data/x.csv"])
    def test_a_dataset_uri_must_be_a_dataset_version_or_a_file(self, uri: str) -> None:
        error = refusal(dataset_uri=uri)

        assert error.field == "dataset_uri"
        assert "dataset://" in error.message

    @pytest.mark.parametrize("priority", [-1, 101])
    def test_a_priority_must_be_within_0_and_100(self, priority: int) -> None:
        error = refusal(priority=priority)

        assert error.field == "priority"
        assert f"got {priority}" in error.message

    @pytest.mark.parametrize("priority", [0, 100])
    def test_priorities_at_the_bounds_are_accepted(self, priority: int) -> None:
        assert len(TrainingJob.create(**create_request(priority=priority))) == 2


class TestRebuildingAJob:
    def test_a_job_without_events_does_not_exist(self) -> None:
        with pytest.raises(NotFound, match="job j-404 does not exist"):
            TrainingJob.rebuild("j-404", [])

    def test_the_version_counts_every_recorded_event(self) -> None:
        events = TrainingJob.create(**create_request())
        job = TrainingJob.rebuild("j-12", events)
        events += job.set_priority(80)

        assert TrainingJob.rebuild("j-12", events).version == 3
        assert TrainingJob.rebuild("j-12", events).priority == 80


def test_request_ids_of_two_organizations_never_give_the_same_job() -> None:
    from modelyard_job.app.ids import job_id_for

    assert job_id_for("a/b", "c") != job_id_for("a", "b/c")
    assert job_id_for("acme", "r-1") == job_id_for("acme", "r-1")
