"""Events of dataset-svc: datasets, their samples' labels and reviews, published versions.

Streams: "dataset" (id `ds-…`: creation, uploaded samples, published versions), "sample" (id
`<dataset_id>:<sha256 prefix>`: labels and reviews, so two reviewers race on one sample's version and
never on the whole dataset) and "dataset_storage" (id `storage:<org_id>`: bytes charged to the plan).
A sample's id is derived from its content, so the same bytes in one dataset are one sample.

The lifecycle (description, archive, deletion) is recorded on the "dataset" stream: a deletion
removes files and gives bytes back (DatasetStorageFreed on the ledger), but its events stay, so the
chain still verifies and the audit shows who deleted what and why.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from modelyard_events.canonical import canonical_json
from modelyard_events.envelope import DomainEvent
from modelyard_events.registry import EventRegistry
from modelyard_events.schemas.bounds import Detail, Identifier, JsonCap, Name, Reason, Sha256Hex

DATASET_STREAM = "dataset"
SAMPLE_STREAM = "sample"
STORAGE_STREAM = "dataset_storage"

Environment = Literal["dev", "staging", "production"]
LabelTask = Literal["classification", "detection", "none"]
SplitName = Literal["train", "val", "test"]
# Caps (schemas.bounds): each keeps its event's worst case far below the store's size limit.
MAX_CLASSES = 500
MAX_CLASS_NAME_CHARS = 64
MAX_BOXES = 500
MAX_READINESS_CHECKS = 16
SAMPLES_PER_EVENT = 64
FILENAME_MAX_CHARS = 255
# A sample's provenance (the seeds' training_samples columns). 64 samples share one SamplesAdded, so a
# sample's share of the event's budget is small: the metadata's canonical JSON is capped as a whole.
CAMERA_ID_MAX_CHARS = 48  # a UUID (the seeds' type) or a short name
METADATA_MAX_KEYS = 16
METADATA_KEY_MAX_CHARS = 64
METADATA_VALUE_MAX_CHARS = 256
METADATA_MAX_BYTES = 512
CAPTURED_AT_MAX_SKEW = timedelta(minutes=5)
CameraId = Annotated[
    str, Field(min_length=1, max_length=CAMERA_ID_MAX_CHARS, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
MetadataKey = Annotated[str, Field(min_length=1, max_length=METADATA_KEY_MAX_CHARS)]
MetadataValue = Annotated[str, Field(max_length=METADATA_VALUE_MAX_CHARS)]
SampleMetadata = Annotated[
    dict[MetadataKey, MetadataValue],
    # The key count is checked with the bytes: a MaxLen here would hide the JsonCap from size_bound.
    AfterValidator(lambda value: _metadata_within_bounds(value)),
    JsonCap(METADATA_MAX_BYTES),
]
ClassName = Annotated[str, Field(max_length=MAX_CLASS_NAME_CHARS)]


def metadata_bytes(metadata: dict[str, str]) -> int:
    """The UTF-8 bytes of a sample's metadata as an event stores it (canonical JSON)."""
    return len(canonical_json(metadata).encode())


def _metadata_within_bounds(value: dict[str, str]) -> dict[str, str]:
    if len(value) > METADATA_MAX_KEYS:
        raise ValueError(f"holds {len(value)} keys; at most {METADATA_MAX_KEYS} are allowed")
    size = metadata_bytes(value)
    if size > METADATA_MAX_BYTES:
        raise ValueError(f"holds {size:,} bytes of JSON; at most {METADATA_MAX_BYTES:,} are allowed")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:  # a naive time means nothing in a log read from anywhere
        raise ValueError("must carry a time zone (UTC recommended)")
    return value


CapturedAt = Annotated[datetime, AfterValidator(_aware)]
# The label task each model family trains from (tabular families read their target from a column).
FAMILY_LABEL_TASKS: dict[str, LabelTask] = {
    "image_classifier": "classification",
    "tabular_classifier": "none",
    "tabular_regressor": "none",
}


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LabelSchemaData(_Value):
    """What labels a dataset accepts: the task and its class names (in the model's output order)."""

    task: LabelTask
    classes: list[ClassName] = Field(default_factory=list, max_length=MAX_CLASSES)


