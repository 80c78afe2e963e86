"""Events of job-svc: the TrainingJob aggregate's decisions (stream_type "training_job").

States (DESIGN §4): pending → queued → running ⇄ paused → completed | failed | cancelled.
Trainers report `Training*` facts in their own log (schemas.training); job-svc
turns them into these job transitions, which other services (registry-svc)
consume. Every event carries `attempt`; a retry is a new attempt of the same job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from modelyard_events.envelope import DomainEvent
from modelyard_events.registry import EventRegistry
from modelyard_events.schemas.bounds import Identifier, JsonObject, Name, Reason, Sha256Hex, Uri
from modelyard_events.schemas.registry import EvaluationReport, SemanticVersion

JOB_STREAM = "training_job"
TRAINER_STREAM = "trainer"
QUOTA_STREAM = "job_quota"  # stream id "<org_id>/<YYYY-MM>": one event per job counted in the month
MAX_METRICS = 64
MAX_GPUS = 64
JobKind = Literal["training", "evaluation"]


class ModelInput(BaseModel):
    """A registered model version a job starts from (fine-tuning) or measures (evaluation).

    Trainers fetch it through the registry's signed download URL and check `artifact_sha256`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version_id: Identifier
    ai_module: Name
    semantic_version: SemanticVersion
    artifact_sha256: Sha256Hex
    artifact_size_bytes: int = Field(ge=0)


class JobCreated(DomainEvent):
    """A job was accepted with validated hyperparameters (defaults filled in); state pending."""

    type_name = "JobCreated"
    job_id: Identifier
    org_id: Identifier
    name: Name
    ai_module: Name
    family: Name
    dataset_uri: Uri
    hyperparameters: JsonObject
    priority: int = Field(ge=0, le=100)
    created_by: Identifier
    request_id: Identifier | None = None
    description: Reason = ""
    kind: JobKind = "training"
    # fine-tuning: the base version; evaluation: the version measured
    model_input: ModelInput | None = None
    evaluation_split: Name | None = None  # evaluation jobs only: the held-out split measured
    evaluation_id: Identifier | None = None  # evaluation jobs only: the registry's evaluation


class JobQueued(DomainEvent):
    """The job waits for a trainer; it resumes from `checkpoint_uri` when one is set."""

    type_name = "JobQueued"
    job_id: Identifier
    attempt: int = Field(ge=1)
    checkpoint_uri: Uri | None = None
    reason: Reason = ""


class JobPriorityChanged(DomainEvent):
    """A queued (or any unfinished) job's priority changed; the queue reorders."""

    type_name = "JobPriorityChanged"
    job_id: Identifier
    priority: int = Field(ge=0, le=100)
    previous_priority: int


class JobDispatched(DomainEvent):
    """A trainer got a lease on the job; it must heartbeat before `lease_expires_at`."""

    type_name = "JobDispatched"
    job_id: Identifier
    attempt: int = Field(ge=1)
    dispatch_id: Identifier
    trainer_id: Identifier
    lease_expires_at: datetime
    checkpoint_uri: Uri | None = None
    family: Name
    dataset_uri: Uri
    hyperparameters: JsonObject
    kind: JobKind = "training"
    model_input: ModelInput | None = None
    evaluation_split: Name | None = None


@dataclass(frozen=True)
class DispatchRecord:
    """One `JobDispatched` as recorded in job-svc's log: which run (attempt) of which job went to
    which trainer, the job's organization, and the event's id and correlation id, which the run's
    reports name as their cause and carry (job-svc's GetDispatch answers it; trainer-svc checks a
    dispatch's first reports against it)."""

    job_id: str
    dispatch_id: str
    attempt: int
    trainer_id: str
    org_id: str | None
    event_id: str
    correlation_id: str


class JobStarted(DomainEvent):
    """The dispatched trainer began training: state running."""

    type_name = "JobStarted"
    job_id: Identifier
    attempt: int
    dispatch_id: Identifier
    trainer_id: Identifier
    device: Name
    start_epoch: int = Field(ge=1)


class JobCheckpointRecorded(DomainEvent):
    """A checkpoint the job can resume from (after `epoch` complete epochs, `step` into the next)."""

    type_name = "JobCheckpointRecorded"
    job_id: Identifier
    attempt: int
    dispatch_id: Identifier
    epochs_done: int = Field(ge=0)
    checkpoint_uri: Uri
    sha256: Sha256Hex


