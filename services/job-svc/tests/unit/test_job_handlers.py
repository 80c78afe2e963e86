"""The job use cases over an in-memory store: quota, idempotent create, pinned versions, reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelyard_events.caller import Caller
from modelyard_events.domain_errors import IllegalTransition, InvalidArgument, NotFound, QuotaExceeded
from modelyard_events.envelope import Actor
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.schemas.training import TrainingStarted
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_job.app import JobCommands, NewJob
from modelyard_job.domain import JobState, plan_named

ALICE = Caller(Actor(subject="alice", roles=("super_admin",)), "corr-1")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PLANS = {"acme": "enterprise", "small": "professional"}


def new_job(org_id: str = "acme", request_id: str | None = None, **overrides: object) -> NewJob:
    fields: dict[str, object] = {
        "org_id": org_id,
        "name": "digits",
        "ai_module": "digit-reader",
        "family": "image_classifier",
        "dataset_uri": "file:///data/digits.npz",
        "hyperparameters": {"epochs": 2},
        "priority": 50,
        "request_id": request_id,
    }
    return NewJob(**(fields | overrides))  # type: ignore[arg-type]


@pytest.fixture
def store() -> InMemoryEventStore:
    return InMemoryEventStore()


@pytest.fixture
def commands(store: InMemoryEventStore) -> JobCommands:
    # These jobs train on file:// data, which only development turns on.
    return JobCommands(store, lambda org: plan_named(PLANS[org]), lambda: NOW, allow_file_datasets=True)


class TestCreatingJobs:
    async def test_a_created_job_is_queued_and_records_who_created_it(self, commands: JobCommands) -> None:
        job = await commands.create(new_job(), ALICE)

        assert job.state is JobState.QUEUED
        assert job.created_by == "alice"
        assert (await commands.load(job.job_id)).version == 2

    async def test_the_same_request_id_returns_the_first_job_and_counts_once(
        self, commands: JobCommands, store: InMemoryEventStore
    ) -> None:
        first = await commands.create(new_job(request_id="r-1"), ALICE)
        again = await commands.create(new_job(request_id="r-1"), ALICE)

        assert again.job_id == first.job_id
        assert len(await store.read_stream("acme/2026-11")) == 1

    async def test_bad_fields_are_refused_before_anything_is_counted(
        self, commands: JobCommands, store: InMemoryEventStore
    ) -> None:
        with pytest.raises(InvalidArgument, match=r"hyperparameters\.epochs"):
            await commands.create(new_job(hyperparameters={"epochs": -1}), ALICE)

        assert await store.read_stream("acme/2026-11") == []

    async def test_the_enterprise_plan_allows_ten_jobs_a_month(self, commands: JobCommands) -> None:
        for _ in range(10):
            await commands.create(new_job(), ALICE)

        with pytest.raises(QuotaExceeded, match="allows 10 training jobs a month"):
            await commands.create(new_job(), ALICE)

    async def test_the_professional_plan_allows_none(self, commands: JobCommands) -> None:
        with pytest.raises(QuotaExceeded, match="includes no training jobs"):
            await commands.create(new_job(org_id="small"), ALICE)

    async def test_a_retry_does_not_count_against_the_quota(self, commands: JobCommands) -> None:
        jobs = [await commands.create(new_job(), ALICE) for _ in range(10)]
        await commands.cancel(jobs[0].job_id, "wrong data", ALICE)

        retried = await commands.retry(jobs[0].job_id, "fixed data", ALICE)

        assert retried.attempt == 2
        assert retried.state is JobState.QUEUED


class TestCommandsOnJobs:
    async def test_a_pinned_version_that_moved_on_is_a_conflict(self, commands: JobCommands) -> None:
        job = await commands.create(new_job(), ALICE)
        await commands.set_priority(job.job_id, 90, ALICE)

        with pytest.raises(ConcurrencyConflict):
            await commands.pause(job.job_id, "", ALICE, expected_version=job.version)

    async def test_an_illegal_transition_is_refused_and_appends_nothing(self, commands: JobCommands) -> None:
        job = await commands.create(new_job(), ALICE)

        with pytest.raises(IllegalTransition, match="resume"):
            await commands.resume(job.job_id, "", ALICE)
        assert (await commands.load(job.job_id)).version == job.version

    async def test_an_unknown_job_is_not_found(self, commands: JobCommands) -> None:
        with pytest.raises(NotFound):
            await commands.cancel("job-missing", "", ALICE)

    async def test_a_reason_is_recorded_with_the_actor(
        self, commands: JobCommands, store: InMemoryEventStore
    ) -> None:
        job = await commands.create(new_job(), ALICE)
        await commands.cancel(job.job_id, "budget cut", ALICE)

        last = (await store.read_stream(job.job_id))[-1]
        assert (last.type, last.data["reason"], last.actor.subject) == ("JobCancelled", "budget cut", "alice")
        assert last.correlation_id == "corr-1"


class TestTrainerReports:
    async def test_the_current_dispatchs_start_report_starts_the_job(self, commands: JobCommands) -> None:
        job = await commands.create(new_job(), ALICE)
        dispatched = await commands.dispatch(job.job_id, "t-1", timedelta(seconds=30), ALICE)
        assert dispatched.current_dispatch is not None
        report = TrainingStarted(
            job_id=job.job_id,
            attempt=1,
            dispatch_id=dispatched.current_dispatch.dispatch_id,
            trainer_id="t-1",
            device="cpu",
            amp=False,
            start_epoch=1,
            start_step=0,
            epochs_total=2,
            steps_per_epoch=10,
            train_samples=100,
            val_samples=20,
        )

        started = await commands.record_report(report, ALICE)
        again = await commands.record_report(report, ALICE)

        assert started.current_dispatch is not None
        assert started.current_dispatch.started
        assert again.version == started.version  # a redelivered report decides nothing

    async def test_a_dispatch_of_a_job_no_longer_queued_is_refused(self, commands: JobCommands) -> None:
        job = await commands.create(new_job(), ALICE)
        await commands.pause(job.job_id, "", ALICE)

        with pytest.raises(IllegalTransition):
            await commands.dispatch(job.job_id, "t-1", timedelta(seconds=30), ALICE)
