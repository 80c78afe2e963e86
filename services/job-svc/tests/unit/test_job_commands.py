"""Pause, resume, cancel, retry and priority changes: every legal move and every refusal, message checked."""

from __future__ import annotations

import pytest
from job_builders import (
    LEASE_TTL,
    NOW,
    decide,
    dispatched_job,
    job_in,
    paused_job,
    queued_job,
    running_job,
    with_checkpoint,
)

from modelyard_events.domain_errors import IllegalTransition, InvalidArgument
from modelyard_events.schemas.jobs import (
    JobCancelled,
    JobCancelRequested,
    JobDispatched,
    JobPaused,
    JobPauseRequested,
    JobPriorityChanged,
    JobQueued,
    JobResumed,
    JobRetried,
)
from modelyard_job.domain import JobState

ALL = list(JobState)
TERMINAL = [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED]


class TestPausingAJob:
    def test_a_queued_job_is_paused_at_once_keeping_its_checkpoint(self) -> None:
        job = with_checkpoint(running_job(), "file:///c/e2.pt")
        job = decide(job, job.expire_lease("d-1"))  # back in the queue with its checkpoint

        events = job.pause("maintenance")

        assert events == [
            JobPaused(job_id="j-12", attempt=1, checkpoint_uri="file:///c/e2.pt", reason="maintenance")
        ]
        assert decide(job, events).state is JobState.PAUSED

    def test_a_running_job_asks_its_trainer_to_checkpoint_and_stays_running(self) -> None:
        job = running_job()

        events = job.pause("make room")

        assert events == [JobPauseRequested(job_id="j-12", attempt=1, reason="make room")]
        assert decide(job, events).state is JobState.RUNNING
        assert decide(job, events).pause_request == "make room"

    def test_a_dispatched_job_not_yet_started_is_asked_to_pause_like_a_running_one(self) -> None:
        assert dispatched_job().pause() == [JobPauseRequested(job_id="j-12", attempt=1)]

    def test_a_second_pause_while_the_trainer_checkpoints_is_refused(self) -> None:
        job = decide(running_job(), running_job().pause())

        with pytest.raises(IllegalTransition, match="job j-12 is already being paused"):
            job.pause()

    def test_a_job_being_cancelled_cannot_be_paused(self) -> None:
        job = decide(running_job(), running_job().cancel())

        with pytest.raises(IllegalTransition, match="job j-12 is being cancelled; it cannot be paused"):
            job.pause()

    @pytest.mark.parametrize("state", [JobState.PENDING, JobState.PAUSED, *TERMINAL])
    def test_only_queued_or_running_jobs_can_be_paused(self, state: JobState) -> None:
        message = f"job j-12 is {state.value}; only queued or running jobs can be paused"
        with pytest.raises(IllegalTransition, match=message):
            job_in(state).pause()


class TestResumingAJob:
    def test_a_paused_job_is_queued_again_from_its_last_checkpoint(self) -> None:
        job = paused_job("file:///c/e2.pt")

        events = job.resume("room again")

        assert events == [
            JobResumed(job_id="j-12", attempt=1, reason="room again"),
            JobQueued(job_id="j-12", attempt=1, checkpoint_uri="file:///c/e2.pt", reason="resumed"),
        ]
        assert decide(job, events).state is JobState.QUEUED

    def test_the_resumed_job_is_dispatched_with_its_checkpoint(self) -> None:
        job = paused_job("file:///c/e2.pt")
        job = decide(job, job.resume())

        dispatched = job.dispatch(trainer_id="t-2", dispatch_id="d-2", now=NOW, lease_ttl=LEASE_TTL)[0]

        assert isinstance(dispatched, JobDispatched)
        assert dispatched.checkpoint_uri == "file:///c/e2.pt"

    @pytest.mark.parametrize("state", [s for s in ALL if s is not JobState.PAUSED])
    def test_only_paused_jobs_can_be_resumed(self, state: JobState) -> None:
        with pytest.raises(
            IllegalTransition, match=f"job j-12 is {state.value}; only paused jobs can be resumed"
        ):
            job_in(state).resume()


