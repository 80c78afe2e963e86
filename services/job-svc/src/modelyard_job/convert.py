"""Rows and aggregates → protobuf messages (the gRPC edge; nothing else knows protobuf)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2

from modelyard.v1 import jobs_pb2
from modelyard_grpc.values import timestamp
from modelyard_job.app.estimates import JobEstimate
from modelyard_job.projections.rows import EpochRow, JobRow, TrainerRow


def state_to_proto(state: str) -> str:
    """ "queued" → "JOB_STATE_QUEUED" (protobuf setters take enum names)."""
    name = f"JOB_STATE_{state.upper()}"
    return name if name in jobs_pb2.JobState.keys() else "JOB_STATE_UNSPECIFIED"  # noqa: SIM118 (not a dict)


def state_from_proto(value: int) -> str:
    """JOB_STATE_QUEUED → "queued"."""
    return jobs_pb2.JobState.Name(value).removeprefix("JOB_STATE_").lower()


def struct_from_dict(values: dict[str, Any]) -> struct_pb2.Struct:
    """A JSON-like dict as a protobuf Struct."""
    message = struct_pb2.Struct()
    message.update(values)
    return message


def dict_from_struct(message: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as a dict; whole-number doubles become ints (Struct has only doubles)."""
    return {key: _whole(value) for key, value in json_format.MessageToDict(message).items()}


def job_to_proto(row: JobRow, last_epoch: EpochRow | None = None) -> jobs_pb2.Job:
    """The Job message of a views row; an unfinished job's elapsed time runs to the time of the read."""
    job = jobs_pb2.Job(
        job_id=row.job_id,
        org_id=row.org_id,
        name=row.name,
        ai_module=row.ai_module,
        family=row.family,
        dataset_uri=row.dataset_uri,
        hyperparameters=struct_from_dict(row.hyperparameters),
        priority=row.priority,
        state=state_to_proto(row.state),
        attempt=row.attempt,
        epochs_done=row.epochs_done,
        epochs_total=row.epochs_total or int(row.hyperparameters.get("epochs", 0)),
        created_by=row.created_by,
        created_at=timestamp(row.created_at),
        updated_at=timestamp(row.updated_at),
        version=row.version,
        kind=row.kind,
        description=row.description,
        epoch=row.epoch,
        step=row.step,
        steps_per_epoch=row.steps_per_epoch,
    )
    if row.started_at is not None:
        job.started_at.CopyFrom(timestamp(row.started_at))
        end = row.completed_at or datetime.now(UTC)
        job.elapsed_s = max((end - row.started_at).total_seconds(), 0.0)
    if row.completed_at is not None:
        job.completed_at.CopyFrom(timestamp(row.completed_at))
    optional = {
        "trainer_id": row.trainer_id,
        "queue_position": row.queue_position,
        "progress": row.progress,
        "eta_s": row.eta_s,
        "artifact_uri": row.artifact_uri,
        "artifact_sha256": row.artifact_sha256,
        "failure_reason": row.failure_reason,
        "base_version_id": row.base_version_id,
        "output_version_id": row.output_version_id,
        "model_version_id": row.model_version_id,
        "loss": row.loss,
        "samples_per_s": row.samples_per_s,
        "device": row.device,
        "phase": row.phase,
        "phase_message": row.phase_message,
    }
    for field, value in optional.items():
        if value is not None:
            setattr(job, field, value)
    if last_epoch is not None:
        job.last_epoch.CopyFrom(epoch_to_proto(last_epoch))
    return job


def epoch_to_proto(row: EpochRow) -> jobs_pb2.EpochMetrics:
    """The EpochMetrics message of a metrics row."""
    epoch = jobs_pb2.EpochMetrics(
        epoch=row.epoch,
        train_loss=row.train_loss,
        val_loss=row.val_loss,
        metrics=row.metrics,
        samples_per_s=row.samples_per_s,
        duration_s=row.duration_s,
        attempt=row.attempt,
    )
    if row.val_accuracy is not None:
        epoch.val_accuracy = row.val_accuracy
    if row.gpu_utilization_pct is not None:
        epoch.gpu_utilization_pct = row.gpu_utilization_pct
    if row.gpu_memory_bytes is not None:
        epoch.gpu_memory_bytes = row.gpu_memory_bytes
    return epoch


def trainer_to_proto(row: TrainerRow) -> jobs_pb2.Trainer:
    """The Trainer message of a trainer row."""
    trainer = jobs_pb2.Trainer(
        trainer_id=row.trainer_id,
        slots_total=row.slots_total,
        slots_free=row.slots_free,
        gpus=row.gpus,
        alive=row.alive,
        job_ids=row.job_ids,
    )
    if row.last_heartbeat_at is not None:
        trainer.last_heartbeat_at.CopyFrom(timestamp(row.last_heartbeat_at))
    return trainer


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def estimate_to_proto(found: JobEstimate) -> jobs_pb2.JobEstimate:
    """The JobEstimate message of an estimate."""
    reply = jobs_pb2.JobEstimate(epochs=found.epochs, explanation=found.explanation)
    if found.train_samples is not None:
        reply.train_samples = found.train_samples
    for device in found.devices:
        message = jobs_pb2.DeviceEstimate(
            device=device.device,
            runs=device.runs,
            samples_per_s=device.samples_per_s,
            epoch_s=device.epoch_s,
            duration_s=device.duration_s,
            scaled_to_dataset=device.scaled_to_dataset,
        )
        if device.cost is not None:
            message.cost = device.cost
        if device.price_per_device_hour is not None:
            message.price_per_device_hour = device.price_per_device_hour
        reply.devices.append(message)
    return reply
