"""Rows (and freshly decided aggregates) → protobuf, and the enums both ways."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from modelyard.v1 import deploy_pb2
from modelyard_deploy.domain.deployment import Deployment
from modelyard_deploy.domain.rollout import Rollout
from modelyard_deploy.projections.rows import DeploymentRow, ModelOnServer, RolloutRow, ServerRow, WaveRow
from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.schemas.deploy import HealthLimits, HealthReport, ModelFigures, RunningModel

STATUS_TO_PROTO: dict[str, int] = {
    "pending": deploy_pb2.DEPLOYMENT_STATUS_PENDING,
    "downloading": deploy_pb2.DEPLOYMENT_STATUS_DOWNLOADING,
    "installing": deploy_pb2.DEPLOYMENT_STATUS_INSTALLING,
    "completed": deploy_pb2.DEPLOYMENT_STATUS_COMPLETED,
    "failed": deploy_pb2.DEPLOYMENT_STATUS_FAILED,
    "cancelled": deploy_pb2.DEPLOYMENT_STATUS_CANCELLED,
}
STATUS_FROM_PROTO = {number: name for name, number in STATUS_TO_PROTO.items()}
ROLLOUT_STATE_TO_PROTO: dict[str, int] = {
    "scheduled": deploy_pb2.ROLLOUT_STATE_SCHEDULED,
    "running": deploy_pb2.ROLLOUT_STATE_RUNNING,
    "rolling_back": deploy_pb2.ROLLOUT_STATE_ROLLING_BACK,
    "completed": deploy_pb2.ROLLOUT_STATE_COMPLETED,
    "halted": deploy_pb2.ROLLOUT_STATE_HALTED,
    "rolled_back": deploy_pb2.ROLLOUT_STATE_ROLLED_BACK,
    "cancelled": deploy_pb2.ROLLOUT_STATE_CANCELLED,
}


def timestamp(moment: datetime) -> Timestamp:
    """A protobuf Timestamp."""
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def statuses_from_proto(values: Sequence[int]) -> list[str]:
    """Status names for a ListDeployments filter; InvalidArgument for an unknown number."""
    try:
        return [STATUS_FROM_PROTO[v] for v in values]
    except KeyError:
        raise InvalidArgument(
            "statuses",
            "unknown deployment status; use pending, downloading, installing, completed, failed or cancelled",
        ) from None


def health_limits_from_proto(limits: deploy_pb2.HealthLimits) -> HealthLimits:
    """The limits a request sets; unset fields keep the defaults (InvalidArgument for bad values)."""
    values = {
        name: getattr(limits, name)
        for name in HealthLimits.model_fields
        if limits.HasField(name)  # every field is `optional` in the proto
    }
    try:
        return HealthLimits(**values)
    except ValueError as error:
        raise InvalidArgument("health", f"health limits are out of range: {error}") from None


def health_limits_to_proto(limits: HealthLimits) -> deploy_pb2.HealthLimits:
    """Every limit, defaults included."""
    return deploy_pb2.HealthLimits(**limits.model_dump())


def health_report_from_proto(report: deploy_pb2.HealthReport) -> HealthReport:
    """An agent's health-gate report (InvalidArgument when it does not make sense)."""
    try:
        return HealthReport(
            probes=report.probes,
            new=_figures_from_proto(report.new),
            old=_figures_from_proto(report.old) if report.HasField("old") else None,
            agreement=report.agreement if report.HasField("agreement") else None,
            compared_classes=report.compared_classes,
            passed=report.passed,
            reasons=list(report.reasons),
        )
    except ValueError as error:
        raise InvalidArgument("health", f"not a health report: {error}") from None


def _figures_from_proto(figures: deploy_pb2.ModelFigures) -> ModelFigures:
    return ModelFigures(
        version_id=figures.version_id,
        load_time_ms=figures.load_time_ms,
        latency_p95_ms=figures.latency_p95_ms,
    )