class BoxData(_Value):
    """A bounding box in image fractions (0..1), left/top corner plus size, with its class."""

    class_name: ClassName
    x: float
    y: float
    width: float
    height: float


class AnnotationData(_Value):
    """One annotator's label of one sample: a class (classification) or boxes (detection)."""

    class_name: ClassName | None = None
    boxes: list[BoxData] = Field(default_factory=list, max_length=MAX_BOXES)


class AddedSample(_Value):
    """A stored file that became a sample, with the provenance its uploader gave (optional).

    The provenance fields came later: samples recorded before them decode with None, and their stored
    payload (which the hash covers) is never rewritten. `captured_at` is checked against the clock by
    dataset-svc when the file arrives (a few minutes of skew allowed), not here: an event decodes the
    same at any later time.
    """

    sample_id: Identifier
    filename: str = Field(max_length=FILENAME_MAX_CHARS)
    sha256: Sha256Hex
    size_bytes: int = Field(gt=0)
    media_type: Name
    source_camera_id: CameraId | None = None
    captured_at: CapturedAt | None = None
    metadata: SampleMetadata | None = None


class ReadinessCheckData(_Value):
    """One readiness criterion: passed or not, and what was measured."""

    name: Name
    passed: bool
    detail: Detail


class ReadinessData(_Value):
    """Whether a version is fit to train on, criterion by criterion."""

    ready: bool
    checks: list[ReadinessCheckData] = Field(max_length=MAX_READINESS_CHECKS)
    verified_per_class: dict[ClassName, int] = Field(default_factory=dict, max_length=MAX_CLASSES)


class DatasetCreated(DomainEvent):
    """A dataset of an organization's AI module, in one environment, with its label schema."""

    type_name = "DatasetCreated"
    dataset_id: Identifier
    org_id: Identifier
    name: Name
    ai_module: Name
    environment: Environment
    label_schema: LabelSchemaData
    created_by: Identifier
    request_id: Identifier | None = None


class SamplesAdded(DomainEvent):
    """Files of one upload became samples (content-addressed, already in the blob store).

    One upload may record several of these in one atomic append (at most SAMPLES_PER_EVENT samples
    each, so an event stays far below the store's size limit).
    """

    type_name = "SamplesAdded"
    dataset_id: Identifier
    upload_id: Identifier
    samples: list[AddedSample] = Field(max_length=SAMPLES_PER_EVENT)


class DatasetStorageCharged(DomainEvent):
    """An upload's new bytes were counted against the organization's plan (dataset data limit).

    The charge stays open until a later append of the ledger settles it (the upload's samples were
    recorded) or releases it: `dataset_version` is the dataset version the upload's SamplesAdded is
    appended at, so once the dataset moved past it without them, they never will be. Charges recorded
    before these two fields existed carry None and are never reconciled.
    """

    type_name = "DatasetStorageCharged"
    org_id: Identifier
    dataset_id: Identifier
    upload_id: Identifier
    size_bytes: int = Field(ge=0)
    total_bytes: int = Field(ge=0)
    limit_bytes: int | None = None
    dataset_version: int | None = Field(default=None, ge=0)
    charged_at: datetime | None = None


class DatasetStorageSettled(DomainEvent):
    """An open charge's upload recorded its samples: the charge stands for good."""

    type_name = "DatasetStorageSettled"
    org_id: Identifier
    dataset_id: Identifier
    upload_id: Identifier


class DatasetUploadAbandoned(DomainEvent):
    """An upload charged long ago never recorded its samples; appended at the version its
    SamplesAdded expected, so that append can no longer succeed and the charge can be released."""

    type_name = "DatasetUploadAbandoned"
    dataset_id: Identifier
    upload_id: Identifier


class DatasetStorageReleased(DomainEvent):
    """A charge was given back: the upload it was for failed before its samples were recorded."""

    type_name = "DatasetStorageReleased"
    org_id: Identifier
    dataset_id: Identifier
    upload_id: Identifier
    size_bytes: int = Field(ge=0)
    total_bytes: int = Field(ge=0)
    reason: Reason


