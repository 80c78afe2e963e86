"""An in-process registry-svc for yard's tests: a grpc.aio RegistryService that records every request and
answers with canned messages; builders of model versions; and the real artifact download endpoint
(modelyard_artifacts' download_app) with the registry's real URL and manifest signers."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from fake_loops import run_on
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio
from typing_extensions import override

from modelyard.v1 import registry_pb2, registry_pb2_grpc
from modelyard_artifacts.http_server import download_app, serve_downloads
from modelyard_artifacts.manifest import ArtifactManifest, ManifestSigner, SignedManifest
from modelyard_artifacts.signed_urls import UrlSigner, UrlVerifier
from modelyard_artifacts.testing import FolderBlobs
from modelyard_events.signing import Ed25519Key

REGISTERED_AT = Timestamp(seconds=1_767_225_600)  # 2026-01-01 00:00:00Z
APPROVED_AT = datetime(2026, 1, 2, 12, 0, 1, tzinfo=UTC)
REGISTRY_KEY = Ed25519Key.generate()  # the registry's: signs download URLs and manifests
OTHER_KEY = Ed25519Key.generate()  # anyone else's
CALLER = "ada"  # the subject of the tests' bearer token (yard_runner.TOKEN)
CONFIG_SHA256 = "cf" * 32


def evaluation(finished: bool = True, **fields: Any) -> registry_pb2.Evaluation:
    """A finished evaluation of a three-class model on the test split (pending when not `finished`)."""
    values: dict[str, Any] = {
        "evaluation_id": "ev-1", "job_id": "job-7", "requested_by": "carol",
        "dataset_uri": "dataset://ds-1/2", "split": "test", "finished": finished,
    }  # fmt: skip
    if finished:
        values |= {
            "samples": 300, "device": "cuda:0 (NVIDIA H200)", "accuracy": 0.9567, "precision": 0.9512,
            "recall": 0.9488, "f1": 0.9499, "latency_p50_ms": 1.25, "latency_p95_ms": 3.5,
            "per_class": [
                registry_pb2.ClassScores(label="cat", precision=0.97, recall=0.95, f1=0.96, support=100),
                registry_pb2.ClassScores(label="dog", precision=0.93, recall=0.96, f1=0.9448, support=120),
                registry_pb2.ClassScores(label="fox", precision=0.95, recall=0.9375, f1=0.9437, support=80),
            ],
            "confusion": [
                registry_pb2.ConfusionRow(counts=[95, 4, 1]),
                registry_pb2.ConfusionRow(counts=[3, 115, 2]),
                registry_pb2.ConfusionRow(counts=[2, 3, 75]),
            ],
        }  # fmt: skip
    values.update(fields)
    return registry_pb2.Evaluation(**values)


def model_version(version_id: str = "mv-1", **fields: Any) -> registry_pb2.ModelVersion:
    """A draft version 1.2.0 of module `digits` with plausible defaults; `fields` override them."""
    config = registry_pb2.ModelConfig(
        family="image_classifier", input_shape=[28, 28, 1], class_names=["cat", "dog", "fox"],
        preprocessing="scale_0_1", config_uri="blob://" + CONFIG_SHA256, config_sha256=CONFIG_SHA256,
    )  # fmt: skip
    values: dict[str, Any] = {
        "version_id": version_id, "org_id": "acme", "ai_module": "digits", "semantic_version": "1.2.0",
        "name": "digits-cnn", "description": "a small CNN", "training_job_id": "job-3",
        "created_by": "ada", "artifact_uri": "blob://" + "ab" * 32, "artifact_sha256": "ab" * 32,
        "artifact_size_bytes": 2_500_000, "config": config, "dataset_uri": "dataset://ds-1/2",
        "training_metrics": {"val_accuracy": 0.95, "val_loss": 0.125},
        "status": registry_pb2.MODEL_STATUS_DRAFT, "bump": "minor", "bump_reason": "new class fox",
        "revision": 3, "registered_at": REGISTERED_AT, "min_edge_version": "0.4.0",
        "supported_platforms": ["linux/amd64", "linux/arm64"],
    }  # fmt: skip
    values.update(fields)
    return registry_pb2.ModelVersion(**values)


def released_version(version_id: str = "mv-1", **fields: Any) -> registry_pb2.ModelVersion:
    """An evaluated, approved version released in production, with its gates."""
    gates = [
        registry_pb2.GateResult(gate="accuracy", threshold=0.9, measured=0.9567, passed=True),
        registry_pb2.GateResult(gate="latency_p95_ms", threshold=5.0, measured=3.5, passed=True),
    ]
    values: dict[str, Any] = {
        "status": registry_pb2.MODEL_STATUS_RELEASED, "evaluation": evaluation(), "gates": gates,
        "accuracy": 0.9567, "precision_score": 0.9512, "recall_score": 0.9488, "f1_score": 0.9499,
        "inference_time_ms": 1.25, "is_approved": True, "approved_by": "bob",
        "approved_at": Timestamp(seconds=int(APPROVED_AT.timestamp())), "is_released": True,
        "released_at": Timestamp(seconds=1_767_400_000), "release_notes": "adds foxes",
        "environments": ["production"], "dataset_manifest_sha256": "dd" * 32,
        "base_version_id": "mv-0",
    }  # fmt: skip
    values.update(fields)
    return model_version(version_id, **values)


@dataclass(frozen=True)
class Call:
    """One request the fake received, with the call's metadata."""

    method: str
    request: Any
    metadata: dict[str, str]