def health_report_to_proto(report: HealthReport) -> deploy_pb2.HealthReport:
    """The health gate's figures and verdict."""
    message = deploy_pb2.HealthReport(
        probes=report.probes,
        new=deploy_pb2.ModelFigures(**report.new.model_dump()),
        compared_classes=report.compared_classes,
        passed=report.passed,
        reasons=list(report.reasons),
    )
    if report.old is not None:
        message.old.CopyFrom(deploy_pb2.ModelFigures(**report.old.model_dump()))
    if report.agreement is not None:
        message.agreement = report.agreement
    return message


def running_from_proto(models: Sequence[deploy_pb2.RunningModel]) -> list[RunningModel]:
    """What an agent says it serves (InvalidArgument for a malformed entry)."""
    try:
        return [
            RunningModel(ai_module=m.ai_module, version_id=m.version_id, semantic_version=m.semantic_version)
            for m in models
        ]
    except ValueError as error:
        raise InvalidArgument("running", f"not a running model: {error}") from None


def _models(models: Sequence[ModelOnServer]) -> list[deploy_pb2.RunningModel]:
    return [
        deploy_pb2.RunningModel(
            ai_module=m.ai_module, version_id=m.version_id, semantic_version=m.semantic_version
        )
        for m in models
    ]


def deployment_to_proto(row: DeploymentRow) -> deploy_pb2.Deployment:
    """One deployment, every column."""
    message = deploy_pb2.Deployment(
        deployment_id=row.deployment_id,
        org_id=row.org_id,
        server_id=row.server_id,
        version_id=row.version_id,
        ai_module=row.ai_module,
        semantic_version=row.semantic_version,
        status=STATUS_TO_PROTO[row.status],  # type: ignore[arg-type]  # an enum's number
        phase=row.phase,
        progress_percent=row.progress_percent,
        scheduled_at=timestamp(row.scheduled_at),
        error_message=row.error_message,
        retry_count=row.retry_count,
        max_retries=row.max_retries,
        deadline_at=timestamp(row.deadline_at),
        kind=row.kind,
        created_by=row.created_by,
        updated_at=timestamp(row.updated_at),
        attempt=row.attempt,
    )
    for name, moment in (("started_at", row.started_at), ("completed_at", row.completed_at)):
        if moment is not None:
            getattr(message, name).CopyFrom(timestamp(moment))
    if row.retry_at is not None:
        message.next_retry_at.CopyFrom(timestamp(row.retry_at))
    if row.rollout_id is not None:
        message.rollout_id = row.rollout_id
    if row.wave is not None:
        message.wave = row.wave
    if row.previous_version_id is not None:
        message.previous_version_id = row.previous_version_id
    if row.health is not None:
        message.health.CopyFrom(health_report_to_proto(row.health))
    return message


def deployment_row(d: Deployment) -> DeploymentRow:
    """A freshly decided aggregate as the row the views will hold (replies to commands need no wait)."""
    return DeploymentRow(
        deployment_id=d.deployment_id,
        org_id=d.org_id,
        server_id=d.server_id,
        version_id=d.version_id,
        ai_module=d.ai_module,
        semantic_version=d.semantic_version,
        artifact_sha256=d.artifact_sha256,
        artifact_size_bytes=d.artifact_size_bytes,
        status=d.status,
        phase=d.phase or d.status,
        progress_percent=d.progress_percent,
        scheduled_at=d.scheduled_at,
        started_at=d.started_at,
        completed_at=d.completed_at,
        error_message=d.error_message,
        retry_count=d.retry_count,
        max_retries=d.max_retries,
        backoff_base_s=d.backoff_base_s,
        attempt=d.attempt,
        retry_at=d.retry_at,
        deadline_at=d.deadline_at,
        rollout_id=d.rollout_id,
        wave=d.wave,
        kind=d.kind,
        previous_version_id=d.previous_version_id,
        health_limits=d.health,
        health=d.health_report,
        created_by=d.created_by,
        reason=d.reason,
        created_at=d.created_at,
        updated_at=d.updated_at or d.created_at,
    )


