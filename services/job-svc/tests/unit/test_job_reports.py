"""Trainer reports turned into job transitions; stale and duplicate reports change nothing."""

from __future__ import annotations

import pytest
from job_builders import (
    LEASE_TTL,
    NOW,
    checkpoint_saved,
    decide,
    dispatched_job,
    epoch_completed,
    job_in,
    progressed,
    running_job,
    started,
    training_cancelled,
    training_completed,
    training_failed,
    training_paused,
    with_checkpoint,
)

from modelyard_events.schemas.jobs import (
    JobCancelled,
    JobCheckpointRecorded,
    JobCompleted,
    JobFailed,
    JobPaused,
    JobStarted,
)
from modelyard_job.domain import JobState, TrainingJob


def pause_requested(job: TrainingJob, reason: str = "make room") -> TrainingJob:
    return decide(job, job.pause(reason))


def cancel_requested(job: TrainingJob, reason: str = "not needed") -> TrainingJob:
    return decide(job, job.cancel(reason))


class TestTrainingStarts:
    def test_the_first_started_report_marks_the_dispatched_job_started(self) -> None:
        job = dispatched_job()

        events = job.on_training_report(started(job))

        assert events == [
            JobStarted(
                job_id="j-12", attempt=1, dispatch_id="d-1", trainer_id="t-1", device="cpu", start_epoch=1
            )
        ]
        after = decide(job, events)
        assert after.state is JobState.RUNNING
        assert after.current_dispatch is not None
        assert after.current_dispatch.started

    def test_a_redelivered_started_report_is_a_duplicate(self) -> None:
        job = running_job()

        assert job.on_training_report(started(job)) == []


class TestCheckpointsAreRecorded:
    def test_a_saved_checkpoint_becomes_the_resume_point(self) -> None:
        job = running_job()

        events = job.on_training_report(checkpoint_saved(job, "file:///c/e1.pt", 1))

        assert events == [
            JobCheckpointRecorded(
                job_id="j-12",
                attempt=1,
                dispatch_id="d-1",
                epochs_done=1,
                checkpoint_uri="file:///c/e1.pt",
                sha256="ab" * 32,
            )
        ]
        assert decide(job, events).checkpoint_uri == "file:///c/e1.pt"

    def test_the_same_checkpoint_reported_twice_is_recorded_once(self) -> None:
        job = with_checkpoint(running_job(), "file:///c/e2.pt", 2)

        assert job.on_training_report(checkpoint_saved(job, "file:///c/e2.pt", 2)) == []

    def test_an_older_checkpoint_does_not_move_the_resume_point_back(self) -> None:
        job = with_checkpoint(running_job(), "file:///c/e2.pt", 2)

        assert job.on_training_report(checkpoint_saved(job, "file:///c/e1.pt", 1)) == []

    def test_a_new_attempt_records_its_checkpoints_from_the_start_again(self) -> None:
        job = with_checkpoint(running_job(), "file:///c/a1-e2.pt", 2)
        job = decide(job, job.on_training_report(training_failed(job)))
        job = decide(job, job.retry())
        job = decide(job, job.dispatch(trainer_id="t-1", dispatch_id="d-2", now=NOW, lease_ttl=LEASE_TTL))

        events = job.on_training_report(checkpoint_saved(job, "file:///c/a2-e1.pt", 1))

        assert decide(job, events).checkpoint_uri == "file:///c/a2-e1.pt"


