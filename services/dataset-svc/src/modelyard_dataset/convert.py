"""Protobuf ⇄ domain values for DatasetService (no decisions here)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from modelyard.v1 import datasets_pb2
from modelyard_dataset.domain.dataset import Dataset
from modelyard_dataset.domain.sample import Sample
from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.schemas.datasets import (
    MAX_BOXES,
    MAX_CLASS_NAME_CHARS,
    AnnotationData,
    BoxData,
    DatasetVersionPublished,
    LabelSchemaData,
    ReadinessData,
)
from modelyard_events.schemas.manifest import VersionUri
from modelyard_grpc.values import LABEL_TASKS, timestamp

ENVIRONMENTS = {
    datasets_pb2.ENVIRONMENT_DEV: "dev",
    datasets_pb2.ENVIRONMENT_STAGING: "staging",
    datasets_pb2.ENVIRONMENT_PRODUCTION: "production",
}
STATES = {
    datasets_pb2.SAMPLE_STATE_UNLABELED: "unlabeled",
    datasets_pb2.SAMPLE_STATE_LABELED: "labeled",
    datasets_pb2.SAMPLE_STATE_VERIFIED: "verified",
    datasets_pb2.SAMPLE_STATE_REJECTED: "rejected",
}
_ENVIRONMENT_OF = {name: value for value, name in ENVIRONMENTS.items()}
_TASK_OF = {name: value for value, name in LABEL_TASKS.items()}
_STATE_OF = {name: value for value, name in STATES.items()}


def schema_to_proto(schema: LabelSchemaData) -> datasets_pb2.LabelSchema:
    """The label schema as protobuf."""
    return datasets_pb2.LabelSchema(task=_TASK_OF[schema.task], classes=schema.classes)


def annotation_from_proto(message: datasets_pb2.Annotation, field: str) -> AnnotationData:
    """An annotation as the domain's value (checked against the schema later); InvalidArgument under
    `field` when it exceeds what one event holds (more than MAX_BOXES boxes, an overlong class name)."""
    if len(message.boxes) > MAX_BOXES:
        raise InvalidArgument(
            f"{field}.boxes", f"at most {MAX_BOXES} boxes per sample; got {len(message.boxes)}"
        )
    names = [message.class_name, *(box.class_name for box in message.boxes)]
    if any(len(name) > MAX_CLASS_NAME_CHARS for name in names):
        raise InvalidArgument(
            f"{field}.class_name",
            f"names no class of this dataset: class names have at most {MAX_CLASS_NAME_CHARS} characters",
        )
    boxes = [
        BoxData(class_name=b.class_name, x=b.x, y=b.y, width=b.width, height=b.height) for b in message.boxes
    ]
    return AnnotationData(class_name=message.class_name or None, boxes=boxes)


def annotation_to_proto(annotation: AnnotationData | dict[str, Any]) -> datasets_pb2.Annotation:
    """An annotation (domain value or its JSON form) as protobuf."""
    value = (
        annotation if isinstance(annotation, AnnotationData) else AnnotationData.model_validate(annotation)
    )
    return datasets_pb2.Annotation(
        class_name=value.class_name or "",
        boxes=[datasets_pb2.BoundingBox(**box.model_dump()) for box in value.boxes],
    )


STATUS_OF = {
    "draft": datasets_pb2.DATASET_STATUS_DRAFT,
    "active": datasets_pb2.DATASET_STATUS_ACTIVE,
    "archived": datasets_pb2.DATASET_STATUS_ARCHIVED,
}


def dataset_to_proto(
    dataset: Dataset, counts: dict[str, int] | None, created_at: datetime | None
) -> datasets_pb2.Dataset:
    """A Dataset message: the aggregate's facts, with the views' counts when they have caught up."""
    seen = counts or {}
    message = datasets_pb2.Dataset(
        dataset_id=dataset.dataset_id,
        org_id=dataset.org_id,
        name=dataset.name,
        ai_module=dataset.ai_module,
        environment=_ENVIRONMENT_OF[dataset.environment],
        label_schema=schema_to_proto(dataset.label_schema),
        counts=datasets_pb2.DatasetCounts(
            samples=len(dataset.samples),
            bytes=dataset.size_bytes,
            labeled=seen.get("labeled", 0),
            verified=seen.get("verified", 0),
            rejected=seen.get("rejected", 0),
            unlabeled=len(dataset.samples) - sum(seen.get(s, 0) for s in ("labeled", "verified", "rejected")),
        ),
        latest_version=dataset.latest_version,
        created_by=dataset.created_by,
        stream_version=dataset.version,
        description=dataset.description,
        status=STATUS_OF.get(dataset.status, datasets_pb2.DATASET_STATUS_UNSPECIFIED),
    )
    if created_at is not None:
        message.created_at.CopyFrom(timestamp(created_at))
    return message


def dataset_row_to_proto(row: Any) -> datasets_pb2.Dataset:
    """A Dataset message from a views row (ListDatasets: no aggregate load per dataset)."""
    return datasets_pb2.Dataset(
        dataset_id=row.dataset_id,
        org_id=row.org_id,
        name=row.name,
        ai_module=row.ai_module,
        environment=_ENVIRONMENT_OF[row.environment],
        label_schema=datasets_pb2.LabelSchema(task=_TASK_OF[row.task], classes=list(row.classes)),
        counts=datasets_pb2.DatasetCounts(
            samples=row.samples,
            bytes=row.bytes,
            unlabeled=row.unlabeled,
            labeled=row.labeled,
            verified=row.verified,
            rejected=row.rejected,
        ),
        latest_version=row.latest_version,
        created_by=row.created_by,
        created_at=timestamp(row.created_at),
        description=row.description,
        status=STATUS_OF.get(row.status, datasets_pb2.DATASET_STATUS_UNSPECIFIED),
    )


def sample_to_proto(sample: Sample, added: Any) -> datasets_pb2.Sample:
    """A Sample message from the aggregate (authoritative: GetSample, review and label replies) and
    its file facts (an AddedSample, or a views row with the same fields)."""
    agreed = sample.consensus
    approval = sample.approval
    message = datasets_pb2.Sample(
        sample_id=sample.sample_id,
        dataset_id=sample.dataset_id,
        state=_STATE_OF[sample.state.value],
        labels=[
            datasets_pb2.AnnotatorLabel(annotator=who, annotation=annotation_to_proto(label))
            for who, label in sorted(sample.labels.items())
        ],
        agreement=approval.agreement if approval else (1.0 if sample.task == "none" else agreed.agreement),
        quality=sample.quality,
        reviewed_by=sample.review.reviewer if sample.review else "",
        review_reason=sample.review.reason if sample.review else "",
        version=sample.version,
    )
    chosen = approval.consensus if approval else agreed.annotation
    if chosen is not None:
        message.consensus.CopyFrom(annotation_to_proto(chosen))
    message.filename, message.sha256 = added.filename, added.sha256
    message.size_bytes, message.media_type = added.size_bytes, added.media_type
    provenance_into(message, added)
    return message


def provenance_into(message: datasets_pb2.Sample, source: Any) -> None:
    """Copy a sample's provenance (an AddedSample's, or a views row's: metadata may be JSON text)."""
    camera, captured, metadata = source.source_camera_id, source.captured_at, source.metadata
    if camera:
        message.source_camera_id = camera
    if captured is not None:
        message.captured_at.CopyFrom(timestamp(captured))
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    if metadata:
        message.metadata.update(metadata)