@dataclass
class FakeRegistrySvc:
    """The canned answers of the fake RegistryService, the statuses it refuses with, and every call made."""

    target: str = ""
    version: registry_pb2.ModelVersion = field(default_factory=model_version)
    version_pages: list[list[registry_pb2.ModelVersion]] = field(
        default_factory=lambda: [[released_version("mv-1"), model_version("mv-2")]]
    )
    rollback: registry_pb2.RollbackResponse = field(default_factory=registry_pb2.RollbackResponse)
    download_url: registry_pb2.DownloadUrl = field(default_factory=registry_pb2.DownloadUrl)
    refusals: dict[str, grpc.Status] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def requests(self, method: str) -> list[Any]:
        """The requests `method` received, in order."""
        return [c.request for c in self.calls if c.method == method]

    async def record(self, method: str, request: Message, context: aio.ServicerContext[Any, Any]) -> None:
        """Note the call; refuse it with the status set for `method`, if any."""
        metadata = {key: str(value) for key, value in context.invocation_metadata() or ()}
        self.calls.append(Call(method, request, metadata))
        if method in self.refusals:
            await context.abort_with_status(self.refusals[method])


class FakeRegistryService(registry_pb2_grpc.RegistryServiceServicer):
    """RegistryService answering from a FakeRegistrySvc: every command returns `fake.version`."""

    def __init__(self, fake: FakeRegistrySvc) -> None:
        self.fake = fake

    @override
    async def GetVersion(self, request: Any, context: Any) -> registry_pb2.ModelVersion:
        return await self._version("GetVersion", request, context)

    @override
    async def ListVersions(self, request: Any, context: Any) -> registry_pb2.ListVersionsResponse:
        await self.fake.record("ListVersions", request, context)
        page = int(request.page_token or 0)
        more = page + 1 < len(self.fake.version_pages)
        return registry_pb2.ListVersionsResponse(
            versions=self.fake.version_pages[page], next_page_token=str(page + 1) if more else ""
        )

    @override
    async def EvaluateVersion(self, request: Any, context: Any) -> registry_pb2.ModelVersion:
        return await self._version("EvaluateVersion", request, context)

    @override
    async def ApproveVersion(self, request: Any, context: Any) -> registry_pb2.ModelVersion:
        return await self._version("ApproveVersion", request, context)

    @override
    async def RejectVersion(self, request: Any, context: Any) -> registry_pb2.ModelVersion:
        return await self._version("RejectVersion", request, context)

    @override
    async def ReleaseVersion(self, request: Any, context: Any) -> registry_pb2.ModelVersion:
        return await self._version("ReleaseVersion", request, context)

    @override
    async def DeprecateVersion(self, request: Any, context: Any) -> registry_pb2.ModelVersion:
        return await self._version("DeprecateVersion", request, context)

    @override
    async def RollbackVersion(self, request: Any, context: Any) -> registry_pb2.RollbackResponse:
        await self.fake.record("RollbackVersion", request, context)
        return self.fake.rollback

    @override
    async def RenumberVersion(self, request: Any, context: Any) -> registry_pb2.ModelVersion:
        return await self._version("RenumberVersion", request, context)

    @override
    async def GetDownloadUrl(self, request: Any, context: Any) -> registry_pb2.DownloadUrl:
        await self.fake.record("GetDownloadUrl", request, context)
        return self.fake.download_url

    async def _version(self, method: str, request: Message, context: Any) -> registry_pb2.ModelVersion:
        await self.fake.record(method, request, context)
        return self.fake.version


