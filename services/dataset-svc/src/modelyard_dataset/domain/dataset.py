"""The Dataset aggregate: what a dataset is, which samples it holds, which versions it published.

Commands check the rules and return events; `apply` folds an event and never fails. Samples are keyed by
content hash, so a file whose bytes the dataset already holds is a duplicate, not a second sample.

Lifecycle (the one place it is written down; the RPCs and `yard datasets archive` etc. follow it):

- status **draft** from creation until its first published version, then **active**; both are
  writable (upload, label, review, publish, description, sample deletion).
- `archive` (super_admin, with a reason) makes it **archived**: read-only. Uploads, labels,
  reviews, publishing, description changes and sample deletions are refused (FAILED_PRECONDITION
  naming the dataset and saying it is archived); reads and downloads go on, so jobs keep training on
  its versions. `unarchive` (with a reason) returns it to draft or active, as its versions say.
- `delete_sample` / `delete` (super_admin, with a reason) are refused while a published version that
  a job or a model used holds the sample (any sample, for the whole dataset), naming that version and
  its users; otherwise the samples leave the dataset (the files are removed and the bytes given back
  by the application layer). An archived dataset may be deleted as a whole, not sample by sample.
- A **deleted** dataset refuses everything and reads as NOT_FOUND; its events stay in the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from modelyard_dataset.domain.identity import check_dataset_fields, sample_id_for
from modelyard_dataset.domain.label_schema import checked_label_schema
from modelyard_dataset.domain.provenance import NO_PROVENANCE, Provenance
from modelyard_dataset.domain.storage import DatasetUploads
from modelyard_dataset.domain.uses import UsedVersion, used_holding
from modelyard_events.domain_errors import IllegalTransition, InvalidArgument, InvalidFields, NotFound
from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.bounds import REASON_MAX_CHARS, identifier_problems
from modelyard_events.schemas.datasets import (
    SAMPLES_PER_EVENT,
    AddedSample,
    DatasetArchived,
    DatasetCreated,
    DatasetDeleted,
    DatasetDescriptionChanged,
    DatasetUnarchived,
    DatasetUploadAbandoned,
    DatasetVersionPublished,
    LabelSchemaData,
    SampleDeleted,
    SamplesAdded,
)

# What each label task can label: classes and boxes are drawn on pictures (video frames included);
# a schema without labels (task none) holds any file, tables above all.
MEDIA_FOR_TASK = {"classification": ("image/", "video/"), "detection": ("image/", "video/"), "none": ("",)}
DESCRIPTION_MAX_CHARS = REASON_MAX_CHARS
DatasetStatus = Literal["draft", "active", "archived", "deleted"]


@dataclass(frozen=True)
class IncomingFile:
    """A complete, inspected upload file waiting to become a sample."""

    filename: str
    sha256: str
    size_bytes: int
    media_type: str
    provenance: Provenance = NO_PROVENANCE  # already checked (domain.provenance)


@dataclass(frozen=True)
class UploadPlan:
    """What an upload would change: the samples it adds and, per file, whether it is a duplicate."""

    added: list[AddedSample]
    outcome: list[tuple[IncomingFile, str, bool]]  # (file, sample id, duplicate)

    @property
    def bytes_added(self) -> int:
        """The bytes this upload adds to the dataset (duplicates add none)."""
        return sum(sample.size_bytes for sample in self.added)


@dataclass(frozen=True)
class Dataset:
    """One dataset as its events say it is."""

    dataset_id: str
    org_id: str = ""
    name: str = ""
    ai_module: str = ""
    environment: str = "dev"
    label_schema: LabelSchemaData = field(default_factory=lambda: LabelSchemaData(task="none"))
    created_by: str = ""
    version: int = 0
    samples: Mapping[str, AddedSample] = field(default_factory=dict)  # by sample id
    versions: Mapping[int, DatasetVersionPublished] = field(default_factory=dict)
    publish_requests: Mapping[str, int] = field(default_factory=dict)  # request id → version
    # (upload id, the dataset version its SamplesAdded was appended at): what settles a storage charge
    recorded_uploads: frozenset[tuple[str, int]] = frozenset()
    description: str = ""
    archived: DatasetArchived | None = None
    deleted: DatasetDeleted | None = None
    deleted_samples: Mapping[str, SampleDeleted] = field(default_factory=dict)  # by sample id

    @classmethod
    def rebuild(cls, dataset_id: str, events: Iterable[DomainEvent]) -> Dataset:
        """The dataset after its stored events; NotFound when it has none."""
        dataset = cls(dataset_id)
        samples: dict[str, AddedSample] = {}  # one dict for the whole rebuild, not a copy per event
        uploads: set[tuple[str, int]] = set()
        for event in events:
            if isinstance(event, SamplesAdded):
                samples.update((s.sample_id, s) for s in event.samples)
                uploads.add((event.upload_id, dataset.version))
                dataset = replace(dataset, version=dataset.version + 1)
            elif isinstance(event, SampleDeleted):
                samples.pop(event.sample_id, None)
                deleted = {**dataset.deleted_samples, event.sample_id: event}
                dataset = replace(dataset, version=dataset.version + 1, deleted_samples=deleted)
            else:
                dataset = dataset.apply(event)
        if dataset.version == 0:
            raise NotFound(f"dataset {dataset_id} does not exist")
        return replace(dataset, samples=samples, recorded_uploads=frozenset(uploads))

    @staticmethod
    def create(
        *,
        dataset_id: str,
        org_id: str,
        name: str,
        ai_module: str,
        environment: str,
        task: str,
        classes: Sequence[str],
        created_by: str,
        request_id: str | None,
    ) -> list[DomainEvent]:
        """DatasetCreated, or InvalidFields naming every wrong field at once."""
        problems = check_dataset_fields(name, ai_module, environment)
        problems.update(identifier_problems(org_id=org_id, request_id=request_id))
        schema: LabelSchemaData | None = None
        try:
            schema = checked_label_schema(task, classes)
        except InvalidArgument as error:
            problems.update(error.problems)
        if problems or schema is None:
            raise InvalidFields(problems)
        return [
            DatasetCreated(
                dataset_id=dataset_id,
                org_id=org_id,
                name=name.strip(),
                ai_module=ai_module,
                environment=environment,
                label_schema=schema,
                created_by=created_by,
                request_id=request_id,
            )
        ]

    # ---- commands -------------------------------------------------------------------------------

    def plan_upload(self, files: Sequence[IncomingFile]) -> UploadPlan:
        """Which files are new samples and which repeat bytes already here (or earlier in this upload).

        InvalidFields when a file is of a kind this dataset's label task cannot label;
        IllegalTransition when the dataset is archived or deleted.
        """
        self.check_writable("upload samples to it")
        self._check_media(files)
        added: dict[str, AddedSample] = {}
        outcome: list[tuple[IncomingFile, str, bool]] = []
        for file in files:
            sample_id = sample_id_for(self.dataset_id, file.sha256)
            duplicate = sample_id in self.samples or sample_id in added
            if not duplicate:
                added[sample_id] = AddedSample(
                    sample_id=sample_id,
                    filename=file.filename,
                    sha256=file.sha256,
                    size_bytes=file.size_bytes,
                    media_type=file.media_type,
                    # A duplicate keeps the provenance its first upload gave: a sample is recorded once.
                    source_camera_id=file.provenance.source_camera_id,
                    captured_at=file.provenance.captured_at,
                    metadata=file.provenance.metadata,
                )
            outcome.append((file, sample_id, duplicate))
        return UploadPlan(list(added.values()), outcome)

    def _check_media(self, files: Sequence[IncomingFile]) -> None:
        accepted = MEDIA_FOR_TASK[self.label_schema.task]
        problems = {
            f"files.{file.filename}": (
                f"is {file.media_type}, but a {self.label_schema.task} dataset holds images or videos; "
                "put tables in a dataset whose label task is none"
            )
            for file in files
            if not file.media_type.startswith(accepted)
        }
        if problems:
            raise InvalidFields(dict(list(problems.items())[:20]))

    def add_samples(self, upload_id: str, plan: UploadPlan) -> list[DomainEvent]:
        """SamplesAdded events (several when the upload is large); none when everything was a duplicate."""
        chunks = [plan.added[i : i + SAMPLES_PER_EVENT] for i in range(0, len(plan.added), SAMPLES_PER_EVENT)]
        return [SamplesAdded(dataset_id=self.dataset_id, upload_id=upload_id, samples=c) for c in chunks]

    def abandon_upload(self, upload_id: str) -> list[DomainEvent]:
        """DatasetUploadAbandoned: appended at this version, it makes an upload's SamplesAdded that
        expected this version fail, so the storage ledger may release that upload's charge."""
        return [DatasetUploadAbandoned(dataset_id=self.dataset_id, upload_id=upload_id)]

    # ---- lifecycle ------------------------------------------------------------------------------

    @property
    def status(self) -> DatasetStatus:
        """draft until its first published version, then active; archived and deleted as recorded."""
        if self.deleted is not None:
            return "deleted"
        if self.archived is not None:
            return "archived"
        return "active" if self.versions else "draft"

    def check_live(self) -> None:
        """NotFound when the dataset was deleted (its events stay; its reads and commands end)."""
        if self.deleted is not None:
            raise NotFound(
                f"dataset {self.dataset_id} was deleted by {self.deleted.deleted_by}: {self.deleted.reason}"
            )

    def check_writable(self, action: str) -> None:
        """IllegalTransition (FAILED_PRECONDITION) when the dataset is archived; NotFound when deleted."""
        self.check_live()
        if self.archived is not None:
            raise IllegalTransition(
                f"dataset {self.dataset_id} ({self.name}) is archived, so it is read-only: cannot "
                f"{action} (archived by {self.archived.archived_by}: {self.archived.reason}). "
                f"Unarchive it first: yard datasets unarchive {self.dataset_id} --reason …"
            )

    def describe(self, description: str, changed_by: str) -> list[DomainEvent]:
        """DatasetDescriptionChanged; nothing when the description is already this one."""
        self.check_writable("change its description")
        text = description.strip()
        if len(text) > DESCRIPTION_MAX_CHARS:
            raise InvalidArgument(
                "description", f"must be at most {DESCRIPTION_MAX_CHARS} characters; got {len(text)}"
            )
        if text == self.description:
            return []
        return [
            DatasetDescriptionChanged(dataset_id=self.dataset_id, description=text, changed_by=changed_by)
        ]

    def archive(self, archived_by: str, reason: str) -> list[DomainEvent]:
        """DatasetArchived; IllegalTransition when it is archived already."""
        self.check_live()
        text = _checked_reason(reason, "archived")
        if self.archived is not None:
            raise IllegalTransition(
                f"dataset {self.dataset_id} is archived already (by {self.archived.archived_by}: "
                f"{self.archived.reason})"
            )
        return [DatasetArchived(dataset_id=self.dataset_id, archived_by=archived_by, reason=text)]

    def unarchive(self, unarchived_by: str, reason: str) -> list[DomainEvent]:
        """DatasetUnarchived; IllegalTransition when it is not archived."""
        self.check_live()
        text = _checked_reason(reason, "unarchived")
        if self.archived is None:
            raise IllegalTransition(f"dataset {self.dataset_id} is not archived (it is {self.status})")
        return [DatasetUnarchived(dataset_id=self.dataset_id, unarchived_by=unarchived_by, reason=text)]

    def delete_sample(
        self, sample_id: str, used: Sequence[UsedVersion], deleted_by: str, reason: str
    ) -> list[DomainEvent]:
        """SampleDeleted; nothing when it was deleted already (a retry: the caller finishes the
        give-back); IllegalTransition naming the versions and their users when a used version holds
        it, or when the dataset is archived; NotFound for a sample this dataset never held."""
        text = _checked_reason(reason, "deleted")
        if sample_id in self.deleted_samples:
            self.check_live()
            return []
        self.check_writable("delete its samples")
        sample = self.sample(sample_id)
        holding = used_holding(sample_id, used)
        if holding:
            raise IllegalTransition(
                f"sample {sample_id} of dataset {self.dataset_id} is in "
                f"{'; '.join(u.describe() for u in holding)}; a sample a job or a model was made from "
                "stays for the lineage. Nothing was deleted (archive the dataset to stop its use instead)"
            )
        return [
            SampleDeleted(
                dataset_id=self.dataset_id,
                sample_id=sample_id,
                sha256=sample.sha256,
                size_bytes=sample.size_bytes,
                deleted_by=deleted_by,
                reason=text,
            )
        ]

    def delete(self, used: Sequence[UsedVersion], deleted_by: str, reason: str) -> list[DomainEvent]:
        """DatasetDeleted; nothing when it was deleted already (a retry); IllegalTransition naming every
        version a job or a model used (each holds samples that must stay)."""
        text = _checked_reason(reason, "deleted")
        if self.deleted is not None:
            return []
        holding = sorted((u for u in used if u.users), key=lambda u: u.version)
        if holding:
            raise IllegalTransition(
                f"dataset {self.dataset_id} has {'; '.join(u.describe() for u in holding)}; the samples "
                "of a version a job or a model was made from stay for the lineage. Nothing was deleted "
                f"(archive it instead: yard datasets archive {self.dataset_id} --reason …)"
            )
        return [
            DatasetDeleted(
                dataset_id=self.dataset_id,
                org_id=self.org_id,
                samples=len(self.samples),
                size_bytes=self.size_bytes,
                deleted_by=deleted_by,
                reason=text,
            )
        ]

    @property
    def uploads(self) -> DatasetUploads:
        """What the storage ledger reconciles a charge against."""
        return DatasetUploads(self.dataset_id, self.version, self.recorded_uploads)

    def sample(self, sample_id: str) -> AddedSample:
        """The sample with this id; NotFound when this dataset has no such sample."""
        found = self.samples.get(sample_id)
        if found is None:
            raise NotFound(f"dataset {self.dataset_id} has no sample {sample_id}")
        return found

    def published(self, version: int) -> DatasetVersionPublished:
        """A published version (0 = the latest); IllegalTransition when it was never published."""
        number = version or self.latest_version
        if number in self.versions:
            return self.versions[number]
        latest = f"the latest is version {self.latest_version}" if self.versions else "none is published yet"
        raise IllegalTransition(
            f"dataset {self.dataset_id} has no published version {number}; {latest} "
            "(publish one with `yard datasets publish`)"
        )

    @property
    def latest_version(self) -> int:
        """The highest published version number (0 = none)."""
        return max(self.versions, default=0)

    @property
    def size_bytes(self) -> int:
        """The bytes of every sample (each content once)."""
        return sum(sample.size_bytes for sample in self.samples.values())

    # ---- state ----------------------------------------------------------------------------------

    def apply_all(self, events: Iterable[DomainEvent]) -> Dataset:
        """The dataset after several more events."""
        dataset = self
        for event in events:
            dataset = dataset.apply(event)
        return dataset

    def apply(self, event: DomainEvent) -> Dataset:
        """The dataset after one more event (never fails)."""
        moved = replace(self, version=self.version + 1)
        if isinstance(event, DatasetCreated):
            return replace(
                moved,
                org_id=event.org_id,
                name=event.name,
                ai_module=event.ai_module,
                environment=event.environment,
                label_schema=event.label_schema,
                created_by=event.created_by,
            )
        if isinstance(event, SamplesAdded):
            return replace(
                moved,
                samples={**self.samples, **{s.sample_id: s for s in event.samples}},
                recorded_uploads=self.recorded_uploads | {(event.upload_id, self.version)},
            )
        if isinstance(event, DatasetVersionPublished):
            requests = dict(self.publish_requests)
            if event.request_id:
                requests[event.request_id] = event.version
            return replace(moved, versions={**self.versions, event.version: event}, publish_requests=requests)
        return moved._lifecycle(event)

    def _lifecycle(self, event: DomainEvent) -> Dataset:
        if isinstance(event, DatasetDescriptionChanged):
            return replace(self, description=event.description)
        if isinstance(event, DatasetArchived):
            return replace(self, archived=event)
        if isinstance(event, DatasetUnarchived):
            return replace(self, archived=None)
        if isinstance(event, SampleDeleted):
            samples = {k: v for k, v in self.samples.items() if k != event.sample_id}
            return replace(
                self, samples=samples, deleted_samples={**self.deleted_samples, event.sample_id: event}
            )
        if isinstance(event, DatasetDeleted):
            return replace(self, deleted=event)
        return self


def _checked_reason(reason: str, what: str) -> str:
    text = reason.strip()
    if not text:
        raise InvalidArgument("reason", f"say why it is {what} (the reason is kept in the audit log)")
    if len(text) > REASON_MAX_CHARS:
        raise InvalidArgument("reason", f"must be at most {REASON_MAX_CHARS} characters; got {len(text)}")
    return text
