"""A thin test client of dataset-svc, and small real sample files (scikit-learn digits as PNG)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits  # type: ignore[import-untyped]

from modelyard.v1 import datasets_pb2, datasets_pb2_grpc
from modelyard_devstack.processes import eventually
from modelyard_grpc import channel

SampleFile = tuple[str, bytes]


@cache
def _digits() -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    digits = load_digits()
    return (digits.images * 255 / 16).astype(np.uint8), digits.target


def digit_files(per_class: int, classes: Sequence[int] = tuple(range(10))) -> list[tuple[str, bytes, str]]:
    """(filename, PNG bytes, class name) for the first `per_class` digits of each class."""
    images, targets = _digits()
    files = []
    for digit in classes:
        for n, index in enumerate(np.flatnonzero(targets == digit)[:per_class]):
            buffer = io.BytesIO()
            Image.fromarray(images[index], mode="L").save(buffer, format="PNG")
            files.append((f"digit-{digit}-{n:03d}.png", buffer.getvalue(), str(digit)))
    return files


def upload_requests(
    dataset_id: str, files: Sequence[SampleFile], chunk_bytes: int = 64
) -> list[datasets_pb2.UploadSamplesRequest]:
    """The client stream of one upload: start, then each file's header and its bytes in chunks."""
    start = datasets_pb2.UploadStart(dataset_id=dataset_id, files=len(files))
    requests = [datasets_pb2.UploadSamplesRequest(start=start)]
    for name, data in files:
        requests.append(
            datasets_pb2.UploadSamplesRequest(
                file=datasets_pb2.UploadFile(filename=name, size_bytes=len(data))
            )
        )
        requests += [
            datasets_pb2.UploadSamplesRequest(chunk=data[i : i + chunk_bytes])
            for i in range(0, len(data), chunk_bytes)
        ]
    return requests


@dataclass
class DatasetClient:
    """DatasetService stub on one authenticated channel, with the steps tests repeat."""

    stub: datasets_pb2_grpc.DatasetServiceStub

    @classmethod
    @asynccontextmanager
    async def connect(cls, target: str, token: str) -> AsyncIterator[DatasetClient]:
        """A client for the block."""
        async with channel(target, token) as ch:
            yield cls(datasets_pb2_grpc.DatasetServiceStub(ch))

    async def create(
        self, org_id: str, classes: Sequence[str], task: int = datasets_pb2.LABEL_TASK_CLASSIFICATION
    ) -> datasets_pb2.Dataset:
        """A dev dataset of module digit-reader with this label schema."""
        return await self.stub.CreateDataset(
            datasets_pb2.CreateDatasetRequest(
                org_id=org_id,
                name="digits",
                ai_module="digit-reader",
                environment=datasets_pb2.ENVIRONMENT_DEV,
                label_schema=datasets_pb2.LabelSchema(task=task, classes=list(classes)),  # type: ignore[arg-type]
            )
        )

    async def upload(
        self, dataset_id: str, files: Sequence[SampleFile]
    ) -> datasets_pb2.UploadSamplesResponse:
        """Upload files in one call."""
        return await self.stub.UploadSamples(iter(upload_requests(dataset_id, files)))

    async def label(
        self, dataset_id: str, labels: Sequence[tuple[str, str]]
    ) -> datasets_pb2.LabelSamplesResponse:
        """Label samples by id with class names (as the caller's subject)."""
        return await self.stub.LabelSamples(
            datasets_pb2.LabelSamplesRequest(
                dataset_id=dataset_id,
                labels=[
                    datasets_pb2.SampleLabel(sample_id=s, annotation=datasets_pb2.Annotation(class_name=c))
                    for s, c in labels
                ],
            )
        )

    async def approve(self, sample_id: str) -> datasets_pb2.Sample:
        """Approve a sample at the version it is at now."""
        sample = await self.stub.GetSample(datasets_pb2.SampleRef(sample_id=sample_id))
        return await self.stub.ReviewSample(
            datasets_pb2.ReviewSampleRequest(
                sample_id=sample_id,
                decision=datasets_pb2.REVIEW_DECISION_APPROVE,
                expected_version=sample.version,
            )
        )

    async def build(
        self, org_id: str, files: Sequence[tuple[str, bytes, str]], classes: Sequence[str]
    ) -> datasets_pb2.Dataset:
        """Create, upload, label with the true classes and approve everything."""
        dataset = await self.create(org_id, classes)
        uploaded = await self.upload(dataset.dataset_id, [(name, data) for name, data, _ in files])
        by_name = {s.filename: s.sample_id for s in uploaded.samples}
        await self.label(dataset.dataset_id, [(by_name[name], cls) for name, _, cls in files])
        for sample_id in by_name.values():
            await self.approve(sample_id)
        return dataset

    async def counts_when(self, dataset_id: str, **expected: int) -> datasets_pb2.DatasetCounts:
        """Wait until the views' counts of a dataset show `expected` (e.g. verified=30)."""
        seen: list[datasets_pb2.DatasetCounts] = []

        async def shown() -> bool:
            counts = (await self.stub.GetDataset(datasets_pb2.DatasetRef(dataset_id=dataset_id))).counts
            seen[:] = [counts]
            return all(getattr(counts, name) == value for name, value in expected.items())

        await eventually(shown, 30.0, f"dataset counts {expected}")
        return seen[0]
