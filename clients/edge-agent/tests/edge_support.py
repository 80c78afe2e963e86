"""What the edge agent's tests share: model files, signed manifests, and in-process fakes of deploy-svc's
EdgeService and registry-svc's GetDownloadUrl (real grpc.aio servers on the generated servicer base
classes) with the registry's real download endpoint (aiohttp, Range requests) serving the bytes."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import torch
from aiohttp import web
from grpc import aio

from modelyard.v1 import deploy_pb2, deploy_pb2_grpc, registry_pb2, registry_pb2_grpc
from modelyard_artifacts.http_server import download_app, serve_downloads
from modelyard_artifacts.manifest import ArtifactManifest, ManifestSigner, SignedManifest
from modelyard_artifacts.signed_urls import UrlSigner, UrlVerifier
from modelyard_artifacts.testing import FolderBlobs
from modelyard_edge.config import AgentConfig
from modelyard_events.schemas.hyperparameters import validate_hyperparameters
from modelyard_events.signing import Ed25519Key
from modelyard_inference import ArtifactConfig, TabularScaling, artifact_payload, build_model

REGISTRY_KEY = Ed25519Key.generate()
OTHER_KEY = Ed25519Key.generate()
MODULE = "sorter"
FEATURES = ["length", "width", "weight"]
ANIMALS = ["cat", "dog", "horse"]
LENIENT = deploy_pb2.HealthLimits(load_time_slack_ms=60_000, latency_slack_ms=10_000)


def model_bytes(seed: int = 0, *, always: int | None = None, hidden: int = 8) -> bytes:
    """A modelyard.model/1 file of a small tabular classifier, as a trainer writes it; with `always`,
    its output bias makes it predict that class index for every input."""
    hyperparameters = validate_hyperparameters(
        "tabular_classifier", {"hidden_layers": [hidden], "target_column": "animal"}
    )
    scaling = TabularScaling(FEATURES, [10.0, 5.0, 3.0], [2.0, 1.0, 0.5])
    config = ArtifactConfig(
        "tabular_classifier",
        hyperparameters.model_dump(mode="json"),
        (len(FEATURES),),
        list(ANIMALS),
        scaling,
        {"accuracy": 0.9},
    )
    torch.manual_seed(seed)
    model = build_model("tabular_classifier", hyperparameters, config.input_shape, len(ANIMALS))
    if always is not None:
        head = list(model.children())[-1]
        assert isinstance(head, torch.nn.Linear)
        with torch.no_grad():
            head.weight.zero_()
            head.bias.fill_(0.0)
            head.bias[always] = 100.0
    buffer = io.BytesIO()
    torch.save(artifact_payload(model, config), buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class Version:
    """A registered version: its bytes and the manifest the registry signed for it."""

    version_id: str
    data: bytes
    signed: SignedManifest
    semantic_version: str = "1.0.0"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def assignment(self, deployment_id: str, attempt: int = 1, **fields: Any) -> deploy_pb2.Assignment:
        return deploy_pb2.Assignment(
            deployment_id=deployment_id,
            version_id=self.version_id,
            ai_module=fields.pop("ai_module", MODULE),
            semantic_version=self.semantic_version,
            artifact_sha256=self.sha256,
            artifact_size_bytes=len(self.data),
            attempt=attempt,
            kind=fields.pop("kind", "deploy"),
            # Timings on a loaded 2-core machine are noise: only the tests about the gate tighten it.
            health=fields.pop("health", LENIENT),
            **fields,
        )


def version(
    version_id: str,
    data: bytes,
    *,
    semantic_version: str = "1.0.0",
    key: Ed25519Key = REGISTRY_KEY,
    manifest_version_id: str | None = None,
) -> Version:
    manifest = ArtifactManifest(
        version_id=manifest_version_id or version_id,
        org_id="org-1",
        ai_module=MODULE,
        semantic_version=semantic_version,
        artifact_sha256=hashlib.sha256(data).hexdigest(),
        artifact_size_bytes=len(data),
        config_sha256="0" * 64,
        approved_by="alice",
        approved_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    return Version(version_id, data, ManifestSigner(key).sign(manifest), semantic_version)


def agent_config(home: Path, deploy_port: int, registry_port: int, **overrides: Any) -> AgentConfig:
    settings: dict[str, Any] = {
        "server_id": "edge-1",
        "home": home,
        "token": "edge-token",
        "registry_public_keys": (REGISTRY_KEY.public_text(),),
        "deploy_target": f"127.0.0.1:{deploy_port}",
        "registry_target": f"127.0.0.1:{registry_port}",
        "platform": "linux/amd64",
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.2,
        "call_timeout_s": 5.0,
        "report_gap_s": 0.0,  # every phase reported, so tests can follow them
    }
    settings.update(overrides)
    return AgentConfig(**settings)


class FakeEdgeService(deploy_pb2_grpc.EdgeServiceServicer):
    """deploy-svc's EdgeService as an agent sees it: the test pushes assignments and reads reports."""

    def __init__(self) -> None:
        self.registrations: list[deploy_pb2.RegisterEdgeRequest] = []
        self.tokens: dict[str, set[str]] = {}  # server id → the bearer tokens its calls carried
        self.heartbeats: list[deploy_pb2.EdgeHeartbeat] = []
        self.reports: list[deploy_pb2.ProgressReport] = []
        self.cancelled: set[str] = set()
        self.fail_heartbeats = False  # answer heartbeats UNAVAILABLE (the stream stays open)
        self.over: dict[str, str] = {}  # deployments failed at deploy-svc (a deadline), with the reason
        self.heartbeats_cancel = True  # False: only progress answers carry cancellations
        self.streams = 0
        self.break_streams = 0  # this many stream opens fail with UNAVAILABLE
        self.assignments: asyncio.Queue[deploy_pb2.Assignment] = asyncio.Queue()
        self.changed = asyncio.Condition()

    async def Register(self, request: Any, context: Any) -> deploy_pb2.RegisterEdgeResponse:  # noqa: N802
        self.registrations.append(request)
        self._saw_token(request.server_id, context)
        return deploy_pb2.RegisterEdgeResponse(heartbeat_interval_s=0.2)

    async def Heartbeat(self, request: Any, context: Any) -> deploy_pb2.EdgeHeartbeatResponse:  # noqa: N802
        if self.fail_heartbeats:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "heartbeats lost")
        async with self.changed:
            self.heartbeats.append(request)
            self.changed.notify_all()
        return deploy_pb2.EdgeHeartbeatResponse(
            heartbeat_interval_s=0.2,
            cancelled_deployment_ids=sorted(self.cancelled) if self.heartbeats_cancel else [],
        )

    async def StreamAssignments(self, request: Any, context: Any) -> AsyncIterator[deploy_pb2.Assignment]:  # noqa: N802
        async with self.changed:
            self.streams += 1
            self.changed.notify_all()
        if self.break_streams:
            self.break_streams -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "deploy-svc restarting")
        while True:
            yield await self.assignments.get()

    async def ReportProgress(self, request: Any, context: Any) -> deploy_pb2.ProgressAck:  # noqa: N802
        self._saw_token(request.server_id, context)
        async with self.changed:
            self.reports.append(request)
            self.changed.notify_all()
        ack = deploy_pb2.ProgressAck(cancelled=request.deployment_id in self.cancelled)
        if request.deployment_id in self.over:
            ack.deployment.status = deploy_pb2.DEPLOYMENT_STATUS_FAILED
            ack.deployment.error_message = self.over[request.deployment_id]
        return ack

    def _saw_token(self, server_id: str, context: Any) -> None:
        tokens = [value for key, value in context.invocation_metadata() if key == "authorization"]
        self.tokens.setdefault(server_id, set()).update(tokens)

    def reports_of(self, deployment_id: str) -> list[deploy_pb2.ProgressReport]:
        return [report for report in self.reports if report.deployment_id == deployment_id]

    def phases_of(self, deployment_id: str) -> list[str]:
        return [report.phase for report in self.reports_of(deployment_id)]

    async def wait_for(self, condition: Callable[[], bool], timeout_s: float = 120.0) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(condition), timeout_s)

    async def outcome(self, deployment_id: str, timeout_s: float = 120.0) -> deploy_pb2.ProgressReport:
        """The deployment's COMPLETED or FAILED report, once it arrives."""
        final = (deploy_pb2.DEPLOYMENT_STATUS_COMPLETED, deploy_pb2.DEPLOYMENT_STATUS_FAILED)

        def done() -> bool:
            return any(report.status in final for report in self.reports_of(deployment_id))

        await self.wait_for(done, timeout_s)
        return next(report for report in self.reports_of(deployment_id) if report.status in final)