def server_to_proto(row: ServerRow) -> deploy_pb2.EdgeServer:
    """An edge server with its models, drift and liveness."""
    reasons = row.drift_reasons
    message = deploy_pb2.EdgeServer(
        server_id=row.server_id,
        org_id=row.org_id,
        environment=row.environment,
        platform=row.platform,
        edge_version=row.edge_version,
        hostname=row.hostname,
        running=_models(row.running),
        intended=_models(row.intended),
        drift=bool(reasons),
        drift_reasons=reasons,
        online=row.online,
        free_disk_bytes=row.free_disk_bytes,
        registered_at=timestamp(row.registered_at),
    )
    if row.last_heartbeat_at is not None:
        message.last_heartbeat_at.CopyFrom(timestamp(row.last_heartbeat_at))
    if row.active_deployment is not None:
        message.active_deployment.CopyFrom(deployment_to_proto(row.active_deployment))
    return message


def edge_line(row: ServerRow) -> deploy_pb2.MobileStatus.EdgeLine:
    """The mobile status's line of one server."""
    line = deploy_pb2.MobileStatus.EdgeLine(
        server_id=row.server_id,
        environment=row.environment,
        running=_models(row.running),
        online=row.online,
        drift=bool(row.drift_reasons),
    )
    if row.last_heartbeat_at is not None:
        line.last_heartbeat_at.CopyFrom(timestamp(row.last_heartbeat_at))
    return line


def rollout_to_proto(row: RolloutRow) -> deploy_pb2.Rollout:
    """A rollout with its waves' progress."""
    message = deploy_pb2.Rollout(
        rollout_id=row.rollout_id,
        org_id=row.org_id,
        version_id=row.version_id,
        ai_module=row.ai_module,
        semantic_version=row.semantic_version,
        state=ROLLOUT_STATE_TO_PROTO[row.state],  # type: ignore[arg-type]  # an enum's number
        kind=row.kind,
        waves=[deploy_pb2.WaveProgress(**vars(w)) for w in row.waves],
        failure_threshold=row.failure_threshold,
        rollback_on_failure=row.rollback_on_failure,
        scheduled_at=timestamp(row.scheduled_at),
        deadline_s=row.deadline_s,
        max_retries=row.max_retries,
        health=health_limits_to_proto(row.health_limits),
        started_by=row.started_by,
        reason=row.reason,
        halt_reason=row.halt_reason,
        server_count=row.server_count,
        current_wave=row.current_wave,
        created_at=timestamp(row.created_at),
    )
    if row.environment is not None:
        message.environment = row.environment
    if row.finished_at is not None:
        message.finished_at.CopyFrom(timestamp(row.finished_at))
    return message


def rollout_row(r: Rollout) -> RolloutRow:
    """A freshly decided rollout as a row, for when the views have not applied it yet.

    Finished waves carry their recorded counts; unfinished ones show none yet.
    """
    results = {w.wave: w for w in r.wave_results}
    waves = []
    for wave, size in enumerate(r.wave_sizes):
        result = results.get(wave)
        waves.append(
            WaveRow(
                wave=wave,
                size=size,
                completed=result.completed if result else 0,
                failed=result.failed if result else 0,
                cancelled=result.cancelled if result else 0,
                in_progress=0 if result or wave > r.current_wave else size,
                started=wave <= r.current_wave,
                finished=result is not None,
                passed=bool(result and result.passed),
            )
        )
    return RolloutRow(
        rollout_id=r.rollout_id,
        org_id=r.org_id,
        version_id=r.version_id,
        ai_module=r.ai_module,
        semantic_version=r.semantic_version,
        environment=r.environment,
        state=r.state,
        kind=r.kind,
        wave_sizes=list(r.wave_sizes),
        failure_threshold=r.failure_threshold,
        rollback_on_failure=r.rollback_on_failure,
        scheduled_at=r.scheduled_at,
        deadline_s=r.deadline_s,
        max_retries=r.max_retries,
        backoff_base_s=r.backoff_base_s,
        health_limits=r.health,
        started_by=r.started_by,
        reason=r.reason,
        halt_reason=r.halt_reason or r.rollback_reason,
        server_count=r.server_count,
        current_wave=max(r.current_wave, 0),
        release_rollback_of=r.release_rollback_of,
        created_at=r.created_at,
        finished_at=r.finished_at,
        waves=waves,
    )
