"""The TrainingJob aggregate: state folded from the job's events; commands that decide new events.

A command never changes the job: it checks the rules against the current state and returns the events
to append (or raises a DomainError). `apply` folds one event into a new state and never fails, so a
stream that was accepted once always rebuilds. The handler's loop is
`job = TrainingJob.rebuild(job_id, stored)` → `events = job.pause(reason)` → append at `job.version`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from modelyard_events.domain_errors import IllegalTransition, InvalidArgument, NotFound
from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.jobs import (
    JobCancelled,
    JobCancelRequested,
    JobCreated,
    JobDispatched,
    JobFailed,
    JobKind,
    JobLeaseExpired,
    JobPaused,
    JobPauseRequested,
    JobPriorityChanged,
    JobQueued,
    JobResumed,
    JobRetried,
    ModelInput,
)
from modelyard_events.schemas.training import TrainingReport
from modelyard_job.domain.evolution import Dispatch, evolve
from modelyard_job.domain.job_kinds import EvaluationRun
from modelyard_job.domain.job_spec import check_priority, validated_job_spec
from modelyard_job.domain.lost_dispatches import (
    DEFAULT_MAX_LOST_DISPATCHES,
    LostDispatch,
    is_poison,
    poison_reason,
)
from modelyard_job.domain.reports import job_events_for_report
from modelyard_job.domain.transitions import (
    STATE_AFTER,
    TERMINAL_STATES,
    JobState,
    is_allowed,
    refusal_message,
)


@dataclass(frozen=True)
class TrainingJob:
    """One training job, as its events so far say it is.

    Invariants kept by the commands: `current_dispatch` is set exactly while the job is running;
    `attempt` only grows (by JobRetried); `checkpoint_uri` is the last checkpoint of the current attempt
    (None after a retry); `pause_request` / `cancel_request` hold the reason of an outstanding request to
    the trainer (None when there is none); `lost_dispatches` are the dispatches of this attempt whose
    lease lapsed (emptied by a retry). `kind` is "training" (fine-tuning when `model_input` names a base
    version) or "evaluation" (measuring `model_input` on `evaluation_split` for the registry's
    `evaluation_id`); it never changes.
    """

    job_id: str
    org_id: str = ""
    name: str = ""
    ai_module: str = ""
    family: str = ""
    dataset_uri: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    created_by: str = ""
    description: str = ""
    kind: JobKind = "training"
    model_input: ModelInput | None = None
    evaluation_split: str | None = None
    evaluation_id: str | None = None
    state: JobState = JobState.PENDING
    attempt: int = 1
    version: int = 0
    checkpoint_uri: str | None = None
    checkpoint_epochs_done: int | None = None
    current_dispatch: Dispatch | None = None
    pause_request: str | None = None
    cancel_request: str | None = None
    lost_dispatches: tuple[LostDispatch, ...] = ()

    # ---- state ---------------------------------------------------------------------------------

    @classmethod
    def rebuild(cls, job_id: str, events: Iterable[DomainEvent]) -> TrainingJob:
        """The job after folding its stored events in order; NotFound when the stream is empty."""
        job = cls(job_id=job_id)
        for event in events:
            job = job.apply(event)
        if job.version == 0:
            raise NotFound(f"job {job_id} does not exist")
        return job

    def apply(self, event: DomainEvent) -> TrainingJob:
        """The job after `event`; `version` counts the events folded (the stream version to append at)."""
        job = evolve(self, event)
        return replace(job, state=STATE_AFTER.get(type(event), job.state), version=self.version + 1)

    def apply_all(self, events: Iterable[DomainEvent]) -> TrainingJob:
        """The job after each of `events` in turn."""
        job = self
        for event in events:
            job = job.apply(event)
        return job

    @property
    def is_terminal(self) -> bool:
        """Whether the job is completed, failed or cancelled (only retry moves it on)."""
        return self.state in TERMINAL_STATES

    # ---- commands ------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        *,
        job_id: str,
        org_id: str,
        name: str,
        ai_module: str,
        family: str,
        dataset_uri: str,
        hyperparameters: dict[str, Any],
        priority: int,
        created_by: str,
        request_id: str | None = None,
        description: str = "",
        kind: JobKind = "training",
        model_input: ModelInput | None = None,
        evaluation_split: str | None = None,
        evaluation_id: str | None = None,
    ) -> list[DomainEvent]:
        """[JobCreated with the hyperparameters' defaults filled in, JobQueued(attempt=1)].

        Raises InvalidJobSpec (an InvalidArgument) naming every wrong field. The caller checks the plan
        quota first (plans.check_job_quota): it needs the organization's count for the month. A
        training job with a `model_input` fine-tunes that (already checked) registered version.
        """
        filled = validated_job_spec(
            name=name,
            ai_module=ai_module,
            family=family,
            hyperparameters=hyperparameters,
            dataset_uri=dataset_uri,
            priority=priority,
            description=description,
            kind=kind,
            model_input=model_input,
            evaluation_split=evaluation_split,
            evaluation_id=evaluation_id,
        )
        created = JobCreated(
            job_id=job_id,
            org_id=org_id,
            name=name,
            ai_module=ai_module,
            family=family,
            dataset_uri=dataset_uri,
            hyperparameters=filled,
            priority=priority,
            created_by=created_by,
            request_id=request_id,
            description=description,
            kind=kind,
            model_input=model_input,
            evaluation_split=evaluation_split,
            evaluation_id=evaluation_id,
        )
        return [created, JobQueued(job_id=job_id, attempt=1, reason="created")]

    @classmethod
    def create_evaluation(cls, run: EvaluationRun) -> list[DomainEvent]:
        """[JobCreated(kind evaluation), JobQueued] for the registry's request; InvalidJobSpec as create."""
        return cls.create(**run.job_fields())

    @classmethod
    def refuse_evaluation(cls, run: EvaluationRun, reason: str) -> list[DomainEvent]:
        """[JobCreated(kind evaluation), JobFailed(reason)]: an evaluation that cannot run (bad data,
        a dataset version not ready …) still becomes a job, failed at once, so the registry that asked
        for it hears why and returns the version to draft, instead of waiting for it forever."""
        failed = JobFailed(job_id=run.job_id, attempt=1, reason=f"not started: {reason}")
        return [JobCreated(**run.job_fields()), failed]

    def pause(self, reason: str = "") -> list[DomainEvent]:
        """Queued: [JobPaused] at once. Running: [JobPauseRequested]; the trainer's TrainingPaused ends it."""
        if self.state is JobState.RUNNING:
            if self.cancel_request is not None:
                raise IllegalTransition(f"job {self.job_id} is being cancelled; it cannot be paused")
            if self.pause_request is not None:
                raise IllegalTransition(
                    f"job {self.job_id} is already being paused; its trainer is saving a checkpoint"
                )
            return [JobPauseRequested(job_id=self.job_id, attempt=self.attempt, reason=reason)]
        self._require("pause")
        return [self._paused(reason)]

    def resume(self, reason: str = "") -> list[DomainEvent]:
        """Paused: [JobResumed, JobQueued] resuming from the last recorded checkpoint of this attempt."""
        self._require("resume")
        return [
            JobResumed(job_id=self.job_id, attempt=self.attempt, reason=reason),
            self._queued("resumed"),
        ]

    def cancel(self, reason: str = "") -> list[DomainEvent]:
        """Pending, queued or paused: [JobCancelled] at once.

        Running: [JobCancelRequested]; the trainer's TrainingCancelled ends it.
        """
        if self.state is JobState.RUNNING:
            if self.cancel_request is not None:
                raise IllegalTransition(
                    f"job {self.job_id} is already being cancelled; waiting for its trainer to stop"
                )
            return [JobCancelRequested(job_id=self.job_id, attempt=self.attempt, reason=reason)]
        self._require("cancel")
        return [JobCancelled(job_id=self.job_id, attempt=self.attempt, reason=reason)]

    def retry(self, reason: str = "") -> list[DomainEvent]:
        """Failed or cancelled: [JobRetried(attempt+1), JobQueued] from scratch (no checkpoint).

        An evaluation run is not retried: the registry has already closed its evaluation (the version
        went back to draft), so a new evaluation is asked of the registry instead.
        """
        self._require("retry")
        if self.kind == "evaluation":
            raise IllegalTransition(
                f"job {self.job_id} is an evaluation run the registry asked for, and that evaluation "
                "has ended; ask the registry for a new one (yard models evaluate)"
            )
        attempt = self.attempt + 1
        return [
            JobRetried(job_id=self.job_id, attempt=attempt, reason=reason),
            JobQueued(job_id=self.job_id, attempt=attempt, reason=f"retried: attempt {attempt}"),
        ]

    def set_priority(self, priority: int) -> list[DomainEvent]:
        """Unfinished job, new priority in 0..100: [JobPriorityChanged]. The same priority is refused."""
        problem = check_priority(priority)
        if problem is not None:
            raise InvalidArgument("priority", problem)
        self._require("set_priority")
        if priority == self.priority:
            raise IllegalTransition(f"job {self.job_id} already has priority {priority}; nothing to change")
        return [JobPriorityChanged(job_id=self.job_id, priority=priority, previous_priority=self.priority)]

    def dispatch(
        self, *, trainer_id: str, dispatch_id: str, now: datetime, lease_ttl: timedelta
    ) -> list[DomainEvent]:
        """Queued: [JobDispatched] leasing the job to `trainer_id` until now + lease_ttl, from its checkpoint.

        The dispatch carries the family, dataset, hyperparameters, kind, the model version to start from
        or to measure and the split to measure, so the trainer needs nothing else, and the last recorded
        checkpoint of this attempt (None for a fresh start).
        """
        if lease_ttl <= timedelta(0):
            raise ValueError(f"lease_ttl must be positive; got {lease_ttl}")
        self._require("dispatch")
        return [
            JobDispatched(
                job_id=self.job_id,
                attempt=self.attempt,
                dispatch_id=dispatch_id,
                trainer_id=trainer_id,
                lease_expires_at=now + lease_ttl,
                checkpoint_uri=self.checkpoint_uri,
                family=self.family,
                dataset_uri=self.dataset_uri,
                hyperparameters=dict(self.hyperparameters),
                kind=self.kind,
                model_input=self.model_input,
                evaluation_split=self.evaluation_split,
            )
        ]

    def expire_lease(
        self, dispatch_id: str, max_lost_dispatches: int = DEFAULT_MAX_LOST_DISPATCHES
    ) -> list[DomainEvent]:
        """[JobLeaseExpired, then where the job goes] if `dispatch_id` is the current lease, else [].

        The job goes back to the queue at its last checkpoint (same attempt), unless an outstanding
        request says otherwise: a requested cancel ends cancelled, a requested pause ends paused. The
        lapse that makes `max_lost_dispatches` lost in this attempt fails the job instead (a poison job:
        its workers die, e.g. out of memory, before they can report). A lease that is no longer current
        (the job moved on meanwhile) is not an error: the sweeper works from a read model that may lag.
        """
        current = self.current_dispatch
        if self.state is not JobState.RUNNING or current is None or current.dispatch_id != dispatch_id:
            return []
        expired = JobLeaseExpired(
            job_id=self.job_id, attempt=self.attempt, dispatch_id=dispatch_id, trainer_id=current.trainer_id
        )
        if self.cancel_request is not None:
            return [
                expired,
                JobCancelled(job_id=self.job_id, attempt=self.attempt, reason=self.cancel_request),
            ]
        if self.pause_request is not None:
            return [expired, self._paused(self.pause_request)]
        if is_poison(len(self.lost_dispatches), max_lost_dispatches):
            lost = self.apply(expired).lost_dispatches
            return [expired, JobFailed(job_id=self.job_id, attempt=self.attempt, reason=poison_reason(lost))]
        reason = f"lease {dispatch_id} expired: trainer {current.trainer_id} stopped heartbeating"
        return [expired, self._queued(reason)]

    def on_training_report(self, report: TrainingReport) -> list[DomainEvent]:
        """The job events a trainer's report implies; [] for stale, duplicate or progress-only reports."""
        return job_events_for_report(self, report)

    # ---- helpers -------------------------------------------------------------------------------

    def _require(self, command: str) -> None:
        if not is_allowed(command, self.state):
            raise IllegalTransition(refusal_message(self.job_id, self.state, command))

    def _queued(self, reason: str) -> JobQueued:
        return JobQueued(
            job_id=self.job_id, attempt=self.attempt, checkpoint_uri=self.checkpoint_uri, reason=reason
        )

    def _paused(self, reason: str) -> JobPaused:
        return JobPaused(
            job_id=self.job_id, attempt=self.attempt, checkpoint_uri=self.checkpoint_uri, reason=reason
        )
