"""An in-process dataset-svc for yard's tests: a grpc.aio servicer (on its own event loop thread) that
records every request and answers with canned messages, and builders of those messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from fake_loops import loop_thread, run_on
from google.protobuf.message import Message
from grpc import aio
from typing_extensions import override

from modelyard.v1 import datasets_pb2, datasets_pb2_grpc

SCHEMA = datasets_pb2.LabelSchema(task=datasets_pb2.LABEL_TASK_CLASSIFICATION, classes=["cat", "dog"])


def dataset(dataset_id: str = "ds-1", **fields: Any) -> datasets_pb2.Dataset:
    """A dataset with plausible defaults; `fields` override them."""
    counts = datasets_pb2.DatasetCounts(
        samples=10, bytes=4096, unlabeled=2, labeled=3, verified=4, rejected=1
    )
    values: dict[str, Any] = {
        "dataset_id": dataset_id, "org_id": "acme", "name": "pets", "ai_module": "vision",
        "environment": datasets_pb2.ENVIRONMENT_DEV, "label_schema": SCHEMA, "counts": counts,
        "created_by": "ada",
    }  # fmt: skip
    values.update(fields)
    return datasets_pb2.Dataset(**values)


def cat(annotator: str = "ann") -> datasets_pb2.AnnotatorLabel:
    """An annotator's `cat` label."""
    return datasets_pb2.AnnotatorLabel(
        annotator=annotator, annotation=datasets_pb2.Annotation(class_name="cat")
    )


def sample(sample_id: str, filename: str = "", **fields: Any) -> datasets_pb2.Sample:
    """A labeled sample of ds-1 whose two annotators agree on `cat` (unless `fields` say otherwise)."""
    values: dict[str, Any] = {
        "sample_id": sample_id, "dataset_id": "ds-1", "filename": filename or f"{sample_id}.png",
        "sha256": "ab" * 32, "size_bytes": 100, "media_type": "image/png",
        "state": datasets_pb2.SAMPLE_STATE_LABELED, "labels": [cat("ann"), cat("bob")],
        "consensus": datasets_pb2.Annotation(class_name="cat"), "agreement": 1.0, "quality": 0.9,
        "version": 3,
    }  # fmt: skip
    values.update(fields)
    return datasets_pb2.Sample(**values)


def readiness(ready: bool, version: int = 0) -> datasets_pb2.ReadinessReport:
    """A report of ds-1's `version` (0: the working set): one passed check and, unless ready, one failed."""
    checks = [datasets_pb2.ReadinessCheck(name="label_agreement", passed=True, detail="mean agreement 0.97")]
    if not ready:
        detail = "dog has 3 verified samples, at least 20 needed: label and review more dogs"
        checks.append(datasets_pb2.ReadinessCheck(name="samples_per_class", passed=False, detail=detail))
    return datasets_pb2.ReadinessReport(
        dataset_id="ds-1",
        version=version,
        ready=ready,
        checks=checks,
        verified_per_class={"cat": 40, "dog": 3},
    )


def version(ready: bool = True) -> datasets_pb2.DatasetVersion:
    """Version 2 of ds-1."""
    return datasets_pb2.DatasetVersion(
        dataset_id="ds-1", version=2, org_id="acme", manifest_sha256="cd" * 32, samples=43, bytes=8192,
        split=datasets_pb2.SplitCounts(train=34, val=4, test=5), seed=7, readiness=readiness(ready, 2),
        published_by="ada", label_schema=SCHEMA, uri="dataset://ds-1/2",
    )  # fmt: skip


@dataclass(frozen=True)
class Call:
    """One request the fake received, with the call's metadata."""

    method: str
    request: Any  # the request message; for UploadSamples, the list of streamed messages
    metadata: dict[str, str]


@dataclass(frozen=True)
class ReceivedFile:
    """A file as an UploadSamples call carried it."""

    filename: str
    size_bytes: int
    content: bytes