class TestCancellingAJob:
    @pytest.mark.parametrize("state", [JobState.PENDING, JobState.QUEUED, JobState.PAUSED])
    def test_a_job_without_a_trainer_is_cancelled_at_once(self, state: JobState) -> None:
        job = job_in(state)

        events = job.cancel("wrong dataset")

        assert events == [JobCancelled(job_id="j-12", attempt=1, reason="wrong dataset")]
        assert decide(job, events).state is JobState.CANCELLED

    def test_a_running_job_asks_its_trainer_to_stop_and_stays_running(self) -> None:
        job = running_job()

        events = job.cancel("wrong dataset")

        assert events == [JobCancelRequested(job_id="j-12", attempt=1, reason="wrong dataset")]
        assert decide(job, events).state is JobState.RUNNING

    def test_a_job_being_paused_can_still_be_cancelled(self) -> None:
        job = decide(running_job(), running_job().pause())

        assert job.cancel() == [JobCancelRequested(job_id="j-12", attempt=1)]

    def test_a_second_cancel_while_the_trainer_stops_is_refused(self) -> None:
        job = decide(running_job(), running_job().cancel())

        with pytest.raises(IllegalTransition, match="job j-12 is already being cancelled"):
            job.cancel()

    @pytest.mark.parametrize("state", TERMINAL)
    def test_a_finished_job_cannot_be_cancelled(self, state: JobState) -> None:
        message = f"job j-12 is {state.value}; only pending, queued, running or paused jobs can be cancelled"
        with pytest.raises(IllegalTransition, match=message):
            job_in(state).cancel()


class TestRetryingAJob:
    @pytest.mark.parametrize("state", [JobState.FAILED, JobState.CANCELLED])
    def test_a_failed_or_cancelled_job_starts_a_new_attempt_from_scratch(self, state: JobState) -> None:
        job = job_in(state)

        events = job.retry("fixed the data")

        assert events == [
            JobRetried(job_id="j-12", attempt=2, reason="fixed the data"),
            JobQueued(job_id="j-12", attempt=2, checkpoint_uri=None, reason="retried: attempt 2"),
        ]
        assert decide(job, events).state is JobState.QUEUED

    def test_a_retried_job_forgets_the_checkpoint_of_the_earlier_attempt(self) -> None:
        job = with_checkpoint(running_job(), "file:///c/e2.pt")
        job = decide(job, job.cancel())
        job = decide(job, job.expire_lease("d-1"))  # the trainer died while stopping: cancelled
        job = decide(job, job.retry())

        dispatched = job.dispatch(trainer_id="t-2", dispatch_id="d-2", now=NOW, lease_ttl=LEASE_TTL)[0]

        assert isinstance(dispatched, JobDispatched)
        assert (dispatched.attempt, dispatched.checkpoint_uri) == (2, None)

    def test_each_retry_counts_one_more_attempt(self) -> None:
        job = job_in(JobState.FAILED)
        job = decide(job, job.retry())
        job = decide(job, job.cancel())

        assert job.retry()[0] == JobRetried(job_id="j-12", attempt=3)

    @pytest.mark.parametrize("state", [s for s in ALL if s not in (JobState.FAILED, JobState.CANCELLED)])
    def test_only_failed_or_cancelled_jobs_can_be_retried(self, state: JobState) -> None:
        message = f"job j-12 is {state.value}; only failed or cancelled jobs can be retried"
        with pytest.raises(IllegalTransition, match=message):
            job_in(state).retry()


class TestChangingThePriority:
    @pytest.mark.parametrize("state", [JobState.PENDING, JobState.QUEUED, JobState.RUNNING, JobState.PAUSED])
    def test_an_unfinished_job_takes_a_new_priority(self, state: JobState) -> None:
        job = job_in(state)

        events = job.set_priority(90)

        assert events == [JobPriorityChanged(job_id="j-12", priority=90, previous_priority=50)]
        assert decide(job, events).priority == 90

    def test_the_same_priority_is_refused_as_a_no_op(self) -> None:
        with pytest.raises(IllegalTransition, match="job j-12 already has priority 50; nothing to change"):
            queued_job().set_priority(50)

    @pytest.mark.parametrize("priority", [-1, 101])
    def test_a_priority_outside_0_to_100_is_an_invalid_argument(self, priority: int) -> None:
        with pytest.raises(InvalidArgument, match=f"priority: must be between 0 .* got {priority}"):
            queued_job().set_priority(priority)

    @pytest.mark.parametrize("state", TERMINAL)
    def test_a_finished_job_keeps_its_priority(self, state: JobState) -> None:
        with pytest.raises(
            IllegalTransition, match=f"job j-12 is {state.value}; only pending, queued, running"
        ):
            job_in(state).set_priority(90)