class FakeRegistry(registry_pb2_grpc.RegistryServiceServicer):
    """registry-svc's GetDownloadUrl over the real download endpoint; `serve_bytes` may differ from
    the registered bytes (a tampered store)."""

    def __init__(self, blobs: FolderBlobs, base_url: Callable[[], str]) -> None:
        self.blobs, self._base_url = blobs, base_url
        self.versions: dict[str, Version] = {}
        self.requests: list[registry_pb2.DownloadUrlRequest] = []
        self.tokens: list[str] = []
        self.signer = UrlSigner(REGISTRY_KEY)

    def add(self, registered: Version, serve_bytes: bytes | None = None) -> None:
        self.versions[registered.version_id] = registered
        (self.blobs.root / registered.sha256).write_bytes(
            registered.data if serve_bytes is None else serve_bytes
        )

    async def GetDownloadUrl(self, request: Any, context: Any) -> registry_pb2.DownloadUrl:  # noqa: N802
        self.requests.append(request)
        self.tokens.extend(value for key, value in context.invocation_metadata() if key == "authorization")
        registered = self.versions.get(request.version_id)
        if registered is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no version {request.version_id}")
        assert registered is not None
        expires = datetime.now(UTC) + timedelta(minutes=10)
        url = self.signer.mint(
            registered.version_id, registered.sha256, request.audience, expires, self._base_url()
        )
        return registry_pb2.DownloadUrl(
            url=url,
            artifact_sha256=registered.sha256,
            artifact_size_bytes=len(registered.data),
            signed_manifest_json=registered.signed.to_json().decode(),
        )


