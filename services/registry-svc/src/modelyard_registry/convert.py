"""VersionState → protobuf, and the status enum both ways."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from modelyard.v1 import registry_pb2
from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.schemas.registry import EvaluationReport
from modelyard_registry.domain.lifecycle import Status
from modelyard_registry.domain.version_state import VersionState

STATUS_TO_PROTO: dict[Status, int] = {
    "draft": registry_pb2.MODEL_STATUS_DRAFT,
    "testing": registry_pb2.MODEL_STATUS_TESTING,
    "approved": registry_pb2.MODEL_STATUS_APPROVED,
    "released": registry_pb2.MODEL_STATUS_RELEASED,
    "deprecated": registry_pb2.MODEL_STATUS_DEPRECATED,
}
_STATUS_FROM_PROTO = {number: name for name, number in STATUS_TO_PROTO.items()}


def statuses_from_proto(values: list[int]) -> list[str]:
    """Status names for a ListVersions filter; InvalidArgument for an unknown number."""
    try:
        return [_STATUS_FROM_PROTO[v] for v in values]
    except KeyError:
        raise InvalidArgument(
            "statuses", "unknown model status; use draft, testing, approved, released or deprecated"
        ) from None


def timestamp(moment: datetime) -> Timestamp:
    """A protobuf Timestamp."""
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def version_to_proto(v: VersionState) -> registry_pb2.ModelVersion:
    """Every column of the version the API shows."""
    r = v.registered
    c = r.config
    message = registry_pb2.ModelVersion(
        version_id=v.version_id,
        org_id=r.org_id,
        ai_module=r.ai_module,
        semantic_version=str(v.semantic_version),
        name=r.name,
        description=r.description,
        training_job_id=r.training_job_id,
        created_by=r.created_by,
        artifact_uri=r.artifact_uri,
        artifact_sha256=r.artifact_sha256,
        artifact_size_bytes=r.artifact_size_bytes,
        config=registry_pb2.ModelConfig(
            family=c.family,
            input_shape=c.input_shape,
            class_names=c.class_names or [],
            preprocessing=c.preprocessing,
            config_uri=c.config_uri,
            config_sha256=c.config_sha256,
        ),
        training_metrics=r.training_metrics,
        dataset_uri=r.dataset_uri,
        min_edge_version=r.min_edge_version,
        supported_platforms=r.supported_platforms,
        status=STATUS_TO_PROTO[v.status],  # type: ignore[arg-type]
        status_reason=v.status_reason,
        is_approved=v.approval is not None and v.status in ("approved", "released"),
        is_released=v.status == "released",
        release_notes=v.release_notes,
        environments=sorted(v.environments),
        bump=r.bump or "",
        bump_reason=r.bump_reason,
        revision=v.revision,
    )
    if v.registered_at is not None:
        message.registered_at.CopyFrom(timestamp(v.registered_at))
    if r.base_version_id:
        message.base_version_id = r.base_version_id
    if r.dataset_manifest_sha256:
        message.dataset_manifest_sha256 = r.dataset_manifest_sha256
    if v.released_at is not None:
        message.released_at.CopyFrom(timestamp(v.released_at))
    if v.approval is not None:
        message.approved_by = v.approval.approved_by
        message.approved_at.CopyFrom(timestamp(v.approval.approved_at))
        message.signed_manifest_json = v.approval.manifest.manifest_json
        message.gates.extend(
            registry_pb2.GateResult(gate=g.gate, threshold=g.threshold, measured=g.measured, passed=g.passed)
            for g in v.approval.gates
        )
    if v.pending is not None:
        message.evaluation.CopyFrom(
            registry_pb2.Evaluation(
                evaluation_id=v.pending.evaluation_id,
                job_id=v.pending.job_id,
                requested_by=v.pending.requested_by,
                dataset_uri=v.pending.dataset_uri,
                split=v.pending.split,
                finished=False,
            )
        )
    elif v.evaluation is not None:
        report = v.evaluation.report
        message.evaluation.CopyFrom(
            _evaluation(report, v.evaluation.evaluation_id, v.evaluation.job_id, v.evaluation.requested_by)
        )
        message.accuracy = report.accuracy
        message.precision_score = report.precision
        message.recall_score = report.recall
        message.f1_score = report.f1
        message.inference_time_ms = report.latency_p50_ms
    return message


def _evaluation(
    report: EvaluationReport, evaluation_id: str, job_id: str, requested_by: str
) -> registry_pb2.Evaluation:
    return registry_pb2.Evaluation(
        evaluation_id=evaluation_id,
        job_id=job_id,
        requested_by=requested_by,
        dataset_uri=report.dataset_uri,
        split=report.split,
        samples=report.samples,
        device=report.device,
        accuracy=report.accuracy,
        precision=report.precision,
        recall=report.recall,
        f1=report.f1,
        latency_p50_ms=report.latency_p50_ms,
        latency_p95_ms=report.latency_p95_ms,
        per_class=[
            registry_pb2.ClassScores(
                label=c.label, precision=c.precision, recall=c.recall, f1=c.f1, support=c.support
            )
            for c in report.per_class
        ],
        confusion=[registry_pb2.ConfusionRow(counts=row) for row in report.confusion or []],
        finished=True,
    )