@contextmanager
def serving(fake: FakeRegistrySvc, loop: asyncio.AbstractEventLoop) -> Iterator[FakeRegistrySvc]:
    """`fake` served by a grpc.aio server on a free port of 127.0.0.1, on `loop` (another thread's)."""
    server = run_on(loop, _started_server(fake))
    try:
        yield fake
    finally:
        run_on(loop, server.stop(grace=None))


async def _started_server(fake: FakeRegistrySvc) -> aio.Server:
    server = aio.server()
    registry_pb2_grpc.add_RegistryServiceServicer_to_server(FakeRegistryService(fake), server)
    fake.target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    return server


def signed_manifest(
    data: bytes, key: Ed25519Key = REGISTRY_KEY, version_id: str = "mv-1", **fields: Any
) -> SignedManifest:
    """The manifest of `data` as version 1.2.0 of `digits`, approved by bob, signed with `key`."""
    values: dict[str, Any] = {
        "version_id": version_id, "org_id": "acme", "ai_module": "digits", "semantic_version": "1.2.0",
        "artifact_sha256": hashlib.sha256(data).hexdigest(), "artifact_size_bytes": len(data),
        "config_sha256": CONFIG_SHA256, "approved_by": "bob", "approved_at": APPROVED_AT,
    }  # fmt: skip
    values.update(fields)
    return ManifestSigner(key).sign(ArtifactManifest(**values))


@dataclass
class DownloadEndpoint:
    """The registry's real download endpoint: blobs in a folder, URLs signed with REGISTRY_KEY for CALLER,
    served only to the bearer of the tests' token."""

    blobs: FolderBlobs
    base_url: str

    def grant(
        self, data: bytes, manifest: SignedManifest | None = None, version_id: str = "mv-1"
    ) -> registry_pb2.DownloadUrl:
        """Hold `data` as a blob and return what GetDownloadUrl would: a URL for CALLER, its hash and size,
        and `manifest` (None: the version is not approved)."""
        sha256 = self.blobs.put(data)
        expires = datetime.now(UTC) + timedelta(minutes=15)
        url = UrlSigner(REGISTRY_KEY).mint(version_id, sha256, CALLER, expires, self.base_url)
        grant = registry_pb2.DownloadUrl(url=url, artifact_sha256=sha256, artifact_size_bytes=len(data))
        if manifest is not None:
            grant.signed_manifest_json = manifest.to_json().decode()
        return grant


@contextmanager
def download_endpoint(root: Path, token: str, loop: asyncio.AbstractEventLoop) -> Iterator[DownloadEndpoint]:
    """download_app on a free port of 127.0.0.1, on `loop`, accepting only `Bearer <token>` (as CALLER)."""

    async def authenticate(authorization: str | None) -> str | None:
        return CALLER if authorization == f"Bearer {token}" else None

    blobs = FolderBlobs(root)
    app = download_app(blobs, UrlVerifier([REGISTRY_KEY.public_key]), authenticate)
    serving_app: AbstractAsyncContextManager[int] = serve_downloads(app, "127.0.0.1", 0)
    port = run_on(loop, serving_app.__aenter__())
    try:
        yield DownloadEndpoint(blobs, f"http://127.0.0.1:{port}")
    finally:
        run_on(loop, serving_app.__aexit__(None, None, None))
