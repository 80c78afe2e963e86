"""Jobs as rich tables: the job list, one job's details, its epochs, its events, the queue."""

from __future__ import annotations

import json
from collections.abc import Iterable

from google.protobuf import json_format
from rich.table import Table

from modelyard.v1 import events_pb2, jobs_pb2
from modelyard_cli.render.values import (
    cells,
    format_duration,
    format_metric,
    format_percent,
    format_rate,
    format_time,
    present,
    state_name,
)

JOB_COLUMNS = ("id", "name", "org", "state", "priority", "attempt", "progress", "queue", "trainer", "updated")


def jobs_table(jobs: Iterable[jobs_pb2.Job], title: str | None = None) -> Table:
    """One row per job: id, name, org, state, priority, attempt, progress %, queue position, trainer,
    last update."""
    table = Table(*JOB_COLUMNS, title=title)
    for job in jobs:
        table.add_row(
            *cells(
                job.job_id,
                job.name,
                job.org_id,
                state_name(job.state),
                job.priority,
                job.attempt,
                format_percent(present(job, "progress")),
                present(job, "queue_position"),
                present(job, "trainer_id"),
                format_time(present(job, "updated_at")),
            )
        )
    return table


def estimate_table(estimate: jobs_pb2.JobEstimate) -> Table:
    """One row per kind of device: past runs, their speed, time per epoch, the whole run, its cost."""
    table = Table(
        "device", "past runs", "speed", "per epoch", f"{estimate.epochs} epochs, start to end", "cost"
    )
    table.title = "estimate"
    for device in estimate.devices:
        cost = f"{device.cost:,.2f} ({device.price_per_device_hour:g}/h)" if device.HasField("cost") else None
        table.add_row(
            *cells(
                device.device,
                device.runs,
                format_rate(device.samples_per_s),
                format_duration(device.epoch_s),
                format_duration(device.duration_s),
                cost,
            )
        )
    return table


ACTIVE_COLUMNS = (
    "id",
    "name",
    "org",
    "state",
    "progress",
    "epoch",
    "loss",
    "speed",
    "elapsed",
    "ETA",
    "trainer",
)


def active_table(jobs: Iterable[jobs_pb2.Job]) -> Table:
    """Unfinished jobs as an operator watches them: progress, where training stands, time spent and left."""
    table = Table(*ACTIVE_COLUMNS, title="active jobs")
    for job in jobs:
        # Before its first step, what the run is doing (fetching, loading the data …) stands in.
        epoch = (
            f"{job.epoch}/{job.epochs_total} step {job.step}/{job.steps_per_epoch}"
            if job.epoch
            else present(job, "phase_message")
        )
        table.add_row(
            *cells(
                job.job_id,
                job.name,
                job.org_id,
                state_name(job.state),
                format_percent(present(job, "progress")),
                epoch,
                format_metric(present(job, "loss")),
                format_rate(present(job, "samples_per_s")),
                format_duration(present(job, "elapsed_s")),
                format_duration(present(job, "eta_s")),
                present(job, "trainer_id"),
            )
        )
    return table


def queue_table(entries: Iterable[jobs_pb2.QueueEntry]) -> Table:
    """The queue in dispatch order: position, job, organization, priority, attempt, waiting since."""
    table = Table("position", "id", "name", "org", "priority", "attempt", "queued since", title="queue")
    for entry in entries:
        job = entry.job
        since = format_time(present(job, "updated_at"))
        table.add_row(
            *cells(entry.position, job.job_id, job.name, job.org_id, job.priority, job.attempt, since)
        )
    return table


