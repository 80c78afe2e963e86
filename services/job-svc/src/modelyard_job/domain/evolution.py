"""How each job event changes a TrainingJob's details; the state itself comes from transitions.STATE_AFTER.

Kept apart from the commands so that the fold reads as one table; every function here is total
(an event that does not fit the job, which a valid stream never holds, leaves the job as it was).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.jobs import (
    JobCancelled,
    JobCancelRequested,
    JobCheckpointRecorded,
    JobCompleted,
    JobCreated,
    JobDispatched,
    JobEvaluationCompleted,
    JobFailed,
    JobLeaseExpired,
    JobPaused,
    JobPauseRequested,
    JobPriorityChanged,
    JobQueued,
    JobResumed,
    JobRetried,
    JobStarted,
)
from modelyard_job.domain.lost_dispatches import LostDispatch

if TYPE_CHECKING:
    from modelyard_job.domain.job import TrainingJob


@dataclass(frozen=True)
class Dispatch:
    """The job's current lease: the trainer holding it and whether that trainer reported it started."""

    dispatch_id: str
    trainer_id: str
    lease_expires_at: datetime
    started: bool = False


def evolve(job: TrainingJob, event: DomainEvent) -> TrainingJob:
    """The job with the details `event` records changed (not its state, not its version)."""
    change = _EVOLVE.get(type(event))
    return change(job, event) if change is not None else job


def _created(job: TrainingJob, e: JobCreated) -> TrainingJob:
    return replace(
        job,
        job_id=e.job_id,
        org_id=e.org_id,
        name=e.name,
        ai_module=e.ai_module,
        family=e.family,
        dataset_uri=e.dataset_uri,
        hyperparameters=dict(e.hyperparameters),
        priority=e.priority,
        created_by=e.created_by,
        description=e.description,
        kind=e.kind,
        model_input=e.model_input,
        evaluation_split=e.evaluation_split,
        evaluation_id=e.evaluation_id,
    )


def _off_trainer(job: TrainingJob) -> TrainingJob:
    # Every way out of `running` drops the lease and any request the trainer can no longer answer.
    return replace(job, current_dispatch=None, pause_request=None, cancel_request=None)


def _queued(job: TrainingJob, e: JobQueued) -> TrainingJob:
    return replace(_off_trainer(job), attempt=e.attempt, checkpoint_uri=e.checkpoint_uri)


def _dispatched(job: TrainingJob, e: JobDispatched) -> TrainingJob:
    return replace(job, current_dispatch=Dispatch(e.dispatch_id, e.trainer_id, e.lease_expires_at))


def _started(job: TrainingJob, e: JobStarted) -> TrainingJob:
    if job.current_dispatch is None or job.current_dispatch.dispatch_id != e.dispatch_id:
        return job
    return replace(job, current_dispatch=replace(job.current_dispatch, started=True))


def _checkpoint(job: TrainingJob, e: JobCheckpointRecorded) -> TrainingJob:
    return replace(job, checkpoint_uri=e.checkpoint_uri, checkpoint_epochs_done=e.epochs_done)


def _paused(job: TrainingJob, e: JobPaused) -> TrainingJob:
    checkpoint = e.checkpoint_uri if e.checkpoint_uri is not None else job.checkpoint_uri
    return replace(_off_trainer(job), checkpoint_uri=checkpoint)


def _retried(job: TrainingJob, e: JobRetried) -> TrainingJob:
    fresh = replace(_off_trainer(job), attempt=e.attempt, checkpoint_uri=None, checkpoint_epochs_done=None)
    return replace(fresh, lost_dispatches=())


def _lease_expired(job: TrainingJob, e: JobLeaseExpired) -> TrainingJob:
    current = job.current_dispatch
    started = current is not None and current.dispatch_id == e.dispatch_id and current.started
    lost = LostDispatch(e.trainer_id, started, job.checkpoint_epochs_done or 0)
    return replace(_off_trainer(job), lost_dispatches=(*job.lost_dispatches, lost))


def _left_trainer(job: TrainingJob, e: DomainEvent) -> TrainingJob:
    return _off_trainer(job)


_EVOLVE: dict[type[DomainEvent], Callable[[TrainingJob, Any], TrainingJob]] = {
    JobCreated: _created,
    JobQueued: _queued,
    JobPriorityChanged: lambda job, e: replace(job, priority=e.priority),
    JobDispatched: _dispatched,
    JobStarted: _started,
    JobCheckpointRecorded: _checkpoint,
    JobPauseRequested: lambda job, e: replace(job, pause_request=e.reason),
    JobCancelRequested: lambda job, e: replace(job, cancel_request=e.reason),
    JobPaused: _paused,
    JobResumed: _left_trainer,
    JobLeaseExpired: _lease_expired,
    JobRetried: _retried,
    JobCompleted: _left_trainer,
    JobEvaluationCompleted: _left_trainer,
    JobFailed: _left_trainer,
    JobCancelled: _left_trainer,
}
