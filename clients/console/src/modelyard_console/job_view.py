"""A job as the pages show it: every figure formatted, the actions its state allows."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.v1 import jobs_pb2
from modelyard_cli.render.values import FINISHED_STATES, present, state_name
from modelyard_console.badges import Badge, badge_for
from modelyard_console.values import (
    MISSING,
    format_bytes,
    format_duration,
    format_metric,
    format_rate,
    format_time,
    iso_time,
)

_PAUSABLE = frozenset({jobs_pb2.JOB_STATE_QUEUED, jobs_pb2.JOB_STATE_RUNNING})
_CANCELLABLE = frozenset(
    {
        jobs_pb2.JOB_STATE_PENDING,
        jobs_pb2.JOB_STATE_QUEUED,
        jobs_pb2.JOB_STATE_RUNNING,
        jobs_pb2.JOB_STATE_PAUSED,
    }
)
_RETRYABLE = frozenset({jobs_pb2.JOB_STATE_FAILED, jobs_pb2.JOB_STATE_CANCELLED})


@dataclass(frozen=True, slots=True)
class JobView:
    """One job's figures as text, plus what its state allows."""

    job_id: str
    name: str
    org_id: str
    ai_module: str
    kind: str
    state: str
    badge: Badge
    priority: int
    queue_position: str
    percent: float | None  # 0..100; None while a running job has reported no progress yet
    percent_text: str
    epoch_text: str
    epochs_done: int
    step_text: str
    loss: str
    rate: str
    elapsed: str
    started_at: str  # ISO, for the page's ticking clock ("" before the start)
    ticking: bool  # True while the elapsed time grows
    eta: str
    phase: str
    device: str
    gpu: str
    created_by: str
    created_at: str
    completed_at: str
    description: str
    failure_reason: str
    version: int
    finished: bool
    can_pause: bool
    can_resume: bool
    can_cancel: bool
    can_retry: bool


def job_view(job: jobs_pb2.Job) -> JobView:
    """The view of `job` as GetJob, ListJobs or WatchJob returned it."""
    state = state_name(job.state)
    percent = _percent(job)
    return JobView(
        job_id=job.job_id, name=job.name, org_id=job.org_id, ai_module=job.ai_module,
        kind=job.kind or "training", state=state, badge=badge_for(state), priority=job.priority,
        queue_position=str(job.queue_position) if job.HasField("queue_position") else MISSING,
        percent=percent, percent_text=MISSING if percent is None else f"{percent:.0f}%",
        epoch_text=f"{job.epoch or job.epochs_done}/{job.epochs_total}" if job.epochs_total else MISSING,
        epochs_done=job.epochs_done,
        step_text=f"{job.step}/{job.steps_per_epoch}" if job.steps_per_epoch else MISSING,
        loss=format_metric(present(job, "loss")), rate=format_rate(present(job, "samples_per_s")),
        elapsed=format_duration(present(job, "elapsed_s")), started_at=iso_time(job.started_at),
        ticking=job.state == jobs_pb2.JOB_STATE_RUNNING and job.HasField("started_at"),
        eta=format_duration(present(job, "eta_s")), phase=job.phase_message or job.phase or "",
        device=job.device or MISSING, gpu=_gpu_text(job), created_by=job.created_by,
        created_at=format_time(job.created_at), completed_at=format_time(job.completed_at),
        description=job.description, failure_reason=job.failure_reason or "", version=job.version,
        finished=job.state in FINISHED_STATES, can_pause=job.state in _PAUSABLE,
        can_resume=job.state == jobs_pb2.JOB_STATE_PAUSED, can_cancel=job.state in _CANCELLABLE,
        can_retry=job.state in _RETRYABLE,
    )  # fmt: skip


def _percent(job: jobs_pb2.Job) -> float | None:
    if job.state == jobs_pb2.JOB_STATE_COMPLETED:
        return 100.0
    if job.HasField("progress"):
        return max(0.0, min(100.0, job.progress * 100))
    # Unknown while a dispatched run loads (the bar then moves without a value); nothing done otherwise.
    return None if job.state == jobs_pb2.JOB_STATE_RUNNING else 0.0


def _gpu_text(job: jobs_pb2.Job) -> str:
    """The last epoch's GPU utilization and memory (`87% · 1.2 GB`); `-` on CPU or before an epoch."""
    if not job.HasField("last_epoch"):
        return MISSING
    epoch = job.last_epoch
    parts = []
    if epoch.HasField("gpu_utilization_pct"):
        parts.append(f"{epoch.gpu_utilization_pct:.0f}%")
    if epoch.HasField("gpu_memory_bytes"):
        parts.append(format_bytes(epoch.gpu_memory_bytes))
    return " · ".join(parts) or MISSING
