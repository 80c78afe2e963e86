"""Random sequences of commands and trainer reports keep the TrainingJob's invariants."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import event as note_event
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from job_builders import (
    LEASE_TTL,
    NOW,
    checkpoint_saved,
    create_request,
    epoch_completed,
    progressed,
    started,
    training_cancelled,
    training_completed,
    training_failed,
    training_paused,
)

from modelyard_events.domain_errors import DomainError, IllegalTransition
from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.jobs import JOB_EVENTS
from modelyard_events.schemas.training import TrainingReport
from modelyard_job.domain import TERMINAL_STATES, JobState, TrainingJob

Report = Callable[[TrainingJob, str], TrainingReport]
PROGRESS_REPORTS: list[Report] = [
    lambda job, d: started(job, dispatch_id=d),
    lambda job, d: checkpoint_saved(job, f"file:///c/{d}-{job.version}.pt", job.version % 5, dispatch_id=d),
    lambda job, d: progressed(job),
    lambda job, d: epoch_completed(job),
]
FINAL_REPORTS: list[Report] = [
    lambda job, d: training_completed(job, dispatch_id=d),
    lambda job, d: training_failed(job, dispatch_id=d),
    lambda job, d: training_paused(job, f"file:///c/{d}-paused.pt", dispatch_id=d),
    lambda job, d: training_cancelled(job, dispatch_id=d),
]


def as_read_back(event: DomainEvent) -> DomainEvent:
    """The event as a store would give it back: JSON payload decoded through the job-svc registry."""
    payload = event.model_dump(mode="json")
    decoded = JOB_EVENTS.class_of(event.type_name).model_validate(payload)
    assert decoded == event  # every decided event is valid as the contract states it
    return decoded


class TrainingJobLife(RuleBasedStateMachine):
    """Drives one job through operators' commands, the dispatcher, the lease sweeper and trainers."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[DomainEvent] = []
        self.job = TrainingJob(job_id="j-12")
        self.dispatch_ids: list[str] = ["d-never"]

    @initialize(priority=st.integers(0, 100))
    def create(self, priority: int) -> None:
        self.decide("create", lambda: TrainingJob.create(**create_request(priority=priority)))

    @rule(reason=st.sampled_from(["", "maintenance"]))
    def pause(self, reason: str) -> None:
        self.decide("pause", lambda: self.job.pause(reason))

    @rule()
    def resume(self) -> None:
        self.decide("resume", lambda: self.job.resume())

    @rule()
    def cancel(self) -> None:
        self.decide("cancel", lambda: self.job.cancel("not needed"))

    @rule()
    def retry(self) -> None:
        self.decide("retry", lambda: self.job.retry())

    @rule(priority=st.integers(-1, 101))
    def set_priority(self, priority: int) -> None:
        self.decide("set_priority", lambda: self.job.set_priority(priority))

    @rule(trainer_id=st.sampled_from(["t-1", "t-2"]))
    def dispatch(self, trainer_id: str) -> None:
        dispatch_id = f"d-{len(self.dispatch_ids)}"
        self.dispatch_ids.append(dispatch_id)
        self.decide(
            "dispatch",
            lambda: self.job.dispatch(
                trainer_id=trainer_id, dispatch_id=dispatch_id, now=NOW, lease_ttl=LEASE_TTL
            ),
        )

    @rule(data=st.data())
    def expire_lease(self, data: st.DataObject) -> None:
        dispatch_id = data.draw(st.sampled_from(self.dispatch_ids))
        self.decide("expire_lease", lambda: self.job.expire_lease(dispatch_id))

    # The leaseholder's reports get two rules of their own so that random runs spend time in `running`.
    @precondition(lambda self: self.job.current_dispatch is not None)
    @rule(report=st.sampled_from(PROGRESS_REPORTS))
    def the_leaseholder_makes_progress(self, report: Report) -> None:
        self.leaseholder_reports(report)

    @precondition(lambda self: self.job.current_dispatch is not None)
    @rule(report=st.sampled_from(FINAL_REPORTS))
    def the_leaseholder_stops(self, report: Report) -> None:
        self.leaseholder_reports(report)

    @rule(data=st.data(), report=st.sampled_from(PROGRESS_REPORTS + FINAL_REPORTS))
    def any_trainer_reports(self, data: st.DataObject, report: Report) -> None:
        dispatch_id = data.draw(st.sampled_from(self.dispatch_ids))
        self.decide("report", lambda: self.job.on_training_report(report(self.job, dispatch_id)))

    def leaseholder_reports(self, report: Report) -> None:
        current = self.job.current_dispatch
        assert current is not None
        self.decide("report", lambda: self.job.on_training_report(report(self.job, current.dispatch_id)))

    def decide(self, command: str, decision: Callable[[], list[DomainEvent]]) -> None:
        before = self.job
        try:
            events = decision()
        except DomainError as refusal:
            self.check_refusal(refusal)
            return
        after = before.apply_all(events) if before.version else TrainingJob.rebuild("j-12", events)
        self.check_step(command, before, after)
        for event in events:
            note_event(type(event).__name__)  # --hypothesis-show-statistics shows what the runs reached
            self.history.append(as_read_back(event))
        self.job = after

    def check_refusal(self, refusal: DomainError) -> None:
        # Refusals are expected in random runs; an illegal transition must name the job.
        if isinstance(refusal, IllegalTransition):
            assert refusal.message.startswith("job j-12 "), refusal.message

    def check_step(self, command: str, before: TrainingJob, after: TrainingJob) -> None:
        assert after.attempt >= before.attempt, "attempts only grow"
        if before.version and before.state in TERMINAL_STATES and after.state != before.state:
            assert command == "retry", f"{command} moved a {before.state} job"

    @invariant()
    def state_is_one_of_the_seven(self) -> None:
        assert self.job.state in set(JobState)

    @invariant()
    def only_a_running_job_holds_a_lease(self) -> None:
        assert (self.job.current_dispatch is not None) == (self.job.state is JobState.RUNNING)

    @invariant()
    def outstanding_requests_only_exist_while_running(self) -> None:
        if self.job.state is not JobState.RUNNING:
            assert self.job.pause_request is None
            assert self.job.cancel_request is None

    @invariant()
    def the_stored_events_rebuild_the_same_job(self) -> None:
        if self.history:
            assert TrainingJob.rebuild("j-12", self.history) == self.job
            assert self.job.version == len(self.history)


TrainingJobLife.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestTrainingJobLife = TrainingJobLife.TestCase
