"""Which job events start, pause or cancel a run on this trainer, and which change nothing."""

from __future__ import annotations

from worker_samples import TRAINER_ID, dispatch_of, envelope_of

from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.jobs import (
    JobCancelRequested,
    JobCompleted,
    JobLeaseExpired,
    JobPauseRequested,
    JobQueued,
)
from modelyard_trainer.worker.intake import ControlRun, Decision, Ignore, Intake, StartRun


def decide(intake: Intake, event: DomainEvent) -> Decision:
    return intake.decide(envelope_of(event), event)


class TestDispatches:
    def test_a_dispatch_for_this_trainer_starts_a_run_and_takes_a_slot(self) -> None:
        intake = Intake(TRAINER_ID, slots=1)
        dispatch = dispatch_of()
        envelope = envelope_of(dispatch, org_id="org-9")

        decision = intake.decide(envelope, dispatch)

        assert isinstance(decision, StartRun)
        assert decision.dispatch == dispatch
        assert decision.context.org_id == "org-9"
        assert decision.context.causation_id == str(envelope.event_id)
        assert intake.running_dispatch_ids == [dispatch.dispatch_id]

    def test_a_dispatch_for_another_trainer_is_ignored_without_a_word(self) -> None:
        intake = Intake(TRAINER_ID, slots=1)

        assert decide(intake, dispatch_of(trainer_id="trainer-b")) == Ignore()
        assert intake.running_dispatch_ids == []

    def test_a_dispatch_delivered_twice_runs_once_even_after_it_finished(self) -> None:
        intake = Intake(TRAINER_ID, slots=2)
        dispatch = dispatch_of()
        decide(intake, dispatch)

        again = decide(intake, dispatch)
        intake.finished(dispatch.dispatch_id)
        after_the_end = decide(intake, dispatch)

        assert isinstance(again, Ignore)
        assert "duplicate" in again.reason
        assert isinstance(after_the_end, Ignore)
        assert intake.running_dispatch_ids == []

    def test_a_dispatch_beyond_the_free_slots_is_refused_so_its_lease_lapses(self) -> None:
        intake = Intake(TRAINER_ID, slots=2)
        first, second, third = dispatch_of("job-1"), dispatch_of("job-2"), dispatch_of("job-3")
        decide(intake, first)
        decide(intake, second)

        refused = decide(intake, third)

        assert isinstance(refused, Ignore)
        assert "slot" in refused.reason
        assert intake.running_dispatch_ids == [first.dispatch_id, second.dispatch_id]

    def test_a_finished_run_frees_its_slot_for_the_next_dispatch(self) -> None:
        intake = Intake(TRAINER_ID, slots=1)
        first, second = dispatch_of("job-1"), dispatch_of("job-2")
        decide(intake, first)

        intake.finished(first.dispatch_id)

        assert isinstance(decide(intake, second), StartRun)
        assert intake.running_dispatch_ids == [second.dispatch_id]

    def test_no_dispatch_is_taken_once_the_trainer_stops_taking(self) -> None:
        intake = Intake(TRAINER_ID, slots=1)
        intake.stop_taking()

        decision = decide(intake, dispatch_of())

        assert isinstance(decision, Ignore)
        assert "shutting down" in decision.reason
        assert intake.running_dispatch_ids == []


class TestPauseAndCancel:
    def test_a_pause_request_reaches_the_run_of_that_job_and_attempt(self) -> None:
        intake = Intake(TRAINER_ID, slots=2)
        decide(intake, dispatch_of("job-1"))
        dispatch = dispatch_of("job-2", attempt=3)
        decide(intake, dispatch)

        decision = decide(intake, JobPauseRequested(job_id="job-2", attempt=3))

        assert decision == ControlRun(dispatch.dispatch_id, "pause")

    def test_a_cancel_request_reaches_the_run_of_that_job_and_attempt(self) -> None:
        intake = Intake(TRAINER_ID, slots=1)
        dispatch = dispatch_of("job-1", attempt=2)
        decide(intake, dispatch)

        decision = decide(intake, JobCancelRequested(job_id="job-1", attempt=2))

        assert decision == ControlRun(dispatch.dispatch_id, "cancel")

    def test_requests_for_another_attempt_or_job_or_a_finished_run_change_nothing(self) -> None:
        intake = Intake(TRAINER_ID, slots=1)
        dispatch = dispatch_of("job-1", attempt=2)
        decide(intake, dispatch)

        assert decide(intake, JobCancelRequested(job_id="job-1", attempt=1)) == Ignore()
        assert decide(intake, JobPauseRequested(job_id="job-9", attempt=2)) == Ignore()
        intake.finished(dispatch.dispatch_id)
        assert decide(intake, JobCancelRequested(job_id="job-1", attempt=2)) == Ignore()


class TestLeaseExpiry:
    def test_a_run_whose_lease_expired_is_cancelled(self) -> None:
        intake = Intake(TRAINER_ID, slots=1)
        dispatch = dispatch_of("job-1")
        decide(intake, dispatch)

        decision = decide(
            intake,
            JobLeaseExpired(
                job_id="job-1", attempt=1, dispatch_id=dispatch.dispatch_id, trainer_id=TRAINER_ID
            ),
        )

        assert decision == ControlRun(dispatch.dispatch_id, "cancel")

    def test_an_expired_lease_of_a_dispatch_not_running_here_changes_nothing(self) -> None:
        intake = Intake(TRAINER_ID, slots=1)
        decide(intake, dispatch_of("job-1"))

        expired = JobLeaseExpired(job_id="job-1", attempt=1, dispatch_id="dsp-other", trainer_id="trainer-b")

        assert decide(intake, expired) == Ignore()


def test_other_job_events_change_nothing() -> None:
    intake = Intake(TRAINER_ID, slots=1)
    decide(intake, dispatch_of("job-1"))
    completed = JobCompleted(
        job_id="job-1",
        org_id="org-1",
        ai_module="m",
        attempt=1,
        dataset_uri="file:///d",
        artifact_uri="file:///a",
        artifact_sha256="0" * 64,
        artifact_size_bytes=1,
        metrics={},
        epochs=1,
    )

    assert decide(intake, JobQueued(job_id="job-2", attempt=1)) == Ignore()
    assert intake.decide(envelope_of(completed), completed) == Ignore()
