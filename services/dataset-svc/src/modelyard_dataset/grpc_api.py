"""DatasetService: translate protobuf ⇄ commands and reads, nothing else."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from grpc import aio
from typing_extensions import override

from modelyard.v1 import datasets_pb2, datasets_pb2_grpc, events_pb2
from modelyard_blobs.blobs import BlobStore
from modelyard_dataset.app.commands import DatasetCommands, NewDataset
from modelyard_dataset.app.lifecycle import DatasetLifecycle, Deletion
from modelyard_dataset.app.receiving import FileOpened, UploadOpened, UploadPart, UploadReceiver
from modelyard_dataset.convert import (
    ENVIRONMENTS,
    STATES,
    annotation_from_proto,
    dataset_row_to_proto,
    dataset_to_proto,
    readiness_to_proto,
    sample_file_url,
    sample_row_to_proto,
    sample_to_proto,
    version_to_proto,
)
from modelyard_dataset.domain.dataset import Dataset
from modelyard_dataset.domain.downloads import samples_to_send
from modelyard_dataset.domain.identity import dataset_of_sample
from modelyard_dataset.domain.sample import Sample
from modelyard_dataset.domain.storage import StorageRoom
from modelyard_dataset.domain.versions import VersionRequest
from modelyard_dataset.freshness import ViewsFreshness
from modelyard_dataset.policy import may_download_files
from modelyard_dataset.projections.queries import DatasetViewReader
from modelyard_events.domain_errors import InvalidArgument, NotFound, QuotaExceeded
from modelyard_events.schemas.datasets import DatasetVersionPublished
from modelyard_events.schemas.downloads import CHUNK_BYTES, MAX_MANIFEST_MESSAGE_BYTES
from modelyard_events.schemas.manifest import parse_manifest
from modelyard_events.store.ports import EventSource
from modelyard_grpc import Role, caller_of, current_principal, read_events, require_org_access
from modelyard_grpc.values import LABEL_TASKS

Context = aio.ServicerContext[Any, Any]
DEFAULT_TRAIN, DEFAULT_VAL = 0.8, 0.1
DEFAULT_PAGE, MAX_PAGE = 100, 1000


class DatasetServicer(datasets_pb2_grpc.DatasetServiceServicer):
    """modelyard.v1.DatasetService over DatasetCommands, the views and the blob store."""

    def __init__(
        self,
        commands: DatasetCommands,
        receiver: UploadReceiver,
        blobs: BlobStore,
        reads: tuple[Any, DatasetViewReader],
        log: EventSource,
        freshness: ViewsFreshness,
        lifecycle: DatasetLifecycle | None = None,
    ) -> None:
        self._commands, self._receiver, self._blobs, self._log = commands, receiver, blobs, log
        self._engine, self._reader = reads
        self._fresh = freshness
        self._lifecycle = lifecycle

    @property
    def lifecycle(self) -> DatasetLifecycle:
        """The lifecycle use cases (always given where the service is assembled)."""
        if self._lifecycle is None:
            raise RuntimeError("this DatasetServicer was built without the dataset lifecycle")
        return self._lifecycle

    @override
    async def CreateDataset(
        self, request: datasets_pb2.CreateDatasetRequest, context: Context
    ) -> datasets_pb2.Dataset:
        org_id = request.org_id or current_principal().org_id
        if not org_id:
            raise InvalidArgument(
                "org_id", "your token names no organization; say which one the dataset is for"
            )
        new = NewDataset(
            org_id=org_id,
            name=request.name,
            ai_module=request.ai_module,
            environment=ENVIRONMENTS.get(request.environment, ""),
            task=LABEL_TASKS.get(request.label_schema.task, ""),
            classes=list(request.label_schema.classes),
            request_id=request.request_id or None,
        )
        dataset = await self._commands.create(new, caller_of(context))
        return dataset_to_proto(dataset, None, None)

    @override
    async def GetDataset(self, request: datasets_pb2.DatasetRef, context: Context) -> datasets_pb2.Dataset:
        dataset = await self._visible_dataset(request.dataset_id)
        await self._fresh.wait()
        async with self._engine.connect() as conn:
            counts = await self._reader.counts(conn, [dataset.dataset_id])
            created = await self._reader.created_at(conn, [dataset.dataset_id])
        return dataset_to_proto(dataset, counts.get(dataset.dataset_id), created.get(dataset.dataset_id))

    @override
    async def ListDatasets(
        self, request: datasets_pb2.ListDatasetsRequest, context: Context
    ) -> datasets_pb2.ListDatasetsResponse:
        environment = ENVIRONMENTS.get(request.environment, "")
        await self._fresh.wait()
        async with self._engine.connect() as conn:
            rows = await self._reader.datasets(conn, request.org_id, request.ai_module, environment)
        principal = current_principal()
        visible = [row for row in rows if principal.can_access_org(row.org_id)]
        return datasets_pb2.ListDatasetsResponse(datasets=[dataset_row_to_proto(row) for row in visible])

    @override
    async def UploadSamples(
        self, request_iterator: AsyncIterator[datasets_pb2.UploadSamplesRequest], context: Context
    ) -> datasets_pb2.UploadSamplesResponse:
        upload = await self._receiver.receive(_parts(request_iterator), self._may_upload)
        try:
            outcome = await self._commands.upload(
                upload.dataset_id, upload.upload_id, upload.files, caller_of(context)
            )
        finally:
            upload.discard_staged()
        samples = [
            datasets_pb2.UploadedSample(
                filename=file.filename,
                sample_id=sample_id,
                sha256=file.sha256,
                size_bytes=file.size_bytes,
                media_type=file.media_type,
                duplicate=duplicate,
            )
            for file, sample_id, duplicate in outcome.plan.outcome
        ]
        response = datasets_pb2.UploadSamplesResponse(
            dataset_id=upload.dataset_id,
            samples=samples,
            added=len(outcome.plan.added),
            duplicates=sum(1 for s in samples if s.duplicate),
            bytes_added=outcome.plan.bytes_added,
            org_bytes_used=outcome.org_bytes_used,
        )
        if outcome.org_bytes_limit is not None:
            response.org_bytes_limit = outcome.org_bytes_limit
        return response

    @override
    async def LabelSamples(
        self, request: datasets_pb2.LabelSamplesRequest, context: Context
    ) -> datasets_pb2.LabelSamplesResponse:
        dataset_id = await self._authorized(request.dataset_id)
        labels = [
            (label.sample_id, annotation_from_proto(label.annotation, f"labels[{index}].annotation"))
            for index, label in enumerate(request.labels)
        ]
        labeled = await self._commands.label(dataset_id, labels, caller_of(context))
        return datasets_pb2.LabelSamplesResponse(samples=[sample_to_proto(s, f) for s, f in labeled])

    @override
    async def GetSample(self, request: datasets_pb2.SampleRef, context: Context) -> datasets_pb2.Sample:
        sample_id = _required(request.sample_id, "sample_id")
        org_id, _ = await self._commands.load.org_and_task(dataset_of_sample(sample_id))
        require_org_access(current_principal(), org_id)
        # NotFound for a deleted dataset or sample (their events stay, their reads end).
        (await self._commands.load.dataset(dataset_of_sample(sample_id))).sample(sample_id)
        _, sample = await self._commands.load.sample(sample_id)
        return _with_file_urls([sample_to_proto(sample, await self._file_of(sample))])[0]

    @override
    async def ListSamples(
        self, request: datasets_pb2.ListSamplesRequest, context: Context
    ) -> datasets_pb2.ListSamplesResponse:
        await self._authorized(request.dataset_id)
        size = request.page_size or DEFAULT_PAGE
        if not 1 <= size <= MAX_PAGE:
            raise InvalidArgument("page_size", f"must be between 1 and {MAX_PAGE}; got {size}")
        unknown = [s for s in request.states if s not in STATES]
        if unknown:
            raise InvalidArgument("states", f"unknown sample state {unknown[0]}; use UNLABELED … REJECTED")
        states = [STATES[s] for s in request.states]
        after = _decode_token(request.page_token)
        await self._fresh.wait()
        async with self._engine.connect() as conn:
            if not await self._reader.counts(conn, [request.dataset_id]):  # deleted (the views caught up)
                raise NotFound(f"dataset {request.dataset_id} was deleted")
            rows = await self._reader.samples_page(conn, request.dataset_id, states, size + 1, after)
        page, more = rows[:size], len(rows) > size
        token = _encode_token(page[-1].sample_id) if more else ""
        return datasets_pb2.ListSamplesResponse(
            samples=_with_file_urls([sample_row_to_proto(row) for row in page]), next_page_token=token
        )

    @override
    async def ReviewSample(
        self, request: datasets_pb2.ReviewSampleRequest, context: Context
    ) -> datasets_pb2.Sample:
        if request.decision not in (
            datasets_pb2.REVIEW_DECISION_APPROVE,
            datasets_pb2.REVIEW_DECISION_REJECT,
        ):
            raise InvalidArgument("decision", "say APPROVE or REJECT")
        sample_id = _required(request.sample_id, "sample_id")
        org_id, _ = await self._commands.load.org_and_task(dataset_of_sample(sample_id))
        require_org_access(current_principal(), org_id)
        sample = await self._commands.review(
            request.sample_id,
            request.decision == datasets_pb2.REVIEW_DECISION_APPROVE,
            request.reason,
            request.expected_version,
            caller_of(context),
        )
        return sample_to_proto(sample, await self._file_of(sample))

    @override
    async def PublishVersion(
        self, request: datasets_pb2.PublishVersionRequest, context: Context
    ) -> datasets_pb2.DatasetVersion:
        dataset_id = await self._authorized(request.dataset_id)
        version_request = VersionRequest(
            seed=request.seed,
            train_fraction=request.train_fraction or DEFAULT_TRAIN,
            val_fraction=request.val_fraction or DEFAULT_VAL,  # 0 means "the default", as for train
            family=request.family or None,
            request_id=request.request_id or None,
        )
        dataset, event = await self._commands.publish(dataset_id, version_request, caller_of(context))
        return version_to_proto(dataset, event, await self._published_at(dataset_id, event.version))

    @override
    async def GetVersion(
        self, request: datasets_pb2.VersionRef, context: Context
    ) -> datasets_pb2.DatasetVersion:
        dataset = await self._visible_dataset(request.dataset_id, trainers_too=True)
        published = dataset.published(request.version)
        return version_to_proto(
            dataset, published, await self._published_at(dataset.dataset_id, published.version)
        )

    @override
    async def GetReadiness(
        self, request: datasets_pb2.ReadinessRequest, context: Context
    ) -> datasets_pb2.ReadinessReport:
        dataset_id = await self._authorized(request.dataset_id)
        report = await self._commands.readiness(dataset_id, request.version, None)
        return readiness_to_proto(dataset_id, request.version, report)

    @override
    async def GetManifest(
        self, request: datasets_pb2.VersionRef, context: Context
    ) -> datasets_pb2.ManifestResponse:
        published = await self._published_version(request)
        data = await self._blobs.read(published.manifest_sha256)
        if len(data) > MAX_MANIFEST_MESSAGE_BYTES:
            raise QuotaExceeded(
                f"the manifest of version {published.version} of {request.dataset_id} is {len(data)} bytes, "
                f"over the {MAX_MANIFEST_MESSAGE_BYTES} one answer carries; stream it with DownloadManifest"
            )
        return datasets_pb2.ManifestResponse(manifest_sha256=published.manifest_sha256, manifest_json=data)

    @override
    async def DownloadManifest(
        self, request: datasets_pb2.VersionRef, context: Context
    ) -> AsyncIterator[datasets_pb2.ManifestChunk]:
        published = await self._published_version(request)
        sha256 = published.manifest_sha256
        async for chunk in self._blobs.chunks(sha256, CHUNK_BYTES):
            yield datasets_pb2.ManifestChunk(manifest_sha256=sha256, data=chunk)
            sha256 = ""

    @override
    async def DownloadSamples(
        self, request: datasets_pb2.DownloadSamplesRequest, context: Context
    ) -> AsyncIterator[datasets_pb2.SampleChunk]:
        dataset = await self._visible_dataset(request.dataset_id, trainers_too=True)
        published = dataset.published(request.version)
        manifest = parse_manifest(
            await self._blobs.read(published.manifest_sha256), published.manifest_sha256
        )
        gone = {deleted.sha256 for deleted in dataset.deleted_samples.values()}
        for sample in samples_to_send(manifest, request.sha256):
            if sample.sha256 in gone:
                continue  # deleted since the version was published (a version no job or model used)
            sha, first, pending = sample.sha256, True, b""
            async for chunk in self._blobs.chunks(sha, CHUNK_BYTES):
                if pending:
                    yield datasets_pb2.SampleChunk(sha256=sha if first else "", data=pending)
                    first = False
                pending = chunk
            yield datasets_pb2.SampleChunk(sha256=sha if first else "", data=pending, last=True)

    @override
    async def UpdateDataset(
        self, request: datasets_pb2.UpdateDatasetRequest, context: Context
    ) -> datasets_pb2.Dataset:
        dataset_id = await self._authorized(request.dataset_id)
        dataset = await self.lifecycle.describe(dataset_id, request.description, caller_of(context))
        return dataset_to_proto(dataset, None, None)

    @override
    async def ArchiveDataset(
        self, request: datasets_pb2.DatasetLifecycleRequest, context: Context
    ) -> datasets_pb2.Dataset:
        dataset_id = await self._authorized(request.dataset_id)
        dataset = await self.lifecycle.archive(dataset_id, request.reason, caller_of(context))
        return dataset_to_proto(dataset, None, None)

    @override
    async def UnarchiveDataset(
        self, request: datasets_pb2.DatasetLifecycleRequest, context: Context
    ) -> datasets_pb2.Dataset:
        dataset_id = await self._authorized(request.dataset_id)
        dataset = await self.lifecycle.unarchive(dataset_id, request.reason, caller_of(context))
        return dataset_to_proto(dataset, None, None)

    @override
    async def DeleteSample(
        self, request: datasets_pb2.DeleteSampleRequest, context: Context
    ) -> datasets_pb2.DeletionResponse:
        sample_id = _required(request.sample_id, "sample_id")
        await self._authorized(dataset_of_sample(sample_id))
        return _deletion(await self.lifecycle.delete_sample(sample_id, request.reason, caller_of(context)))

    @override
    async def DeleteDataset(
        self, request: datasets_pb2.DeleteDatasetRequest, context: Context
    ) -> datasets_pb2.DeletionResponse:
        dataset_id = await self._authorized(request.dataset_id)
        return _deletion(await self.lifecycle.delete_dataset(dataset_id, request.reason, caller_of(context)))

    @override
    async def ReadEvents(
        self, request: events_pb2.ReadEventsRequest, context: Context
    ) -> events_pb2.ReadEventsResponse:
        return await read_events(self._log, request)

    async def _published_version(
        self, request: datasets_pb2.VersionRef | datasets_pb2.DownloadSamplesRequest
    ) -> DatasetVersionPublished:
        dataset = await self._visible_dataset(request.dataset_id, trainers_too=True)
        return dataset.published(request.version)

    async def _visible_dataset(self, dataset_id: str, trainers_too: bool = False) -> Dataset:
        dataset_id = await self._authorized(dataset_id, trainers_too)
        return await self._commands.load.dataset(dataset_id)

    async def _authorized(self, dataset_id: str, trainers_too: bool = False) -> str:
        # The dataset's organization never changes, so the check needs no full load (cached).
        org_id, _ = await self._commands.load.org_and_task(_required(dataset_id, "dataset_id"))
        principal = current_principal()
        # Trainers train any organization's versions, on the three version reads only.
        if not (trainers_too and Role.TRAINER in principal.roles):
            require_org_access(principal, org_id)
        return dataset_id

    async def _may_upload(self, dataset_id: str) -> StorageRoom:
        # Refused before any byte is staged: the caller may not write here, or the organization is
        # already at its plan's limit. The room left bounds what the receiver will stage.
        await self._authorized(dataset_id)
        org_id, _ = await self._commands.load.org_and_task(dataset_id)
        return await self._commands.room_left(org_id)

    async def _published_at(self, dataset_id: str, version: int) -> datetime | None:
        await self._fresh.wait()  # the time is the envelope's, which the views keep
        async with self._engine.connect() as conn:
            return await self._reader.published_at(conn, dataset_id, version)

    async def _file_of(self, sample: Sample) -> Any:
        # The views hold each sample's (immutable) file facts; the dataset is the fallback when they lag.
        async with self._engine.connect() as conn:
            files = await self._reader.sample_files(conn, [sample.sample_id])
        if sample.sample_id in files:
            return files[sample.sample_id]
        return (await self._commands.load.dataset(sample.dataset_id)).sample(sample.sample_id)


async def _parts(requests: AsyncIterator[datasets_pb2.UploadSamplesRequest]) -> AsyncIterator[UploadPart]:
    async for request in requests:
        kind = request.WhichOneof("part")
        if kind == "start":
            yield UploadOpened(request.start.dataset_id, request.start.upload_id or None, request.start.files)
        elif kind == "file":
            header = request.file
            captured = header.captured_at.ToDatetime(tzinfo=UTC) if header.HasField("captured_at") else None
            yield FileOpened(
                header.filename,
                header.size_bytes or None,
                source_camera_id=header.source_camera_id or None,
                captured_at=captured,
                metadata=dict(header.metadata) or None,
            )
        elif kind == "chunk":
            yield request.chunk
        else:
            raise InvalidArgument("part", "each message must carry `start`, `file` or `chunk`")


def _with_file_urls(samples: list[datasets_pb2.Sample]) -> list[datasets_pb2.Sample]:
    # The file's locator only for callers whose role may download the dataset's files.
    if may_download_files(current_principal()):
        for sample in samples:
            sample.file_url = sample_file_url(sample.dataset_id, sample.sha256)
    return samples


def _deletion(done: Deletion) -> datasets_pb2.DeletionResponse:
    return datasets_pb2.DeletionResponse(
        dataset_id=done.dataset_id,
        samples_deleted=done.samples,
        bytes_freed=done.bytes_freed,
        org_bytes_used=done.org_bytes_used,
    )


def _required(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    return value


def _encode_token(sample_id: str) -> str:
    return base64.urlsafe_b64encode(sample_id.encode()).decode()


def _decode_token(token: str) -> str:
    if not token:
        return ""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except ValueError:
        raise InvalidArgument("page_token", "is not a token from a previous ListSamples response") from None
