"""Fine-tuning and evaluation runs in the TrainingJob aggregate: what each kind records, carries to its
trainer, and ends with."""

from __future__ import annotations

import pytest
from job_builders import (
    LEASE_TTL,
    NOW,
    create_request,
    decide,
    evaluation_completed,
    evaluation_report,
    evaluation_run,
    model_input,
    queued_job,
    running_evaluation,
    running_job,
    training_completed,
    training_failed,
)

from modelyard_events.domain_errors import IllegalTransition
from modelyard_events.schemas.jobs import (
    JobCompleted,
    JobCreated,
    JobDispatched,
    JobEvaluationCompleted,
    JobFailed,
    JobQueued,
)
from modelyard_job.domain import InvalidJobSpec, JobState, TrainingJob


def refusal(**overrides: object) -> InvalidJobSpec:
    with pytest.raises(InvalidJobSpec) as caught:
        TrainingJob.create(**create_request(**overrides))
    return caught.value


class TestFineTuning:
    def test_a_job_with_a_base_version_records_it_as_its_model_input(self) -> None:
        created = TrainingJob.create(**create_request(model_input=model_input(), description="more data"))[0]

        assert isinstance(created, JobCreated)
        assert (created.kind, created.model_input, created.description) == (
            "training",
            model_input(),
            "more data",
        )

    def test_the_dispatch_tells_the_trainer_which_version_to_start_from(self) -> None:
        job = queued_job(model_input=model_input())

        [dispatched] = job.dispatch(trainer_id="t-1", dispatch_id="d-1", now=NOW, lease_ttl=LEASE_TTL)

        assert isinstance(dispatched, JobDispatched)
        assert (dispatched.kind, dispatched.model_input, dispatched.evaluation_split) == (
            "training",
            model_input(),
            None,
        )

    def test_the_completed_job_names_its_base_and_what_the_registry_needs(self) -> None:
        job = running_job(model_input=model_input(), description="more data")

        [completed] = job.on_training_report(training_completed(job))

        assert isinstance(completed, JobCompleted)
        assert (completed.base_version_id, completed.description, completed.name) == (
            "mv-7",
            "more data",
            "digits baseline",
        )
        assert (completed.family, completed.created_by) == ("image_classifier", "alice")
        assert completed.dataset_manifest_sha256 == "ef" * 32

    def test_a_job_trained_from_scratch_completes_without_a_base(self) -> None:
        job = running_job()

        [completed] = job.on_training_report(training_completed(job))

        assert isinstance(completed, JobCompleted)
        assert completed.base_version_id is None

    def test_a_base_of_another_module_is_refused_naming_the_base(self) -> None:
        problems = refusal(model_input=model_input(ai_module="face-finder")).problems

        assert problems == {
            "base_version_id": "model version mv-7 belongs to ai_module 'face-finder', not 'digit-reader'"
        }

    def test_a_training_job_measures_no_split(self) -> None:
        assert "kind" in refusal(evaluation_split="val").problems

    def test_a_description_over_two_thousand_characters_is_refused(self) -> None:
        assert refusal(description="x" * 2001).problems == {
            "description": "must be at most 2,000 characters; got 2,001"
        }


class TestEvaluationRunsAreCreated:
    def test_the_registrys_request_becomes_a_queued_evaluation_job(self) -> None:
        created, queued = TrainingJob.create_evaluation(evaluation_run(priority=70))

        assert isinstance(created, JobCreated)
        assert (created.job_id, created.org_id, created.kind, created.priority) == (
            "j-12",
            "org-acme",
            "evaluation",
            70,
        )
        assert (created.name, created.created_by) == ("evaluate digit-reader 1.2.0", "bob")
        assert (created.model_input, created.evaluation_split, created.evaluation_id) == (
            model_input(),
            "val",
            "ev-1",
        )
        assert created.dataset_uri == "dataset://digits/1"
        assert queued == JobQueued(job_id="j-12", attempt=1, reason="created")

    def test_an_evaluation_has_no_hyperparameters_of_its_own(self) -> None:
        # The trainer evaluates with the artifact's configuration; a tabular family has no default
        # target column that could be filled in here.
        created = TrainingJob.create_evaluation(evaluation_run(family="tabular_classifier"))[0]

        assert isinstance(created, JobCreated)
        assert created.hyperparameters == {}

    def test_the_dispatch_carries_the_version_and_split_to_measure(self) -> None:
        job = TrainingJob.rebuild("j-12", TrainingJob.create_evaluation(evaluation_run()))

        [dispatched] = job.dispatch(trainer_id="t-1", dispatch_id="d-1", now=NOW, lease_ttl=LEASE_TTL)

        assert isinstance(dispatched, JobDispatched)
        assert (dispatched.kind, dispatched.model_input, dispatched.evaluation_split) == (
            "evaluation",
            model_input(),
            "val",
        )

    def test_an_unknown_family_is_still_refused(self) -> None:
        with pytest.raises(InvalidJobSpec, match="unknown family 'llm'"):
            TrainingJob.create_evaluation(evaluation_run(family="llm"))

    def test_an_evaluation_without_version_split_or_evaluation_is_refused_naming_each(self) -> None:
        problems = refusal(kind="evaluation").problems

        assert set(problems) >= {"model_input", "evaluation_split", "evaluation_id"}

    def test_a_refused_request_is_recorded_as_a_job_failed_at_once_with_the_reason(self) -> None:
        events = TrainingJob.refuse_evaluation(evaluation_run(), "dataset://digits/1 is not ready")

        job = TrainingJob.rebuild("j-12", events)
        assert isinstance(events[0], JobCreated)
        assert events[1] == JobFailed(
            job_id="j-12", attempt=1, reason="not started: dataset://digits/1 is not ready"
        )
        assert (job.state, job.kind, job.evaluation_id) == (JobState.FAILED, "evaluation", "ev-1")


class TestEvaluationRunsEnd:
    def test_the_trainers_figures_complete_the_job_for_the_registry(self) -> None:
        job = running_evaluation()

        events = job.on_training_report(evaluation_completed(job))

        assert events == [
            JobEvaluationCompleted(
                job_id="j-12",
                org_id="org-acme",
                ai_module="digit-reader",
                attempt=1,
                model_version_id="mv-7",
                evaluation_id="ev-1",
                report=evaluation_report(),
            )
        ]
        assert decide(job, events).state is JobState.COMPLETED
        assert decide(job, events).current_dispatch is None

    def test_figures_of_a_dispatch_that_is_no_longer_current_change_nothing(self) -> None:
        job = running_evaluation()

        assert job.on_training_report(evaluation_completed(job, dispatch_id="d-old")) == []

    def test_a_trained_model_reported_for_an_evaluation_fails_it_naming_the_trainer(self) -> None:
        job = running_evaluation()

        [failed] = job.on_training_report(training_completed(job))

        assert isinstance(failed, JobFailed)
        assert failed.reason == (
            "trainer t-1 reported TrainingCompleted for evaluation job j-12; "
            "it does not run evaluation jobs (upgrade the trainer)"
        )

    def test_figures_reported_for_a_training_job_fail_it(self) -> None:
        job = running_job()

        [failed] = job.on_training_report(evaluation_completed(job))

        assert isinstance(failed, JobFailed)
        assert "reported EvaluationCompleted for training job j-12" in failed.reason

    def test_a_failed_evaluation_is_not_retried_the_registry_asks_again(self) -> None:
        job = running_evaluation()
        job = decide(job, job.on_training_report(training_failed(job)))

        with pytest.raises(IllegalTransition, match="ask the registry for a new one"):
            job.retry()
