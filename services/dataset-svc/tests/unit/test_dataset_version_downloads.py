"""DatasetService's version reads, called directly: manifests of any size arrive, samples once each."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelyard.v1 import datasets_pb2
from modelyard_blobs.local_blobs import LocalFolderBlobStore
from modelyard_dataset.app.commands import DatasetCommands, NewDataset
from modelyard_dataset.domain.readiness import ReadinessPolicy
from modelyard_dataset.grpc_api import DatasetServicer
from modelyard_events.caller import Caller
from modelyard_events.domain_errors import InvalidArgument, QuotaExceeded
from modelyard_events.envelope import Actor
from modelyard_events.plans import plan_named
from modelyard_events.schemas.datasets import (
    DATASET_STREAM,
    DatasetVersionPublished,
    LabelSchemaData,
    ReadinessData,
)
from modelyard_events.schemas.downloads import CHUNK_BYTES, MAX_SAMPLES_PER_DOWNLOAD
from modelyard_events.schemas.manifest import DatasetManifest, ManifestSample, manifest_bytes
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_grpc import Principal, Role, acting_as

GRPC_MESSAGE_LIMIT = 4 << 20
CALLER = Caller(Actor(subject="ops", roles=("super_admin",)), "corr-1")
TRAINER = Principal(subject="trainer-a", org_id=None, roles=frozenset({Role.TRAINER}))


class Version:
    """A dataset whose version 1 lists `count` samples; the blobs of the first three are stored."""

    def __init__(
        self, servicer: DatasetServicer, dataset_id: str, manifest: bytes, blobs: list[bytes]
    ) -> None:
        self.servicer, self.dataset_id, self.manifest, self.blobs = servicer, dataset_id, manifest, blobs
        self.ref = datasets_pb2.VersionRef(dataset_id=dataset_id, version=1)


async def published(tmp_path: Path, count: int) -> Version:
    store, blobs = InMemoryEventStore(), LocalFolderBlobStore(tmp_path / "blobs")
    commands = DatasetCommands(store, blobs, lambda _: plan_named("professional"), ReadinessPolicy())
    dataset = await commands.create(NewDataset("acme", "rows", "m", "dev", "none", []), CALLER)
    stored = [b"first blob " * 300_000, b"second", b"third"]  # the first spans several chunks
    hashes = [hashlib.sha256(b).hexdigest() for b in stored] + [f"{i:064x}" for i in range(count - 3)]
    manifest = manifest_bytes(_manifest(dataset.dataset_id, hashes))
    for data in [*stored, manifest]:
        await blobs.put_bytes(data)
    event = DatasetVersionPublished(
        dataset_id=dataset.dataset_id,
        version=1,
        org_id="acme",
        manifest_sha256=hashlib.sha256(manifest).hexdigest(),
        samples=count,
        size_bytes=count,
        split_counts={"train": count},
        seed=1,
        train_fraction=0.8,
        val_fraction=0.1,
        readiness=ReadinessData(ready=True, checks=[]),
        published_by="ops",
    )
    await store.append(
        DATASET_STREAM, dataset.dataset_id, dataset.version, [event], CALLER.context_for("acme")
    )
    servicer = DatasetServicer(commands, None, blobs, (None, None), None, None)  # type: ignore[arg-type]
    return Version(servicer, dataset.dataset_id, manifest, stored)


def _manifest(dataset_id: str, hashes: list[str]) -> DatasetManifest:
    samples = [
        ManifestSample(
            sample_id=f"{dataset_id}:{sha[:24]}",
            filename=f"{index:05d}-{'x' * 150}.csv",
            sha256=sha,
            size_bytes=1 << 20,
            media_type="text/csv",
            label=None,
            split="train",
            agreement=1.0,
        )
        for index, sha in enumerate(hashes)
    ]
    return DatasetManifest(
        dataset_id=dataset_id,
        version=1,
        org_id="acme",
        name="rows",
        ai_module="m",
        environment="dev",
        label_schema=LabelSchemaData(task="none"),
        seed=1,
        train_fraction=0.8,
        val_fraction=0.1,
        samples=samples,
    )


async def test_a_manifest_over_the_grpc_message_limit_is_streamed_in_chunks_that_fit(tmp_path: Path) -> None:
    version = await published(tmp_path, 20_000)
    assert len(version.manifest) > GRPC_MESSAGE_LIMIT

    with acting_as(TRAINER):
        chunks = [chunk async for chunk in version.servicer.DownloadManifest(version.ref, None)]  # type: ignore[arg-type]

    assert b"".join(chunk.data for chunk in chunks) == version.manifest
    assert chunks[0].manifest_sha256 == hashlib.sha256(version.manifest).hexdigest()
    assert all(len(chunk.SerializeToString()) < GRPC_MESSAGE_LIMIT for chunk in chunks)
    assert all(len(chunk.data) <= CHUNK_BYTES for chunk in chunks)


async def test_get_manifest_refuses_a_manifest_too_large_for_one_answer_and_names_the_stream(
    tmp_path: Path,
) -> None:
    version = await published(tmp_path, 20_000)

    with acting_as(TRAINER), pytest.raises(QuotaExceeded, match="stream it with DownloadManifest"):
        await version.servicer.GetManifest(version.ref, None)  # type: ignore[arg-type]


async def test_a_sample_asked_for_twice_is_streamed_once(tmp_path: Path) -> None:
    version = await published(tmp_path, 3)
    hashes = [hashlib.sha256(b).hexdigest() for b in version.blobs]
    request = datasets_pb2.DownloadSamplesRequest(
        dataset_id=version.dataset_id, version=1, sha256=[hashes[0], hashes[1], hashes[0], hashes[1]]
    )

    with acting_as(TRAINER):
        chunks = [chunk async for chunk in version.servicer.DownloadSamples(request, None)]  # type: ignore[arg-type]

    assert [chunk.sha256 for chunk in chunks if chunk.sha256] == hashes[:2]
    assert b"".join(chunk.data for chunk in chunks) == version.blobs[0] + version.blobs[1]
    assert all(len(chunk.data) <= CHUNK_BYTES for chunk in chunks)


async def test_a_request_over_the_cap_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    version = await published(tmp_path, 3)
    sha = hashlib.sha256(version.blobs[0]).hexdigest()
    request = datasets_pb2.DownloadSamplesRequest(
        dataset_id=version.dataset_id, version=1, sha256=[sha] * (MAX_SAMPLES_PER_DOWNLOAD + 1)
    )

    with acting_as(TRAINER), pytest.raises(InvalidArgument, match=f"at most {MAX_SAMPLES_PER_DOWNLOAD}"):
        _ = [chunk async for chunk in version.servicer.DownloadSamples(request, None)]  # type: ignore[arg-type]
