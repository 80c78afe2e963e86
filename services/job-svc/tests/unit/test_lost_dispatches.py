"""Poison jobs end: dispatches lost to workers that die without a report are capped per attempt."""

from __future__ import annotations

import pytest
from job_builders import LEASE_TTL, NOW, decide, dispatched_job, running_job, with_checkpoint

from modelyard_events.caller import Caller
from modelyard_events.envelope import Actor
from modelyard_events.schemas.jobs import JobFailed, JobLeaseExpired
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_job.app import JobCommands, NewJob
from modelyard_job.domain import JobState, TrainingJob, plan_named
from modelyard_job.domain.lost_dispatches import LostDispatch, poison_reason

SCHEDULER = Caller(Actor(subject="job-svc/dispatcher", roles=("system",)))


def lose(job: TrainingJob, trainer_id: str, max_lost: int = 3) -> TrainingJob:
    """Dispatch the queued job to `trainer_id`, which starts it and then dies: its lease lapses."""
    dispatch_id = f"d-{len(job.lost_dispatches) + 2}"
    job = decide(
        job, job.dispatch(trainer_id=trainer_id, dispatch_id=dispatch_id, now=NOW, lease_ttl=LEASE_TTL)
    )
    return decide(job, job.expire_lease(dispatch_id, max_lost))


def lost_twice() -> TrainingJob:
    """A job whose first two trainers died, the first after recording epoch 2's checkpoint."""
    job = with_checkpoint(running_job(trainer_id="gpu-a"), epochs_done=2)
    job = decide(job, job.expire_lease("d-1"))
    return lose(job, "gpu-b")


class TestLostDispatches:
    def test_a_lapse_below_the_cap_requeues_the_job(self) -> None:
        job = lost_twice()

        assert job.state is JobState.QUEUED
        assert job.lost_dispatches == (LostDispatch("gpu-a", True, 2), LostDispatch("gpu-b", False, 2))

    def test_the_lapse_that_reaches_the_cap_fails_the_job_naming_trainers_and_epochs(self) -> None:
        job = lost_twice()
        job = decide(job, job.dispatch(trainer_id="gpu-c", dispatch_id="d-9", now=NOW, lease_ttl=LEASE_TTL))

        events = job.expire_lease("d-9", max_lost_dispatches=3)

        assert isinstance(events[0], JobLeaseExpired)
        assert isinstance(events[1], JobFailed)
        assert events[1].reason.startswith(
            "lost 3 dispatches to trainers that stopped heartbeating without a report "
            "(gpu-a in epoch 3, gpu-b before starting, gpu-c before starting)"
        )
        assert "out of memory" in events[1].reason
        assert decide(job, events).state is JobState.FAILED

    def test_a_cap_of_one_fails_the_job_at_the_first_lapse(self) -> None:
        events = dispatched_job().expire_lease("d-1", max_lost_dispatches=1)

        assert [type(e) for e in events] == [JobLeaseExpired, JobFailed]

    def test_a_retry_starts_counting_again(self) -> None:
        job = lose(lose(lost_twice(), "gpu-c", max_lost=5), "gpu-d", max_lost=4)
        assert job.state is JobState.FAILED

        job = decide(job, job.retry("more memory now"))

        assert job.lost_dispatches == ()
        assert lose(job, "gpu-e", max_lost=2).state is JobState.QUEUED

    def test_a_requested_pause_still_ends_paused_at_the_cap(self) -> None:
        job = decide(running_job(), running_job().pause("make room"))

        events = job.expire_lease("d-1", max_lost_dispatches=1)

        assert decide(job, events).state is JobState.PAUSED

    def test_the_reason_stays_short_however_many_and_long_the_trainer_ids(self) -> None:
        lost = [LostDispatch("t" * 500 + str(i), True, i) for i in range(100)]

        reason = poison_reason(lost)

        assert len(reason) < 800
        assert "and 95 earlier" in reason
        assert "in epoch 100" in reason


class TestTheLeaseSweepUseCase:
    async def test_the_configured_cap_fails_the_job_instead_of_requeueing_it(self) -> None:
        commands = JobCommands(
            InMemoryEventStore(),
            lambda org: plan_named("enterprise"),
            lambda: NOW,
            allow_file_datasets=True,
            max_lost_dispatches=2,
        )
        new = NewJob("acme", "digits", "digit-reader", "image_classifier", "file:///d.npz", {}, 50)
        job_id = (await commands.create(new, SCHEDULER)).job_id

        outcomes = []
        for trainer_id in ("t-1", "t-2"):
            job = await commands.dispatch(job_id, trainer_id, LEASE_TTL, SCHEDULER)
            assert job.current_dispatch is not None
            job = await commands.expire_lease(job_id, job.current_dispatch.dispatch_id, SCHEDULER)
            outcomes.append(job.state)

        assert outcomes == [JobState.QUEUED, JobState.FAILED]


@pytest.mark.parametrize("cap", [0, -1])
def test_a_cap_below_one_is_a_programming_error(cap: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        dispatched_job().expire_lease("d-1", max_lost_dispatches=cap)
