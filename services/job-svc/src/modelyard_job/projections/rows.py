"""What the read models hand out: plain rows, converted to protobuf at the gRPC edge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelyard_job.domain import QueueEntry

FINISHED_STATES = frozenset({"completed", "failed", "cancelled"})
"""The `state` values of a job that will not change again on their own (a retry starts it anew)."""


@dataclass(frozen=True)
class JobRow:
    """One job as the `jobs` read model holds it (queue_position filled in by queue-aware reads)."""

    job_id: str
    org_id: str
    name: str
    ai_module: str
    family: str
    dataset_uri: str
    hyperparameters: dict[str, Any]
    priority: int
    state: str
    attempt: int
    created_by: str
    request_id: str | None
    created_at: datetime
    updated_at: datetime
    queued_at: datetime | None
    version: int
    trainer_id: str | None
    dispatch_id: str | None
    lease_expires_at: datetime | None
    started: bool
    device: str | None
    epochs_done: int
    epochs_total: int
    steps_per_epoch: int
    epoch: int
    step: int
    progress: float | None
    eta_s: float | None
    loss: float | None
    samples_per_s: float | None
    checkpoint_uri: str | None
    artifact_uri: str | None
    artifact_sha256: str | None
    failure_reason: str | None
    queue_position: int | None = None
    kind: str = "training"
    description: str = ""
    base_version_id: str | None = None  # fine-tuning: the version it starts from
    model_version_id: str | None = None  # evaluation: the version it measures
    evaluation_id: str | None = None
    output_version_id: str | None = None  # training: the version the registry made of it
    started_at: datetime | None = None  # the first time a trainer started it
    completed_at: datetime | None = None  # when it reached completed, failed or cancelled
    phase: str | None = None  # while dispatched: dispatched, fetching, loading_data, building_model, training
    phase_message: str | None = None  # what that phase is doing, for a human
    train_samples: int | None = None  # the current attempt's training split (TrainingStarted)

    def queue_entry(self) -> QueueEntry:
        """The job as the scheduler sees it (without a queued_at, its last update stands in)."""
        return QueueEntry(self.job_id, self.org_id, self.priority, self.queued_at or self.updated_at)


@dataclass(frozen=True)
class EpochRow:
    """One epoch of one attempt, as its trainer measured it."""

    job_id: str
    attempt: int
    epoch: int
    dispatch_id: str
    train_loss: float
    val_loss: float
    val_accuracy: float | None
    metrics: dict[str, float]
    samples_per_s: float
    duration_s: float
    gpu_utilization_pct: float | None
    gpu_memory_bytes: int | None
    recorded_at: datetime


@dataclass(frozen=True)
class TrainerRow:
    """A trainer: its registration, its liveness, and the jobs it runs now."""

    trainer_id: str
    slots_total: int
    gpus: list[str]
    alive: bool
    last_heartbeat_at: datetime | None
    job_ids: list[str]

    @property
    def slots_free(self) -> int:
        """Slots not taken by running jobs (0 for a trainer that is not alive)."""
        return max(self.slots_total - len(self.job_ids), 0) if self.alive else 0
