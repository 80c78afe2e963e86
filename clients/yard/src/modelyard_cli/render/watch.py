"""What `yard jobs watch` shows: a line per state change and per epoch, the progress bar's text, and
the job's final metrics."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.v1 import jobs_pb2
from modelyard_cli.render.values import (
    MISSING,
    format_duration,
    format_metric,
    format_percent,
    format_rate,
    present,
    state_name,
)


def state_line(job: jobs_pb2.Job) -> str:
    """`job-1 is running (attempt 1, trainer t-1)`; the queue position while queued, the reason when
    failed."""
    line = f"{job.job_id} is {state_name(job.state)}"
    if job.state == jobs_pb2.JOB_STATE_QUEUED and job.HasField("queue_position"):
        return f"{line} (queue position {job.queue_position})"
    if job.state == jobs_pb2.JOB_STATE_RUNNING:
        return f"{line} (attempt {job.attempt}, trainer {present(job, 'trainer_id') or MISSING})"
    if job.state == jobs_pb2.JOB_STATE_FAILED and job.HasField("failure_reason"):
        return f"{line}: {job.failure_reason}"
    return line


# Trainers repeat these in `metrics` too (the artifact's metrics dict); the line shows them once.
_SHOWN_ABOVE = frozenset({"train_loss", "val_loss", "val_accuracy"})


def epoch_line(epoch: jobs_pb2.EpochMetrics, epochs_total: int) -> str:
    """`epoch 2/3  train loss 0.4100  val loss 0.3900  val acc 88.0%  1,200.0 samples/s`."""
    of_total = f"/{epochs_total}" if epochs_total else ""
    parts = [
        f"epoch {epoch.epoch}{of_total}",
        f"train loss {format_metric(epoch.train_loss)}",
        f"val loss {format_metric(epoch.val_loss)}",
    ]
    if epoch.HasField("val_accuracy"):
        parts.append(f"val acc {format_percent(epoch.val_accuracy)}")
    parts += [
        f"{name} {format_metric(value)}"
        for name, value in sorted(epoch.metrics.items())
        if name not in _SHOWN_ABOVE
    ]
    parts.append(format_rate(epoch.samples_per_s))
    return "  ".join(parts)


@dataclass(frozen=True, slots=True)
class ProgressView:
    """The progress bar's state: percent done (0..100) and the texts beside the bar."""

    percent: float
    description: str
    speed: str
    eta: str


def progress_view(job: jobs_pb2.Job, latest: jobs_pb2.JobProgress | None) -> ProgressView:
    """The bar for the job's overall progress, with the latest step report's epoch/step, speed and ETA."""
    description = f"epoch {job.epochs_done}/{job.epochs_total}"
    speed = format_rate(job.last_epoch.samples_per_s) if job.HasField("last_epoch") else MISSING
    eta = present(job, "eta_s")
    if latest is not None:
        description = f"epoch {latest.epoch}/{job.epochs_total} · step {latest.step}/{latest.steps_total}"
        speed = format_rate(latest.samples_per_s)
        if latest.HasField("eta_s"):
            eta = latest.eta_s
    fraction = present(job, "progress")
    if job.state == jobs_pb2.JOB_STATE_COMPLETED:
        fraction = 1.0
    return ProgressView(100 * min(max(fraction or 0.0, 0.0), 1.0), description, speed, format_duration(eta))


def final_lines(job: jobs_pb2.Job) -> list[str]:
    """The end of a watch: the outcome, the last epoch's metrics, the artifact or the failure reason."""
    outcome = f"{job.job_id} {state_name(job.state)} after {job.epochs_done}/{job.epochs_total} epochs"
    lines = [f"{outcome} (attempt {job.attempt})"]
    if job.HasField("last_epoch"):
        lines.append(f"last {epoch_line(job.last_epoch, job.epochs_total)}")
    if job.state == jobs_pb2.JOB_STATE_COMPLETED:
        lines.append(f"artifact {present(job, 'artifact_uri') or MISSING}")
        lines.append(f"sha256   {present(job, 'artifact_sha256') or MISSING}")
    if job.state == jobs_pb2.JOB_STATE_FAILED:
        lines.append(f"failure  {present(job, 'failure_reason') or 'no reason recorded'}")
    return lines
