"""Dispatching a queued job to a trainer, and what happens when that trainer's lease expires."""

from __future__ import annotations

from datetime import timedelta

import pytest
from job_builders import (
    LEASE_TTL,
    NOW,
    checkpoint_saved,
    decide,
    dispatched_job,
    job_in,
    queued_job,
    running_job,
    with_checkpoint,
)

from modelyard_events.domain_errors import IllegalTransition
from modelyard_events.schemas.jobs import JobCancelled, JobDispatched, JobLeaseExpired, JobPaused, JobQueued
from modelyard_job.domain import JobState, TrainingJob

ALL = list(JobState)


def dispatch(job: TrainingJob, dispatch_id: str = "d-2", trainer_id: str = "t-2") -> TrainingJob:
    return decide(
        job, job.dispatch(trainer_id=trainer_id, dispatch_id=dispatch_id, now=NOW, lease_ttl=LEASE_TTL)
    )


class TestDispatchingAJob:
    def test_a_queued_job_is_leased_to_a_trainer_with_all_it_needs_to_train(self) -> None:
        job = queued_job()

        [event] = job.dispatch(trainer_id="t-1", dispatch_id="d-1", now=NOW, lease_ttl=LEASE_TTL)

        assert isinstance(event, JobDispatched)
        assert event.lease_expires_at == NOW + LEASE_TTL
        assert (event.family, event.dataset_uri, event.checkpoint_uri) == (
            "image_classifier",
            "dataset://digits/versions/1",
            None,
        )
        assert event.hyperparameters == job.hyperparameters

    def test_a_dispatched_job_counts_as_running_but_not_started(self) -> None:
        job = dispatched_job()

        assert job.state is JobState.RUNNING
        assert job.current_dispatch is not None
        assert (job.current_dispatch.dispatch_id, job.current_dispatch.started) == ("d-1", False)

    @pytest.mark.parametrize("state", [s for s in ALL if s is not JobState.QUEUED])
    def test_only_queued_jobs_can_be_dispatched(self, state: JobState) -> None:
        with pytest.raises(
            IllegalTransition, match=f"job j-12 is {state.value}; only queued jobs can be dispatched"
        ):
            job_in(state).dispatch(trainer_id="t-1", dispatch_id="d-9", now=NOW, lease_ttl=LEASE_TTL)

    def test_a_lease_must_last_some_time(self) -> None:
        with pytest.raises(ValueError, match="lease_ttl must be positive"):
            queued_job().dispatch(trainer_id="t-1", dispatch_id="d-1", now=NOW, lease_ttl=timedelta(0))


class TestExpiringALease:
    def test_the_job_goes_back_to_the_queue_at_its_last_checkpoint_in_the_same_attempt(self) -> None:
        job = with_checkpoint(running_job(), "file:///c/e2.pt")

        events = job.expire_lease("d-1")

        assert events[0] == JobLeaseExpired(job_id="j-12", attempt=1, dispatch_id="d-1", trainer_id="t-1")
        assert isinstance(events[1], JobQueued)
        assert (events[1].attempt, events[1].checkpoint_uri) == (1, "file:///c/e2.pt")
        assert decide(job, events).state is JobState.QUEUED
        assert decide(job, events).current_dispatch is None

    def test_the_requeued_job_is_redispatched_resuming_from_that_checkpoint(self) -> None:
        job = with_checkpoint(running_job(), "file:///c/e2.pt")
        job = decide(job, job.expire_lease("d-1"))

        dispatched = job.dispatch(trainer_id="t-2", dispatch_id="d-2", now=NOW, lease_ttl=LEASE_TTL)[0]

        assert isinstance(dispatched, JobDispatched)
        assert (dispatched.checkpoint_uri, dispatched.attempt) == ("file:///c/e2.pt", 1)

    def test_a_lease_that_is_no_longer_current_expires_nothing(self) -> None:
        job = dispatch(decide(running_job(), running_job().expire_lease("d-1")), dispatch_id="d-2")

        assert job.expire_lease("d-1") == []

    @pytest.mark.parametrize("state", [s for s in ALL if s is not JobState.RUNNING])
    def test_a_job_that_is_not_running_has_no_lease_to_expire(self, state: JobState) -> None:
        assert job_in(state).expire_lease("d-1") == []

    def test_a_requested_pause_ends_paused_when_the_trainer_is_lost(self) -> None:
        job = with_checkpoint(running_job(), "file:///c/e2.pt")
        job = decide(job, job.pause("make room"))

        events = job.expire_lease("d-1")

        assert events[1] == JobPaused(
            job_id="j-12", attempt=1, checkpoint_uri="file:///c/e2.pt", reason="make room"
        )
        assert decide(job, events).state is JobState.PAUSED

    def test_a_requested_cancel_ends_cancelled_when_the_trainer_is_lost(self) -> None:
        job = decide(running_job(), running_job().cancel("wrong data"))

        events = job.expire_lease("d-1")

        assert events[1] == JobCancelled(job_id="j-12", attempt=1, reason="wrong data")
        assert decide(job, events).state is JobState.CANCELLED

    def test_a_checkpoint_from_the_expired_dispatch_is_ignored_afterwards(self) -> None:
        job = running_job()
        late = checkpoint_saved(job, "file:///c/late.pt", 3)
        job = dispatch(decide(job, job.expire_lease("d-1")))

        assert job.on_training_report(late) == []