def received_files(messages: list[datasets_pb2.UploadSamplesRequest]) -> list[ReceivedFile]:
    """The files of one UploadSamples call, reassembled from its `file` headers and `chunk`s."""
    files: list[ReceivedFile] = []
    for message in messages:
        part = message.WhichOneof("part")
        if part == "file":
            files.append(ReceivedFile(message.file.filename, message.file.size_bytes, b""))
        elif part == "chunk":
            last = files[-1]
            files[-1] = ReceivedFile(last.filename, last.size_bytes, last.content + message.chunk)
    return files


@dataclass
class FakeDatasetSvc:
    """The canned answers of the fake DatasetService, the statuses it refuses with, and every call made."""

    target: str = ""
    dataset: datasets_pb2.Dataset = field(default_factory=dataset)
    datasets: list[datasets_pb2.Dataset] = field(default_factory=lambda: [dataset("ds-1"), dataset("ds-2")])
    samples: list[datasets_pb2.Sample] = field(default_factory=list)
    max_page_size: int = 1000
    version: datasets_pb2.DatasetVersion = field(default_factory=version)
    readiness: datasets_pb2.ReadinessReport = field(default_factory=lambda: readiness(True))
    duplicate_filenames: set[str] = field(default_factory=set)
    org_bytes_limit: int | None = 10 * 1024**3
    org_bytes_used: int = 0
    refusals: dict[str, grpc.Status] = field(default_factory=dict)  # "Method" or "Method#N" → status
    review_refusals: dict[str, grpc.Status] = field(default_factory=dict)  # sample id → status
    review_delay_s: float = 0.0
    reviews_in_flight: int = 0
    most_reviews_in_flight: int = 0
    accepted_upload_ids: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def requests(self, method: str) -> list[Any]:
        """The requests `method` received, in order."""
        return [c.request for c in self.calls if c.method == method]

    async def record(
        self, method: str, request: Message | list[Any], context: aio.ServicerContext[Any, Any]
    ) -> None:
        """Note the call; refuse it with the status set for `method` (or `method#N`, its Nth call), if any."""
        metadata = {key: str(value) for key, value in context.invocation_metadata() or ()}
        self.calls.append(Call(method, request, metadata))
        number = len(self.requests(method))
        refusal = self.refusals.get(method) or self.refusals.get(f"{method}#{number}")
        if refusal is not None:
            await context.abort_with_status(refusal)

    def page_of_samples(self, request: datasets_pb2.ListSamplesRequest) -> datasets_pb2.ListSamplesResponse:
        """ListSamples over `samples`: filtered by state, pages of min(page_size, max_page_size)."""
        matching = [s for s in self.samples if not request.states or s.state in request.states]
        start = int(request.page_token or 0)
        end = start + min(request.page_size or 100, self.max_page_size)
        token = str(end) if end < len(matching) else ""
        return datasets_pb2.ListSamplesResponse(samples=matching[start:end], next_page_token=token)

    def stored(self, upload_id: str, files: list[ReceivedFile]) -> datasets_pb2.UploadSamplesResponse:
        """The answer to an accepted upload: each file a sample, those in `duplicate_filenames` duplicates."""
        uploaded = [
            datasets_pb2.UploadedSample(
                filename=f.filename, sample_id=f"ds-1:{f.filename}", size_bytes=len(f.content),
                media_type="image/png", duplicate=f.filename in self.duplicate_filenames,
            )
            for f in files
        ]  # fmt: skip
        new_bytes = sum(s.size_bytes for s in uploaded if not s.duplicate)
        self.org_bytes_used += new_bytes
        duplicates = sum(s.duplicate for s in uploaded)
        return datasets_pb2.UploadSamplesResponse(
            dataset_id="ds-1", samples=uploaded, added=len(uploaded) - duplicates, duplicates=duplicates,
            bytes_added=new_bytes, org_bytes_used=self.org_bytes_used, org_bytes_limit=self.org_bytes_limit,
        )  # fmt: skip