def job_details(job: jobs_pb2.Job) -> Table:
    """Every field of one job worth reading, as a two-column grid."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in _detail_rows(job):
        grid.add_row(*cells(label, value))
    return grid


def _detail_rows(job: jobs_pb2.Job) -> list[tuple[str, object]]:
    hyperparameters = json_format.MessageToDict(job.hyperparameters)
    return [
        ("job", job.job_id),
        ("name", job.name),
        *_when_set(("description", job.description), ("kind", job.kind if job.kind == "evaluation" else "")),
        ("org", job.org_id),
        ("module / family", f"{job.ai_module} / {job.family}"),
        *_when_set(
            ("base version", present(job, "base_version_id")),
            ("evaluates version", present(job, "model_version_id")),
        ),
        ("dataset", job.dataset_uri),
        ("hyperparameters", json.dumps(hyperparameters, sort_keys=True)),
        ("state", f"{state_name(job.state)} (attempt {job.attempt}, version {job.version})"),
        ("priority", job.priority),
        ("queue position", present(job, "queue_position")),
        ("trainer", present(job, "trainer_id")),
        ("epochs", f"{job.epochs_done}/{job.epochs_total}"),
        (
            "progress",
            f"{format_percent(present(job, 'progress'))}, ETA {format_duration(present(job, 'eta_s'))}",
        ),
        *_when_set(("phase", f"{job.phase}: {job.phase_message}" if job.HasField("phase") else "")),
        *_when_set(("position", _position(job))),
        ("started", format_time(present(job, "started_at"))),
        ("elapsed", format_duration(present(job, "elapsed_s"))),
        *_when_set(
            ("ended", format_time(present(job, "completed_at")) if job.HasField("completed_at") else "")
        ),
        ("artifact", present(job, "artifact_uri")),
        ("sha256", present(job, "artifact_sha256")),
        *_when_set(("output version", present(job, "output_version_id"))),
        ("failure", present(job, "failure_reason")),
        ("created", f"{format_time(present(job, 'created_at'))} by {job.created_by or '-'}"),
        ("updated", format_time(present(job, "updated_at"))),
    ]


def _position(job: jobs_pb2.Job) -> str:
    """Where training stands: epoch and step, the last loss and speed, the device ("" before it starts)."""
    if job.epoch == 0:
        return ""
    parts = [f"epoch {job.epoch}, step {job.step}/{job.steps_per_epoch}"]
    if job.HasField("loss"):
        parts.append(f"loss {format_metric(job.loss)}")
    if job.HasField("samples_per_s"):
        parts.append(format_rate(job.samples_per_s))
    if job.HasField("device"):
        parts.append(f"on {job.device}")
    return ", ".join(parts)


def _when_set(*rows: tuple[str, object]) -> list[tuple[str, object]]:
    """The rows whose value is set (fine-tuning and evaluation details, shown only when they apply)."""
    return [(label, value) for label, value in rows if value]


def metrics_table(epochs: Iterable[jobs_pb2.EpochMetrics]) -> Table:
    """One row per completed epoch: losses, accuracy, the task's other metrics, speed, GPU use."""
    table = Table("attempt", "epoch", "train loss", "val loss", "val acc", "other", "speed", "time", "gpu")
    table.title = "epochs"
    for epoch in epochs:
        table.add_row(
            *cells(
                epoch.attempt,
                epoch.epoch,
                format_metric(epoch.train_loss),
                format_metric(epoch.val_loss),
                format_percent(present(epoch, "val_accuracy")),
                other_metrics(epoch),
                format_rate(epoch.samples_per_s),
                format_duration(epoch.duration_s),
                format_percent(_fraction(present(epoch, "gpu_utilization_pct"))),
            )
        )
    return table


def other_metrics(epoch: jobs_pb2.EpochMetrics) -> str:
    """The task's extra metrics, `val_mae=0.1200 val_r2=0.9100`, in name order."""
    return " ".join(f"{name}={format_metric(value)}" for name, value in sorted(epoch.metrics.items()))


def _fraction(pct: float | None) -> float | None:
    return None if pct is None else pct / 100


def events_table(events: Iterable[events_pb2.EventEnvelope]) -> Table:
    """The job's recorded events, oldest first: version, type, time, actor (subject and roles)."""
    table = Table("#", "type", "time", "actor", title="events")
    for event in events:
        actor = event.actor.subject
        if event.actor.roles:
            actor += f" ({', '.join(event.actor.roles)})"
        table.add_row(
            *cells(event.stream_version, event.type, format_time(present(event, "occurred_at")), actor)
        )
    return table


def job_line(job: jobs_pb2.Job) -> str:
    """One line about a job after a command: id, state, priority, queue position, version."""
    line = f"{job.job_id}  {state_name(job.state)}  priority {job.priority}"
    if job.HasField("queue_position"):
        line += f"  queue position {job.queue_position}"
    return f"{line}  version {job.version}"
