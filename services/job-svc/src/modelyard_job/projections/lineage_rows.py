"""Pure: one event of any service → what it adds to the lineage graph (no I/O).

The graph (docs/audit.md, "Lineage"): edge server ← deployment ← model version ← job (← base version)
← dataset version ← samples. An edge points from what was made to what it was made from, and each
node keeps who did what to it (uploaded, labeled, reviewed, created, evaluated, approved, released,
deployed …). The linking ids come from the payloads: a job's `dataset_uri` (dataset://<id>/<n>) and
`model_input`, a version's `training_job_id`, a deployment's `version_id` and `server_id`.

Which samples a version holds is not in its event (the manifest is a blob): dataset-svc freezes the
samples verified when it publishes, so the projection links the samples whose last review, in
dataset-svc's log order, is an approval (`VersionSnapshot`, applied by the projection in SQL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.datasets import (
    AddedSample,
    AnnotationData,
    DatasetVersionPublished,
    SampleApproved,
    SampleLabeled,
    SampleRejected,
    SamplesAdded,
)
from modelyard_events.schemas.deploy import (
    DeploymentCancelled,
    DeploymentCreated,
    DeploymentProgressed,
    EdgeModelSwitched,
    EdgeServerRegistered,
)
from modelyard_events.schemas.jobs import JobCompleted, JobCreated, JobFailed
from modelyard_events.schemas.manifest import VersionUri
from modelyard_events.schemas.registry import (
    ModelApproved,
    ModelDeprecated,
    ModelEvaluated,
    ModelEvaluationFailed,
    ModelEvaluationRequested,
    ModelRejected,
    ModelReleased,
    ModelVersionRegistered,
)

EDGE_SERVER = "edge_server"
DEPLOYMENT = "deployment"
MODEL_VERSION = "model_version"
JOB = "job"
DATASET_VERSION = "dataset_version"
SAMPLE = "sample"
NODE_KINDS = (EDGE_SERVER, DEPLOYMENT, MODEL_VERSION, JOB, DATASET_VERSION, SAMPLE)
DETAIL_MAX_CHARS = 500


@dataclass(frozen=True, slots=True)
class Provenance:
    """What the upload says about a sample (the seeds' columns; None where the upload did not say)."""

    dataset_id: str
    filename: str
    sha256: str
    size_bytes: int
    media_type: str
    source_camera_id: str | None = None
    captured_at: datetime | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Node:
    """A node to create, or to complete when an earlier event only named it ("" / None: not known here)."""

    kind: str
    id: str
    org_id: str | None
    label: str = ""
    sample: Provenance | None = None


@dataclass(frozen=True, slots=True)
class Edge:
    """`down` was made from `up` (`relation` says how)."""

    down_kind: str
    down_id: str
    up_kind: str
    up_id: str
    relation: str
    org_id: str | None


@dataclass(frozen=True, slots=True)
class Act:
    """Who did what to a node, when."""

    kind: str
    id: str
    act: str
    subject: str
    at: datetime
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SampleReview:
    """A sample's review state after a label (reopened), an approval or a rejection."""

    sample_id: str
    dataset_id: str
    state: str  # labeled, verified, rejected


@dataclass(frozen=True, slots=True)
class VersionSnapshot:
    """Link every sample of `dataset_id` verified now to the dataset version `version_node`."""

    dataset_id: str
    version_node: str
    org_id: str | None


@dataclass
class LineageChange:
    """Everything one event adds to the graph (all empty for events the graph does not use)."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    acts: list[Act] = field(default_factory=list)
    reviews: list[SampleReview] = field(default_factory=list)
    snapshots: list[VersionSnapshot] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.nodes or self.edges or self.acts or self.reviews or self.snapshots)


def version_node_id(dataset_id: str, version: int) -> str:
    """A dataset version's node id: `<dataset_id>/<n>` (its dataset:// URI without the scheme)."""
    return f"{dataset_id}/{version}"


def sample_file_uri(dataset_id: str, sha256: str) -> str:
    """Where a sample's bytes are: dataset-svc's DownloadSamples serves them by dataset and hash."""
    return f"dataset://{dataset_id}/files/{sha256}"


def lineage_change(event: DomainEvent, envelope: EventEnvelope) -> LineageChange:
    """What `event` adds to the lineage graph."""
    change = LineageChange()
    org, who, at = envelope.org_id, envelope.actor.subject, envelope.occurred_at
    if isinstance(event, SamplesAdded):
        for sample in event.samples:
            change.nodes.append(_sample_node(event.dataset_id, sample, org))
            change.acts.append(
                Act(SAMPLE, sample.sample_id, "uploaded", who, at, f"upload {event.upload_id}")
            )
    elif isinstance(event, SampleLabeled):
        change.nodes.append(Node(SAMPLE, event.sample_id, org))
        detail = _annotation_text(event.annotation)
        change.acts.append(Act(SAMPLE, event.sample_id, "labeled", event.annotator, at, detail))
        change.reviews.append(SampleReview(event.sample_id, event.dataset_id, "labeled"))
    elif isinstance(event, SampleApproved | SampleRejected):
        verdict = "approved" if isinstance(event, SampleApproved) else "rejected"
        detail = f"{verdict}: {event.reason}" if event.reason else verdict
        change.nodes.append(Node(SAMPLE, event.sample_id, org))
        change.acts.append(Act(SAMPLE, event.sample_id, "reviewed", event.reviewer, at, _short(detail)))
        state = "verified" if isinstance(event, SampleApproved) else "rejected"
        change.reviews.append(SampleReview(event.sample_id, event.dataset_id, state))
    elif isinstance(event, DatasetVersionPublished):
        node = version_node_id(event.dataset_id, event.version)
        label = f"dataset {event.dataset_id} v{event.version}"
        change.nodes.append(Node(DATASET_VERSION, node, event.org_id, label))
        detail = f"{event.samples} samples, manifest {event.manifest_sha256[:12]}"
        change.acts.append(Act(DATASET_VERSION, node, "published", event.published_by, at, detail))
        change.snapshots.append(VersionSnapshot(event.dataset_id, node, event.org_id))
    elif envelope.type == "SampleDeleted":
        # Named by type: dataset-svc's lifecycle events are newer than this module. A deleted sample
        # stays in the versions that held it (they were frozen) but enters no later one.
        sample_id, dataset_id = getattr(event, "sample_id", ""), getattr(event, "dataset_id", "")
        detail = _short(str(getattr(event, "reason", "")))
        change.acts.append(
            Act(SAMPLE, sample_id, "deleted", str(getattr(event, "deleted_by", who)), at, detail)
        )
        change.reviews.append(SampleReview(sample_id, dataset_id, "deleted"))
    elif isinstance(event, JobCreated):
        _job_created(event, at, change)
    elif isinstance(event, JobCompleted):
        change.acts.append(Act(JOB, event.job_id, "completed", who, at, f"attempt {event.attempt}"))
    elif isinstance(event, JobFailed):
        change.acts.append(Act(JOB, event.job_id, "failed", who, at, _short(event.reason)))
    else:
        _registry_or_deploy(event, envelope, change)
    return change


def _job_created(event: JobCreated, at: datetime, change: LineageChange) -> None:
    org = event.org_id
    kind = "evaluation" if event.kind == "evaluation" else event.ai_module
    change.nodes.append(Node(JOB, event.job_id, org, f"{event.name} ({kind})"))
    change.acts.append(Act(JOB, event.job_id, "created", event.created_by, at, event.kind))
    try:
        uri = VersionUri.parse(event.dataset_uri)
    except ValueError:
        uri = None  # a local file (development): no dataset version to link
    if uri is not None:
        up = version_node_id(uri.dataset_id, uri.version)
        relation = "evaluated_on" if event.kind == "evaluation" else "trained_on"
        change.edges.append(Edge(JOB, event.job_id, DATASET_VERSION, up, relation, org))
    if event.model_input is not None:
        relation = "evaluates" if event.kind == "evaluation" else "fine_tunes"
        version = event.model_input.version_id
        change.edges.append(Edge(JOB, event.job_id, MODEL_VERSION, version, relation, org))


def _registry_or_deploy(event: DomainEvent, envelope: EventEnvelope, change: LineageChange) -> None:
    who, at = envelope.actor.subject, envelope.occurred_at
    if isinstance(event, ModelVersionRegistered):
        label = f"{event.ai_module} {event.semantic_version}"
        change.nodes.append(Node(MODEL_VERSION, event.version_id, event.org_id, label))
        change.edges.append(
            Edge(MODEL_VERSION, event.version_id, JOB, event.training_job_id, "trained_by", event.org_id)
        )
        change.acts.append(
            Act(MODEL_VERSION, event.version_id, "created", event.created_by, at, "registered")
        )
    elif isinstance(event, ModelEvaluationRequested):
        detail = f"requested on the {event.split} split (job {event.job_id})"
        change.acts.append(Act(MODEL_VERSION, event.version_id, "evaluated", event.requested_by, at, detail))
    elif isinstance(event, ModelEvaluated):
        detail = f"accuracy {event.report.accuracy:.4f} on {event.report.samples} samples"
        change.acts.append(Act(MODEL_VERSION, event.version_id, "evaluated", who, at, detail))
    elif isinstance(event, ModelEvaluationFailed):
        detail = _short(f"failed: {event.reason}")
        change.acts.append(Act(MODEL_VERSION, event.version_id, "evaluated", who, at, detail))
    elif isinstance(event, ModelApproved):
        change.acts.append(Act(MODEL_VERSION, event.version_id, "approved", event.approved_by, at))
    elif isinstance(event, ModelRejected):
        detail = _short(event.reason)
        change.acts.append(Act(MODEL_VERSION, event.version_id, "rejected", event.rejected_by, at, detail))
    elif isinstance(event, ModelReleased):
        detail = f"to {event.environment}" + (" (rollback)" if event.rollback else "")
        change.acts.append(Act(MODEL_VERSION, event.version_id, "released", event.released_by, at, detail))
    elif isinstance(event, ModelDeprecated):
        detail = _short(event.reason)
        change.acts.append(
            Act(MODEL_VERSION, event.version_id, "deprecated", event.deprecated_by, at, detail)
        )
    elif isinstance(event, EdgeServerRegistered):
        label = event.hostname or event.server_id
        change.nodes.append(Node(EDGE_SERVER, event.server_id, event.org_id, label))
        change.acts.append(Act(EDGE_SERVER, event.server_id, "registered", who, at, event.environment))
    elif isinstance(event, DeploymentCreated):
        _deployment_created(event, at, change)
    elif isinstance(event, DeploymentProgressed) and event.status in ("completed", "failed"):
        detail = event.status if not event.error_message else _short(f"failed: {event.error_message}")
        change.acts.append(Act(DEPLOYMENT, event.deployment_id, "finished", who, at, detail))
    elif isinstance(event, DeploymentCancelled):
        change.acts.append(Act(DEPLOYMENT, event.deployment_id, "cancelled", who, at, _short(event.reason)))
    elif isinstance(event, EdgeModelSwitched) and event.version_id is not None:
        detail = f"now serves {event.ai_module} version {event.version_id}"
        change.acts.append(Act(EDGE_SERVER, event.server_id, "switched", who, at, _short(detail)))


def _deployment_created(event: DeploymentCreated, at: datetime, change: LineageChange) -> None:
    org, deployment = event.org_id, event.deployment_id
    label = f"{event.ai_module} {event.semantic_version} on {event.server_id}"
    change.nodes.append(Node(DEPLOYMENT, deployment, org, label))
    change.nodes.append(Node(EDGE_SERVER, event.server_id, org))
    change.edges.append(Edge(DEPLOYMENT, deployment, MODEL_VERSION, event.version_id, "deploys", org))
    change.edges.append(Edge(EDGE_SERVER, event.server_id, DEPLOYMENT, deployment, "deployed_to", org))
    detail = f"{event.kind}" + (f": {event.reason}" if event.reason else "")
    change.acts.append(Act(DEPLOYMENT, deployment, "deployed", event.created_by, at, _short(detail)))


def _sample_node(dataset_id: str, sample: AddedSample, org: str | None) -> Node:
    # The seeds' provenance columns, read where a newer schema of the upload event carries them.
    captured = getattr(sample, "captured_at", None)
    metadata = getattr(sample, "metadata", None)
    camera = getattr(sample, "source_camera_id", None)
    provenance = Provenance(
        dataset_id=dataset_id,
        filename=sample.filename,
        sha256=sample.sha256,
        size_bytes=sample.size_bytes,
        media_type=sample.media_type,
        source_camera_id=str(camera) if camera else None,
        captured_at=captured if isinstance(captured, datetime) else None,
        metadata=dict(metadata) if isinstance(metadata, dict) else None,
    )
    return Node(SAMPLE, sample.sample_id, org, sample.filename, provenance)


def _annotation_text(annotation: AnnotationData) -> str:
    if annotation.class_name is not None:
        return _short(f"class {annotation.class_name}")
    return f"{len(annotation.boxes)} boxes"


def _short(text: str) -> str:
    return text[:DETAIL_MAX_CHARS]


def metadata_json(metadata: dict[str, Any] | None) -> str | None:
    """A sample's free metadata as stored (JSON), or None."""
    return None if metadata is None else json.dumps(metadata, sort_keys=True)
