"""The TrainingJob state table: which event moves a job to which state, and which commands a state allows.

    from                       command / report           events                          to
    (new)                      create                     JobCreated, JobQueued           queued
    queued                     dispatch                   JobDispatched                   running
    running                    TrainingStarted            JobStarted                      running
    queued                     pause                      JobPaused                       paused
    running                    pause                      JobPauseRequested               running
    running                    TrainingPaused             JobPaused                       paused
    paused                     resume                     JobResumed, JobQueued           queued
    pending, queued, paused    cancel                     JobCancelled                    cancelled
    running                    cancel                     JobCancelRequested              running
    running                    TrainingCancelled          JobCancelled                    cancelled
    running                    TrainingCompleted          JobCompleted                    completed
    running (evaluation)       EvaluationCompleted        JobEvaluationCompleted          completed
    running (other kind)       the other kind's result    JobFailed (wrong kind)          failed
    running                    TrainingFailed             JobFailed                       failed
    running                    lease expired              JobLeaseExpired, JobQueued      queued
    running                    lease expired, cap reached JobLeaseExpired, JobFailed      failed
    failed, cancelled          retry (training jobs)      JobRetried, JobQueued           queued
    (new)                      evaluation that cannot run JobCreated, JobFailed           failed
    pending..paused            set_priority               JobPriorityChanged              (same)

"Dispatched but not started" is `running` with `current_dispatch.started == False`: from JobDispatched
the job holds a trainer slot and a lease, which is what `running` means to the queue, the fair share
and the lease sweeper; JobStarted only flips `started`. Pause and cancel of a running job are requests
that the trainer's report completes; a lease that expires with a request outstanding ends the way the
request asked (paused or cancelled) instead of re-queueing, and the lapse that reaches the cap on
dispatches lost in one attempt (lost_dispatches.py) fails the job instead of re-queueing it. `pending`
is the state after JobCreated and before JobQueued; create appends both at once, so today a job is
pending only inside that append. Evaluation runs come from the registry's request (job_kinds.py): one
that cannot run is recorded failed at once, and a failed or cancelled one is not retried (the
registry asks again with a new evaluation).
Every other command in a state not listed is refused with IllegalTransition; a lease expiry or a report
that does not apply (stale, duplicate) gives no events instead, because it comes from a process.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.jobs import (
    JobCancelled,
    JobCompleted,
    JobCreated,
    JobDispatched,
    JobEvaluationCompleted,
    JobFailed,
    JobLeaseExpired,
    JobPaused,
    JobQueued,
    JobResumed,
    JobRetried,
)


class JobState(StrEnum):
    """The seven public states of a training job (DESIGN §4)."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
UNFINISHED_STATES = frozenset(JobState) - TERMINAL_STATES

# Event type -> the state a job is in after it. Events not listed (JobStarted, JobCheckpointRecorded,
# JobPriorityChanged, JobPauseRequested, JobCancelRequested) keep the state and change details only.
STATE_AFTER: dict[type[DomainEvent], JobState] = {
    JobCreated: JobState.PENDING,
    JobQueued: JobState.QUEUED,
    JobDispatched: JobState.RUNNING,
    JobPaused: JobState.PAUSED,
    JobResumed: JobState.QUEUED,
    JobLeaseExpired: JobState.QUEUED,
    JobRetried: JobState.QUEUED,
    JobCompleted: JobState.COMPLETED,
    JobEvaluationCompleted: JobState.COMPLETED,
    JobFailed: JobState.FAILED,
    JobCancelled: JobState.CANCELLED,
}


@dataclass(frozen=True)
class CommandRule:
    """The states a command is accepted in, and how a refusal names the command."""

    allowed: frozenset[JobState]
    phrase: str  # completes "only <states> jobs can <phrase>"


COMMAND_RULES: dict[str, CommandRule] = {
    "pause": CommandRule(frozenset({JobState.QUEUED, JobState.RUNNING}), "be paused"),
    "resume": CommandRule(frozenset({JobState.PAUSED}), "be resumed"),
    "cancel": CommandRule(UNFINISHED_STATES, "be cancelled"),
    "retry": CommandRule(frozenset({JobState.FAILED, JobState.CANCELLED}), "be retried"),
    "set_priority": CommandRule(UNFINISHED_STATES, "have their priority changed"),
    "dispatch": CommandRule(frozenset({JobState.QUEUED}), "be dispatched"),
}


def is_allowed(command: str, state: JobState) -> bool:
    """Whether `command` (a key of COMMAND_RULES) may be decided in `state`."""
    return state in COMMAND_RULES[command].allowed


def refusal_message(job_id: str, state: JobState, command: str) -> str:
    """The IllegalTransition message: "job j-12 is completed; only queued or running jobs can be paused"."""
    rule = COMMAND_RULES[command]
    names = [s.value for s in JobState if s in rule.allowed]  # enum order reads as the job's life
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return f"job {job_id} is {state.value}; only {listed} jobs can {rule.phrase}"