class JobPauseRequested(DomainEvent):
    """Pause asked while running; the trainer checkpoints and stops within one step."""

    type_name = "JobPauseRequested"
    job_id: Identifier
    attempt: int
    reason: Reason = ""


class JobPaused(DomainEvent):
    """The job is off the queue and holds no slot; resume re-queues it from `checkpoint_uri`."""

    type_name = "JobPaused"
    job_id: Identifier
    attempt: int
    checkpoint_uri: Uri | None
    reason: Reason = ""


class JobResumed(DomainEvent):
    """A paused job went back to the queue."""

    type_name = "JobResumed"
    job_id: Identifier
    attempt: int
    reason: Reason = ""


class JobCancelRequested(DomainEvent):
    """Cancel asked while running; the trainer stops within one step."""

    type_name = "JobCancelRequested"
    job_id: Identifier
    attempt: int
    reason: Reason = ""


class JobCancelled(DomainEvent):
    """Terminal: the job was cancelled (RetryJob can start a new attempt)."""

    type_name = "JobCancelled"
    job_id: Identifier
    attempt: int
    reason: Reason = ""


class JobCompleted(DomainEvent):
    """Terminal: training finished and the artifact (weights + config + metrics) is stored."""

    type_name = "JobCompleted"
    job_id: Identifier
    org_id: Identifier
    ai_module: Name
    attempt: int
    dataset_uri: Uri
    artifact_uri: Uri
    artifact_sha256: Sha256Hex
    artifact_size_bytes: int = Field(ge=0)
    metrics: dict[Name, float] = Field(max_length=MAX_METRICS)
    epochs: int
    name: Name = ""
    description: Reason = ""
    family: Name = ""
    created_by: Identifier = ""
    base_version_id: Identifier | None = None
    dataset_manifest_sha256: Sha256Hex | None = None


class JobEvaluationCompleted(DomainEvent):
    """Terminal for an evaluation job: the version's figures on the held-out split (registry-svc
    records them as ModelEvaluated)."""

    type_name = "JobEvaluationCompleted"
    job_id: Identifier
    org_id: Identifier
    ai_module: Name
    attempt: int
    model_version_id: Identifier
    evaluation_id: Identifier
    report: EvaluationReport


class JobFailed(DomainEvent):
    """Terminal: the attempt failed; `reason` says why (RetryJob starts a new attempt)."""

    type_name = "JobFailed"
    job_id: Identifier
    attempt: int
    reason: Reason


class JobLeaseExpired(DomainEvent):
    """The trainer stopped heartbeating; the job goes back to the queue at its last checkpoint."""

    type_name = "JobLeaseExpired"
    job_id: Identifier
    attempt: int
    dispatch_id: Identifier
    trainer_id: Identifier


class JobRetried(DomainEvent):
    """A failed or cancelled job starts attempt `attempt` from scratch."""

    type_name = "JobRetried"
    job_id: Identifier
    attempt: int = Field(ge=2)
    reason: Reason = ""


class JobQuotaUsed(DomainEvent):
    """A created job counted against its organization's monthly training-job quota (DESIGN §6).

    Stream "job_quota" / "<org_id>/<YYYY-MM>": appending at the stream's version serializes
    concurrent creations, so the plan's limit holds across job-svc replicas.
    """

    type_name = "JobQuotaUsed"

    org_id: Identifier
    month: Name
    job_id: Identifier
    plan: Name


class TrainerRegistered(DomainEvent):
    """A trainer worker announced itself (stream_type "trainer"): its slots and GPUs."""

    type_name = "TrainerRegistered"
    trainer_id: Identifier
    slots_total: int = Field(ge=1)
    gpus: list[Name] = Field(max_length=MAX_GPUS)


class TrainerLost(DomainEvent):
    """A trainer missed its heartbeats for longer than the lease TTL."""

    type_name = "TrainerLost"
    trainer_id: Identifier
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
        JobEvaluationCompleted,
        JobFailed,
        JobLeaseExpired,
        JobRetried,
        JobQuotaUsed,
        TrainerRegistered,
        TrainerLost,
    ]
)
