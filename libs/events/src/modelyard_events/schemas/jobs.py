"""Events of job-svc: the TrainingJob aggregate's decisions (stream_type "training_job").

States (DESIGN §4): pending → queued → running ⇄ paused → completed | failed | cancelled.
Trainers report `Training*` facts in their own log (schemas.training); job-svc
turns them into these job transitions, which other services (registry-svc)
consume. Every event carries `attempt`; a retry is a new attempt of the same job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from modelyard_events.envelope import DomainEvent
from modelyard_events.registry import EventRegistry

JOB_STREAM = "training_job"
TRAINER_STREAM = "trainer"
QUOTA_STREAM = "job_quota"  # stream id "<org_id>/<YYYY-MM>": one event per job counted in the month


class JobCreated(DomainEvent):
    """A job was accepted with validated hyperparameters (defaults filled in); state pending."""

    type_name = "JobCreated"
    job_id: str
    org_id: str
    name: str
    ai_module: str
    family: str
    dataset_uri: str
    hyperparameters: dict[str, Any]
    priority: int = Field(ge=0, le=100)
    created_by: str
    request_id: str | None = None


class JobQueued(DomainEvent):
    """The job waits for a trainer; it resumes from `checkpoint_uri` when one is set."""

    type_name = "JobQueued"
    job_id: str
    attempt: int = Field(ge=1)
    checkpoint_uri: str | None = None
    reason: str = ""


class JobPriorityChanged(DomainEvent):
    """A queued (or any unfinished) job's priority changed; the queue reorders."""

    type_name = "JobPriorityChanged"
    job_id: str
    priority: int = Field(ge=0, le=100)
    previous_priority: int


class JobDispatched(DomainEvent):
    """A trainer got a lease on the job; it must heartbeat before `lease_expires_at`."""

    type_name = "JobDispatched"
    job_id: str
    attempt: int = Field(ge=1)
    dispatch_id: str
    trainer_id: str
    lease_expires_at: datetime
    checkpoint_uri: str | None = None
    family: str
    dataset_uri: str
    hyperparameters: dict[str, Any]


class JobStarted(DomainEvent):
    """The dispatched trainer began training: state running."""

    type_name = "JobStarted"
    job_id: str
    attempt: int
    dispatch_id: str
    trainer_id: str
    device: str
    start_epoch: int = Field(ge=1)


class JobCheckpointRecorded(DomainEvent):
    """A checkpoint the job can resume from (after `epoch` complete epochs, `step` into the next)."""

    type_name = "JobCheckpointRecorded"
    job_id: str
    attempt: int
    dispatch_id: str
    epochs_done: int = Field(ge=0)
    checkpoint_uri: str
    sha256: str


class JobPauseRequested(DomainEvent):
    """Pause asked while running; the trainer checkpoints and stops within one step."""

    type_name = "JobPauseRequested"
    job_id: str
    attempt: int
    reason: str = ""


class JobPaused(DomainEvent):
    """The job is off the queue and holds no slot; resume re-queues it from `checkpoint_uri`."""

    type_name = "JobPaused"
    job_id: str
    attempt: int
    checkpoint_uri: str | None
    reason: str = ""


class JobResumed(DomainEvent):
    """A paused job went back to the queue."""

    type_name = "JobResumed"
    job_id: str
    attempt: int
    reason: str = ""


class JobCancelRequested(DomainEvent):
    """Cancel asked while running; the trainer stops within one step."""

    type_name = "JobCancelRequested"
    job_id: str
    attempt: int
    reason: str = ""


class JobCancelled(DomainEvent):
    """Terminal: the job was cancelled (RetryJob can start a new attempt)."""

    type_name = "JobCancelled"
    job_id: str
    attempt: int
    reason: str = ""


class JobCompleted(DomainEvent):
    """Terminal: training finished and the artifact (weights + config + metrics) is stored."""

    type_name = "JobCompleted"
    job_id: str
    org_id: str
    ai_module: str
    attempt: int
    dataset_uri: str
    artifact_uri: str
    artifact_sha256: str
    artifact_size_bytes: int = Field(ge=0)
    metrics: dict[str, float]
    epochs: int


class JobFailed(DomainEvent):
    """Terminal: the attempt failed; `reason` says why (RetryJob starts a new attempt)."""

    type_name = "JobFailed"
    job_id: str
    attempt: int
    reason: str


class JobLeaseExpired(DomainEvent):
    """The trainer stopped heartbeating; the job goes back to the queue at its last checkpoint."""

    type_name = "JobLeaseExpired"
    job_id: str
    attempt: int
    dispatch_id: str
    trainer_id: str


class JobRetried(DomainEvent):
    """A failed or cancelled job starts attempt `attempt` from scratch."""

    type_name = "JobRetried"
    job_id: str
    attempt: int = Field(ge=2)
    reason: str = ""


class JobQuotaUsed(DomainEvent):
    """A created job counted against its organization's monthly training-job quota (DESIGN §6).

    Stream "job_quota" / "<org_id>/<YYYY-MM>": appending at the stream's version serializes
    concurrent creations, so the plan's limit holds across job-svc replicas.
    """

    type_name = "JobQuotaUsed"

    org_id: str
    month: str
    job_id: str
    plan: str


class TrainerRegistered(DomainEvent):
    """A trainer worker announced itself (stream_type "trainer"): its slots and GPUs."""

    type_name = "TrainerRegistered"
    trainer_id: str
    slots_total: int = Field(ge=1)
    gpus: list[str]


class TrainerLost(DomainEvent):
    """A trainer missed its heartbeats for longer than the lease TTL."""

    type_name = "TrainerLost"
    trainer_id: str
    last_heartbeat_at: datetime


JOB_EVENTS = EventRegistry(
    [
        JobCreated,
        JobQueued,
        JobPriorityChanged,
        JobDispatched,
        JobStarted,
        JobCheckpointRecorded,
        JobPauseRequested,
        JobPaused,
        JobResumed,
        JobCancelRequested,
        JobCancelled,
        JobCompleted,
        JobFailed,
        JobLeaseExpired,
        JobRetried,
        JobQuotaUsed,
        TrainerRegistered,
        TrainerLost,
    ]
)
