"""Events of registry-svc: model versions of one AI module (stream_type "model_module").

One stream per (organization, ai_module), id `<org_id>/<ai_module>`: every version of the module
lives in it, so the module's rules (semantic versions never reused, one current release per
environment, at most N active versions, rollback as one decision) hold by a single expected-version
append. States (DESIGN §5): draft → testing → approved → released → deprecated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelyard_events.envelope import DomainEvent
from modelyard_events.registry import EventRegistry
from modelyard_events.schemas.bounds import Detail, Identifier, Name, Reason, Sha256Hex, Uri

MODULE_STREAM = "model_module"
MAX_CLASSES = 500
MAX_CLASS_NAME_CHARS = 64
MAX_PLATFORMS = 16
MAX_METRICS = 64
CONFUSION_MAX_CLASSES = 32  # a larger model's confusion matrix is not carried (its per-class scores are)
PER_CLASS_MAX = 256  # above this, the evaluation keeps the classes with the lowest recall
RELEASE_NOTES_MAX_CHARS = 4000
SEMVER_MAX_CHARS = 64
MAX_ENVIRONMENTS = 16  # per module

ClassName = Annotated[str, Field(max_length=MAX_CLASS_NAME_CHARS)]
SemanticVersion = Annotated[str, Field(max_length=SEMVER_MAX_CHARS)]
ConfusionRow = Annotated[list[int], Field(max_length=CONFUSION_MAX_CLASSES)]
ModelStatus = Literal["draft", "testing", "approved", "released", "deprecated"]
VersionBump = Literal["major", "minor", "patch"]


def module_stream_id(org_id: str, ai_module: str) -> str:
    """The stream that holds every version of `ai_module` in `org_id`."""
    return f"{org_id}/{ai_module}"


class ModelConfig(BaseModel):
    """Everything an edge needs to run the artifact, besides its weights (also in the config blob)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: Name
    input_shape: list[int] = Field(max_length=8)
    class_names: list[ClassName] | None = Field(default=None, max_length=MAX_CLASSES)
    feature_count: int = Field(default=0, ge=0)  # tabular inputs; their names are in the config blob
    input_schema_sha256: Sha256Hex  # of family, input shape and feature names: what "same input" means
    preprocessing: Annotated[str, Field(max_length=64)]  # "image" or "tabular": statistics in the blob
    config_uri: Uri  # the full config (with fitted statistics) as canonical JSON in the registry's store
    config_sha256: Sha256Hex


class ClassScores(BaseModel):
    """Precision, recall and F1 of one class on the evaluation split, and how many samples it had."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: ClassName
    precision: float
    recall: float
    f1: float
    support: int = Field(ge=0)


class EvaluationReport(BaseModel):
    """What an evaluation run measured on a held-out split, on the trainer's device."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset_uri: Uri
    split: Name
    samples: int = Field(ge=0)
    device: Name
    accuracy: float
    precision: float  # macro
    recall: float  # macro
    f1: float  # macro
    latency_p50_ms: float
    latency_p95_ms: float
    per_class: list[ClassScores] = Field(max_length=PER_CLASS_MAX)
    classes_total: int = Field(default=0, ge=0)  # classes the model knows (per_class may hold fewer)
    # rows = true class, columns = predicted, in class order; None above CONFUSION_MAX_CLASSES
    confusion: list[ConfusionRow] | None = Field(default=None, max_length=CONFUSION_MAX_CLASSES)


class ModelVersionRegistered(DomainEvent):
    """A completed training job became a draft version; its artifact is in the registry's store."""

    type_name = "ModelVersionRegistered"
    version_id: Identifier
    org_id: Identifier
    ai_module: Name
    semantic_version: SemanticVersion
    bump: VersionBump | None  # None for a module's first version
    bump_reason: Detail
    name: Name
    description: Detail = ""
    training_job_id: Identifier
    base_version_id: Identifier | None = None
    created_by: Identifier  # who created the training job
    artifact_uri: Uri
    artifact_sha256: Sha256Hex
    artifact_size_bytes: int = Field(ge=0)
    config: ModelConfig
    training_metrics: dict[Name, float] = Field(max_length=MAX_METRICS)
    dataset_uri: Uri
    dataset_manifest_sha256: Sha256Hex | None = None
    min_edge_version: SemanticVersion
    supported_platforms: list[Name] = Field(max_length=MAX_PLATFORMS)


