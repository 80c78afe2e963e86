"""A model version as the Models pages show it: figures, gates, and the lifecycle steps its status
allows (draft → testing → approved → released → deprecated; rollback releases an earlier one again)."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.v1 import registry_pb2
from modelyard_cli.render.model_values import status_name
from modelyard_cli.render.values import present
from modelyard_console.values import MISSING, format_bytes, format_metric, format_time

# What an approval or release refusal usually means, as yard's advice says it (a person reads it beside
# the service's own message).
REFUSAL_ADVICE = {
    ("ApproveVersion", "PERMISSION_DENIED"): (
        "Approval needs a super admin who neither created the training job nor requested the evaluation "
        "(four eyes)."
    ),
    ("ApproveVersion", "FAILED_PRECONDITION"): (
        "Approval needs a tested version whose evaluation has finished and passes the module's gates."
    ),
    ("ReleaseVersion", "RESOURCE_EXHAUSTED"): (
        "The plan's limit of active versions per module is reached: deprecate one to free a place."
    ),
}


@dataclass(frozen=True, slots=True)
class GateView:
    """One metric gate as judged at approval."""

    gate: str
    threshold: str
    measured: str
    passed: bool


@dataclass(frozen=True, slots=True)
class ModelVersionView:
    """One version's figures as text, plus the steps its status allows."""

    version_id: str
    org_id: str
    ai_module: str
    semantic_version: str
    name: str
    status: str
    status_reason: str
    created_by: str
    training_job_id: str
    base_version_id: str
    dataset_uri: str
    artifact_sha256: str
    artifact_size: str
    registered_at: str
    accuracy: str
    precision: str
    recall: str
    f1: str
    latency_p50_ms: str
    latency_p95_ms: str
    evaluation_state: str
    training_metrics: list[tuple[str, str]]
    gates: list[GateView]
    approved_by: str
    approved_at: str
    released_at: str
    environments: str
    release_notes: str
    can_evaluate: bool
    can_approve: bool
    can_reject: bool
    can_release: bool
    can_deprecate: bool
    can_roll_back_to: bool


def model_version_view(version: registry_pb2.ModelVersion) -> ModelVersionView:
    """The view of `version` as GetVersion or ListVersions returned it."""
    status = status_name(version.status)
    evaluation = version.evaluation if version.HasField("evaluation") else None
    return ModelVersionView(
        version_id=version.version_id, org_id=version.org_id, ai_module=version.ai_module,
        semantic_version=version.semantic_version, name=version.name, status=status,
        status_reason=version.status_reason, created_by=version.created_by,
        training_job_id=version.training_job_id, base_version_id=version.base_version_id or "",
        dataset_uri=version.dataset_uri, artifact_sha256=version.artifact_sha256,
        artifact_size=format_bytes(version.artifact_size_bytes),
        registered_at=format_time(version.registered_at),
        accuracy=format_metric(present(version, "accuracy")),
        precision=format_metric(present(version, "precision_score")),
        recall=format_metric(present(version, "recall_score")),
        f1=format_metric(present(version, "f1_score")),
        latency_p50_ms=_ms(evaluation.latency_p50_ms if evaluation and evaluation.finished else None),
        latency_p95_ms=_ms(evaluation.latency_p95_ms if evaluation and evaluation.finished else None),
        evaluation_state=_evaluation_state(evaluation),
        training_metrics=[(k, format_metric(v)) for k, v in sorted(version.training_metrics.items())],
        gates=[_gate(g) for g in version.gates],
        approved_by=version.approved_by or MISSING,
        approved_at=format_time(present(version, "approved_at")),
        released_at=format_time(present(version, "released_at")),
        environments=", ".join(version.environments) or MISSING, release_notes=version.release_notes,
        can_evaluate=status == "draft", can_approve=status == "testing",
        can_reject=status in ("testing", "approved"), can_release=status == "approved",
        can_deprecate=status in ("approved", "released"),
        can_roll_back_to=status in ("approved", "deprecated") and version.is_approved,
    )  # fmt: skip


def _ms(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f} ms"


def _evaluation_state(evaluation: registry_pb2.Evaluation | None) -> str:
    if evaluation is None:
        return "not evaluated"
    where = f"{evaluation.samples} samples of {evaluation.split}" if evaluation.finished else "running"
    return f"{'finished' if evaluation.finished else 'pending'} ({where})"


def _gate(result: registry_pb2.GateResult) -> GateView:
    return GateView(result.gate, f"{result.threshold:g}", f"{result.measured:.4f}", result.passed)