class FakeDatasetService(datasets_pb2_grpc.DatasetServiceServicer):
    """DatasetService answering from a FakeDatasetSvc."""

    def __init__(self, fake: FakeDatasetSvc) -> None:
        self.fake = fake

    @override
    async def CreateDataset(self, request: Any, context: Any) -> datasets_pb2.Dataset:
        await self.fake.record("CreateDataset", request, context)
        return self.fake.dataset

    @override
    async def GetDataset(self, request: Any, context: Any) -> datasets_pb2.Dataset:
        await self.fake.record("GetDataset", request, context)
        return self.fake.dataset

    @override
    async def ListDatasets(self, request: Any, context: Any) -> datasets_pb2.ListDatasetsResponse:
        await self.fake.record("ListDatasets", request, context)
        return datasets_pb2.ListDatasetsResponse(datasets=self.fake.datasets)

    @override
    async def UploadSamples(self, request_iterator: AsyncIterator[Any], context: Any) -> Any:
        messages = [message async for message in request_iterator]
        await self.fake.record("UploadSamples", messages, context)
        files = received_files(messages)
        short = [f.filename for f in files if len(f.content) != f.size_bytes]
        if not files or short:  # as the real service: a cancelled stream may end like a finished one
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"no files, or sizes do not match: {short}")
        self.fake.accepted_upload_ids.append(messages[0].start.upload_id)
        return self.fake.stored(messages[0].start.upload_id, files)

    @override
    async def LabelSamples(self, request: Any, context: Any) -> datasets_pb2.LabelSamplesResponse:
        await self.fake.record("LabelSamples", request, context)
        labeled = [sample(label.sample_id, labels=[]) for label in request.labels]
        return datasets_pb2.LabelSamplesResponse(samples=labeled)

    @override
    async def GetSample(self, request: Any, context: Any) -> datasets_pb2.Sample:
        await self.fake.record("GetSample", request, context)
        return next(s for s in self.fake.samples if s.sample_id == request.sample_id)

    @override
    async def ListSamples(self, request: Any, context: Any) -> datasets_pb2.ListSamplesResponse:
        await self.fake.record("ListSamples", request, context)
        return self.fake.page_of_samples(request)

    @override
    async def ReviewSample(self, request: Any, context: Any) -> datasets_pb2.Sample:
        await self.fake.record("ReviewSample", request, context)
        self.fake.reviews_in_flight += 1
        self.fake.most_reviews_in_flight = max(self.fake.most_reviews_in_flight, self.fake.reviews_in_flight)
        await asyncio.sleep(self.fake.review_delay_s)
        self.fake.reviews_in_flight -= 1
        if request.sample_id in self.fake.review_refusals:
            await context.abort_with_status(self.fake.review_refusals[request.sample_id])
        approved = request.decision == datasets_pb2.REVIEW_DECISION_APPROVE
        state = datasets_pb2.SAMPLE_STATE_VERIFIED if approved else datasets_pb2.SAMPLE_STATE_REJECTED
        return sample(request.sample_id, state=state, reviewed_by="rev", version=request.expected_version + 1)

    @override
    async def PublishVersion(self, request: Any, context: Any) -> datasets_pb2.DatasetVersion:
        await self.fake.record("PublishVersion", request, context)
        return self.fake.version

    @override
    async def GetVersion(self, request: Any, context: Any) -> datasets_pb2.DatasetVersion:
        await self.fake.record("GetVersion", request, context)
        return self.fake.version

    @override
    async def GetReadiness(self, request: Any, context: Any) -> datasets_pb2.ReadinessReport:
        await self.fake.record("GetReadiness", request, context)
        return self.fake.readiness


@contextmanager
def serving(fake: FakeDatasetSvc) -> Iterator[FakeDatasetSvc]:
    """`fake` served by a grpc.aio server on a free port of 127.0.0.1, on an event loop of its own thread
    (the CLI runs its own loop with asyncio.run in the test's thread)."""
    with loop_thread("fake-dataset-svc") as loop:
        server = run_on(loop, _started_server(fake))
        try:
            yield fake
        finally:
            run_on(loop, server.stop(grace=None))


async def _started_server(fake: FakeDatasetSvc) -> aio.Server:
    server = aio.server()
    datasets_pb2_grpc.add_DatasetServiceServicer_to_server(FakeDatasetService(fake), server)
    fake.target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    return server