class ModelVersionRenumbered(DomainEvent):
    """An operator set a draft version's semantic version explicitly (higher than any in the module)."""

    type_name = "ModelVersionRenumbered"
    version_id: Identifier
    semantic_version: SemanticVersion
    previous: SemanticVersion
    reason: Reason


class ModelEvaluationRequested(DomainEvent):
    """Testing began: an evaluation job `job_id` was asked of the queue (draft → testing)."""

    type_name = "ModelEvaluationRequested"
    version_id: Identifier
    org_id: Identifier
    ai_module: Name
    semantic_version: SemanticVersion
    family: Name
    artifact_sha256: Sha256Hex
    artifact_size_bytes: int = Field(ge=0)
    evaluation_id: Identifier
    job_id: Identifier
    dataset_uri: Uri
    split: Name
    requested_by: Identifier


class ModelEvaluated(DomainEvent):
    """The evaluation run finished; its figures are what the module's gates read (stays testing)."""

    type_name = "ModelEvaluated"
    version_id: Identifier
    evaluation_id: Identifier
    job_id: Identifier
    report: EvaluationReport


class ModelEvaluationFailed(DomainEvent):
    """The evaluation run failed or was cancelled: testing → draft, with the reason."""

    type_name = "ModelEvaluationFailed"
    version_id: Identifier
    evaluation_id: Identifier
    job_id: Identifier
    reason: Reason


class GateResult(BaseModel):
    """One metric gate of the module, its threshold and what the evaluation measured."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gate: Name
    threshold: float
    measured: float
    passed: bool


class SignedArtifactManifest(BaseModel):
    """The registry's Ed25519 signature over the artifact manifest (modelyard_artifacts.manifest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    manifest_json: Annotated[str, Field(max_length=8192)]  # the signed manifest as stored and served
    key_id: Name
    config_sha256: Sha256Hex


class ModelApproved(DomainEvent):
    """A super admin other than the job's creator and the evaluation's requester approved the version,
    every gate passing (testing → approved); the artifact manifest is signed."""

    type_name = "ModelApproved"
    version_id: Identifier
    org_id: Identifier
    ai_module: Name
    semantic_version: SemanticVersion
    approved_by: Identifier
    approved_at: datetime
    evaluation_id: Identifier
    gates: list[GateResult] = Field(max_length=MAX_METRICS)
    manifest: SignedArtifactManifest


class ModelRejected(DomainEvent):
    """A reviewer sent the version back to draft (from testing or approved), with the reason."""

    type_name = "ModelRejected"
    version_id: Identifier
    rejected_by: Identifier
    reason: Reason
    previous_status: ModelStatus


class ModelReleased(DomainEvent):
    """The version is the module's current release in `environment` (approved or released → released)."""

    type_name = "ModelReleased"
    version_id: Identifier
    org_id: Identifier
    ai_module: Name
    semantic_version: SemanticVersion
    environment: Name
    released_by: Identifier
    released_at: datetime
    release_notes: Annotated[str, Field(max_length=RELEASE_NOTES_MAX_CHARS)]
    artifact_sha256: Sha256Hex
    artifact_size_bytes: int = Field(ge=0)
    replaces_version_id: Identifier | None = None
    rollback: bool = False


class ModelDeprecated(DomainEvent):
    """No longer recommended (released or approved → deprecated); `rollback` when a rollback did it."""

    type_name = "ModelDeprecated"
    version_id: Identifier
    org_id: Identifier
    ai_module: Name
    semantic_version: SemanticVersion
    environments: list[Name] = Field(max_length=MAX_ENVIRONMENTS)  # where it stopped being current
    deprecated_by: Identifier
    reason: Reason
    rollback: bool = False


REGISTRY_EVENTS = EventRegistry(
    [
        ModelVersionRegistered,
        ModelVersionRenumbered,
        ModelEvaluationRequested,
        ModelEvaluated,
        ModelEvaluationFailed,
        ModelApproved,
        ModelRejected,
        ModelReleased,
        ModelDeprecated,
    ]
)