class TestTrainingEnds:
    def test_a_completed_report_completes_the_job_with_its_artifact(self) -> None:
        job = running_job()

        [event] = job.on_training_report(training_completed(job))

        assert event == JobCompleted(
            job_id="j-12",
            org_id="org-acme",
            ai_module="digit-reader",
            attempt=1,
            dataset_uri="dataset://digits/versions/1",
            artifact_uri="file:///artifacts/j-12.pt",
            artifact_sha256="cd" * 32,
            artifact_size_bytes=2048,
            metrics={"val_accuracy": 0.97},
            epochs=3,
            name="digits baseline",
            family="image_classifier",
            created_by="alice",
            dataset_manifest_sha256="ef" * 32,
        )
        assert decide(job, [event]).state is JobState.COMPLETED

    def test_a_job_completed_while_a_pause_was_requested_still_completes(self) -> None:
        job = pause_requested(running_job())

        events = job.on_training_report(training_completed(job))

        assert decide(job, events).state is JobState.COMPLETED

    def test_a_failed_report_fails_the_job_with_the_trainers_reason(self) -> None:
        job = running_job()

        events = job.on_training_report(training_failed(job))

        assert events == [JobFailed(job_id="j-12", attempt=1, reason="CUDA out of memory")]
        assert decide(job, events).state is JobState.FAILED

    def test_a_paused_report_pauses_the_job_at_the_reported_checkpoint(self) -> None:
        job = pause_requested(running_job(), "make room")

        events = job.on_training_report(training_paused(job, "file:///c/p.pt"))

        assert events == [
            JobPaused(job_id="j-12", attempt=1, checkpoint_uri="file:///c/p.pt", reason="make room")
        ]
        after = decide(job, events)
        assert (after.state, after.checkpoint_uri, after.current_dispatch) == (
            JobState.PAUSED,
            "file:///c/p.pt",
            None,
        )

    def test_a_paused_report_after_a_later_cancel_request_cancels_the_job(self) -> None:
        job = cancel_requested(pause_requested(running_job()), "not needed")

        events = job.on_training_report(training_paused(job, "file:///c/p.pt"))

        assert events == [JobCancelled(job_id="j-12", attempt=1, reason="not needed")]

    def test_a_cancelled_report_cancels_the_job_with_the_requests_reason(self) -> None:
        job = cancel_requested(running_job(), "not needed")

        events = job.on_training_report(training_cancelled(job))

        assert events == [JobCancelled(job_id="j-12", attempt=1, reason="not needed")]
        assert decide(job, events).state is JobState.CANCELLED


class TestReportsThatChangeNothing:
    def test_progress_and_epoch_reports_leave_the_job_as_it_is(self) -> None:
        job = running_job()

        assert job.on_training_report(progressed(job)) == []
        assert job.on_training_report(epoch_completed(job)) == []

    def test_a_report_from_a_dispatch_that_lost_its_lease_is_stale(self) -> None:
        job = running_job(dispatch_id="d-1")
        job = decide(job, job.expire_lease("d-1"))
        job = decide(job, job.dispatch(trainer_id="t-2", dispatch_id="d-2", now=NOW, lease_ttl=LEASE_TTL))

        assert job.on_training_report(training_completed(job, dispatch_id="d-1")) == []
        assert job.on_training_report(started(job, dispatch_id="d-1")) == []

    def test_a_report_of_the_current_dispatch_by_another_trainer_changes_nothing(self) -> None:
        job = running_job(dispatch_id="d-1", trainer_id="t-1")
        forged = training_completed(job, dispatch_id="d-1").model_copy(update={"trainer_id": "t-2"})

        assert job.on_training_report(forged) == []
        assert job.on_training_report(training_completed(job, dispatch_id="d-1")) != []

    def test_a_report_from_an_earlier_attempt_is_stale(self) -> None:
        job = running_job()

        assert job.on_training_report(started(job, attempt=2)) == []

    @pytest.mark.parametrize("state", [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED])
    def test_a_second_final_report_after_the_job_finished_is_a_duplicate(self, state: JobState) -> None:
        job = job_in(state)

        assert job.on_training_report(training_completed(job, dispatch_id="d-1")) == []
        assert job.on_training_report(training_failed(job, dispatch_id="d-1")) == []

    @pytest.mark.parametrize("state", [JobState.PENDING, JobState.QUEUED, JobState.PAUSED])
    def test_a_job_without_a_trainer_ignores_reports(self, state: JobState) -> None:
        job = job_in(state)

        assert job.on_training_report(started(job, dispatch_id="d-1")) == []