@dataclass
class Cloud:
    """The fakes, started: EdgeService on `deploy_port`, RegistryService on `registry_port`, the
    download endpoint on `http_port` (recording each request's Range header)."""

    edge: FakeEdgeService
    registry: FakeRegistry
    deploy_port: int = 0
    registry_port: int = 0
    http_port: int = 0
    ranges: list[str | None] = field(default_factory=list)


@asynccontextmanager
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    blobs = FolderBlobs(tmp_path / "blobs")
    started = Cloud(FakeEdgeService(), FakeRegistry(blobs, lambda: f"http://127.0.0.1:{started.http_port}"))
    app = download_app(blobs, UrlVerifier([REGISTRY_KEY.public_key]))

    @web.middleware
    async def record_range(request: web.Request, handler: Any) -> web.StreamResponse:
        started.ranges.append(request.headers.get("Range"))
        response: web.StreamResponse = await handler(request)
        return response

    app.middlewares.append(record_range)
    server = aio.server()
    deploy_pb2_grpc.add_EdgeServiceServicer_to_server(started.edge, server)
    started.deploy_port = server.add_insecure_port("127.0.0.1:0")
    registry_server = aio.server()
    registry_pb2_grpc.add_RegistryServiceServicer_to_server(started.registry, registry_server)
    started.registry_port = registry_server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await registry_server.start()
    try:
        async with serve_downloads(app, "127.0.0.1", 0) as port:
            started.http_port = port
            yield started
    finally:
        await server.stop(0)
        await registry_server.stop(0)
