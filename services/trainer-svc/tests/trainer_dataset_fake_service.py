"""An in-process fake of dataset-svc's DatasetService (only what trainers call), served with grpc.aio.

It serves versions as dataset-svc would, and can be told to misbehave: send other bytes under a
sample's hash (`forged`), stop a sample before its last chunk (`truncated`), or hang before a
sample (`stalled`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import grpc
from grpc import aio

from modelyard.v1 import datasets_pb2, datasets_pb2_grpc
from modelyard_events.schemas.manifest import DatasetManifest, manifest_bytes
from modelyard_grpc import testing

CHUNK_BYTES = 100  # small, so every sample of the tests spans several chunks
MANIFEST_CHUNK_BYTES = 1 << 20  # dataset-svc's chunk size: a large manifest spans several


class FakeDatasetService(datasets_pb2_grpc.DatasetServiceServicer):
    """Published versions and their blobs; records the tokens and the hashes each download asked for."""

    def __init__(self) -> None:
        self.manifests: dict[tuple[str, int], bytes] = {}
        self.blobs: dict[str, bytes] = {}
        self.forged: dict[str, bytes] = {}
        self.truncated: set[str] = set()
        self.stalled: set[str] = set()
        self.downloads: list[list[str]] = []
        self.manifest_streams = 0
        self.tokens: list[str] = []

    def publish(self, manifest: DatasetManifest, blobs: dict[str, bytes]) -> None:
        self.manifests[(manifest.dataset_id, manifest.version)] = manifest_bytes(manifest)
        self.blobs.update(blobs)

    async def GetVersion(  # noqa: N802 (the proto's method name)
        self, request: datasets_pb2.VersionRef, context: aio.ServicerContext
    ) -> datasets_pb2.DatasetVersion:
        data = await self._manifest(request, context)
        return datasets_pb2.DatasetVersion(
            dataset_id=request.dataset_id,
            version=request.version,
            manifest_sha256=hashlib.sha256(data).hexdigest(),
        )

    async def GetManifest(  # noqa: N802
        self, request: datasets_pb2.VersionRef, context: aio.ServicerContext
    ) -> datasets_pb2.ManifestResponse:
        data = await self._manifest(request, context)
        return datasets_pb2.ManifestResponse(
            manifest_sha256=hashlib.sha256(data).hexdigest(), manifest_json=data
        )

    async def DownloadManifest(  # noqa: N802
        self, request: datasets_pb2.VersionRef, context: aio.ServicerContext
    ) -> AsyncIterator[datasets_pb2.ManifestChunk]:
        data = await self._manifest(request, context)
        self.manifest_streams += 1
        sha256 = hashlib.sha256(data).hexdigest()
        for start in range(0, len(data), MANIFEST_CHUNK_BYTES):
            yield datasets_pb2.ManifestChunk(
                manifest_sha256=sha256 if start == 0 else "", data=data[start : start + MANIFEST_CHUNK_BYTES]
            )

    async def DownloadSamples(  # noqa: N802
        self, request: datasets_pb2.DownloadSamplesRequest, context: aio.ServicerContext
    ) -> AsyncIterator[datasets_pb2.SampleChunk]:
        self._record_token(context)
        self.downloads.append(list(request.sha256))
        for sha in request.sha256:
            if sha in self.stalled:
                await asyncio.Event().wait()  # a server that hangs mid-stream, connection open
            data = self.forged.get(sha, self.blobs[sha])
            pieces = [data[start : start + CHUNK_BYTES] for start in range(0, len(data), CHUNK_BYTES)]
            for index, piece in enumerate(pieces):
                last = index == len(pieces) - 1
                if last and sha in self.truncated:
                    return

                yield datasets_pb2.SampleChunk(sha256=sha if index == 0 else "", data=piece, last=last)

    async def _manifest(self, request: datasets_pb2.VersionRef, context: aio.ServicerContext) -> bytes:
        self._record_token(context)
        data = self.manifests.get((request.dataset_id, request.version))
        if data is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"dataset {request.dataset_id} has no version {request.version}"
            )
        assert data is not None
        return data

    def _record_token(self, context: aio.ServicerContext) -> None:
        metadata = dict(context.invocation_metadata() or ())
        self.tokens.append(str(metadata.get("authorization", "")))


def serving_fake(service: FakeDatasetService) -> AbstractAsyncContextManager[str]:
    """Serve the fake on a free local port; yields its target."""
    return testing.serving_fake(datasets_pb2_grpc.add_DatasetServiceServicer_to_server, service)