class SampleLabeled(DomainEvent):
    """An annotator labeled a sample (replacing their own earlier label); reopens a reviewed sample."""

    type_name = "SampleLabeled"
    sample_id: Identifier
    dataset_id: Identifier
    annotator: Identifier
    annotation: AnnotationData


class SampleApproved(DomainEvent):
    """A reviewer verified the sample's consensus label (recorded with its agreement and quality)."""

    type_name = "SampleApproved"
    sample_id: Identifier
    dataset_id: Identifier
    reviewer: Identifier
    reason: Reason = ""
    consensus: AnnotationData | None = None
    agreement: float = Field(ge=0, le=1)
    quality: float = Field(ge=0, le=1)


class SampleRejected(DomainEvent):
    """A reviewer rejected the sample (it stays out of every version until relabeled and approved)."""

    type_name = "SampleRejected"
    sample_id: Identifier
    dataset_id: Identifier
    reviewer: Identifier
    reason: Reason = Field(min_length=1)


class DatasetVersionPublished(DomainEvent):
    """An immutable version: its manifest (in the blob store under its SHA-256) never changes."""

    type_name = "DatasetVersionPublished"
    dataset_id: Identifier
    version: int = Field(ge=1)
    org_id: Identifier
    manifest_sha256: Sha256Hex
    samples: int = Field(ge=0)
    size_bytes: int = Field(ge=0)
    split_counts: dict[SplitName, int] = Field(max_length=3)
    seed: int
    train_fraction: float
    val_fraction: float
    readiness: ReadinessData
    published_by: Identifier
    family: Name | None = None
    request_id: Identifier | None = None


class DatasetDescriptionChanged(DomainEvent):
    """An operator changed what the dataset says it is for."""

    type_name = "DatasetDescriptionChanged"
    dataset_id: Identifier
    description: Reason
    changed_by: Identifier


class DatasetArchived(DomainEvent):
    """The dataset became read-only: no upload, label, review or publish until it is unarchived."""

    type_name = "DatasetArchived"
    dataset_id: Identifier
    archived_by: Identifier
    reason: Reason = Field(min_length=1)


class DatasetUnarchived(DomainEvent):
    """The dataset is writable again."""

    type_name = "DatasetUnarchived"
    dataset_id: Identifier
    unarchived_by: Identifier
    reason: Reason = Field(min_length=1)


class SampleDeleted(DomainEvent):
    """A sample left the dataset: its file is removed and its bytes given back to the plan.

    Only a sample that no published version used by a job or a model holds can be deleted.
    """

    type_name = "SampleDeleted"
    dataset_id: Identifier
    sample_id: Identifier
    sha256: Sha256Hex
    size_bytes: int = Field(ge=0)
    deleted_by: Identifier
    reason: Reason = Field(min_length=1)


class DatasetDeleted(DomainEvent):
    """The whole dataset was deleted: its files removed, its bytes given back; reads say so."""

    type_name = "DatasetDeleted"
    dataset_id: Identifier
    org_id: Identifier
    samples: int = Field(ge=0)
    size_bytes: int = Field(ge=0)
    deleted_by: Identifier
    reason: Reason = Field(min_length=1)


class DatasetStorageFreed(DomainEvent):
    """Bytes of deleted samples were given back to the organization's plan.

    `deletion` names what was deleted (`<sample_id>` or `<dataset_id>`), so a deletion retried after
    a crash between the dataset's append and the ledger's frees its bytes once.
    """

    type_name = "DatasetStorageFreed"
    org_id: Identifier
    dataset_id: Identifier
    deletion: Identifier
    size_bytes: int = Field(ge=0)
    total_bytes: int = Field(ge=0)


DATASET_EVENTS = EventRegistry(
    [
        DatasetCreated,
        SamplesAdded,
        DatasetStorageCharged,
        DatasetStorageReleased,
        DatasetStorageSettled,
        DatasetUploadAbandoned,
        SampleLabeled,
        SampleApproved,
        SampleRejected,
        DatasetVersionPublished,
        DatasetDescriptionChanged,
        DatasetArchived,
        DatasetUnarchived,
        SampleDeleted,
        DatasetDeleted,
        DatasetStorageFreed,
    ]
)