def sample_file_url(dataset_id: str, sha256: str) -> str:
    """The locator of a sample's file (DownloadSamples serves it by sha256 from a published version)."""
    return f"dataset://{dataset_id}/files/{sha256}"


def sample_row_to_proto(row: Any) -> datasets_pb2.Sample:
    """A Sample message from a views row (ListSamples)."""
    labels = row.labels if isinstance(row.labels, dict) else json.loads(row.labels)
    message = datasets_pb2.Sample(
        sample_id=row.sample_id,
        dataset_id=row.dataset_id,
        filename=row.filename,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        media_type=row.media_type,
        state=_STATE_OF[row.state],
        labels=[
            datasets_pb2.AnnotatorLabel(annotator=who, annotation=annotation_to_proto(label))
            for who, label in sorted(labels.items())
        ],
        agreement=row.agreement,
        quality=row.quality,
        reviewed_by=row.reviewed_by,
        review_reason=row.review_reason,
        version=row.version,
    )
    if row.consensus is not None:
        message.consensus.CopyFrom(annotation_to_proto(row.consensus))
    provenance_into(message, row)
    return message


def readiness_to_proto(dataset_id: str, version: int, report: ReadinessData) -> datasets_pb2.ReadinessReport:
    """A readiness report as protobuf."""
    return datasets_pb2.ReadinessReport(
        dataset_id=dataset_id,
        version=version,
        ready=report.ready,
        checks=[
            datasets_pb2.ReadinessCheck(name=c.name, passed=c.passed, detail=c.detail) for c in report.checks
        ],
        verified_per_class=report.verified_per_class,
    )


def version_to_proto(
    dataset: Dataset, event: DatasetVersionPublished, published_at: datetime | None
) -> datasets_pb2.DatasetVersion:
    """A DatasetVersion message (its uri is what CreateJob takes)."""
    message = datasets_pb2.DatasetVersion(
        dataset_id=event.dataset_id,
        version=event.version,
        org_id=event.org_id,
        manifest_sha256=event.manifest_sha256,
        samples=event.samples,
        bytes=event.size_bytes,
        split=datasets_pb2.SplitCounts(**event.split_counts),
        seed=event.seed,
        readiness=readiness_to_proto(event.dataset_id, event.version, event.readiness),
        published_by=event.published_by,
        label_schema=schema_to_proto(dataset.label_schema),
        uri=str(VersionUri(event.dataset_id, event.version)),
    )
    if published_at is not None:
        message.published_at.CopyFrom(timestamp(published_at))
    return message
