"""An in-process fake of registry-svc for trainers: `GetDownloadUrl` over grpc.aio, and the real artifact
download endpoint of libs/artifacts (signed URLs, bearer token of the URL's audience) over HTTP.

Versions are put in with `register` (a draft: no manifest) or `approve` (a manifest signed by the
given key); `tamper` changes a stored artifact's bytes under its name, as a damaged store would.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from grpc import aio

from modelyard.v1 import registry_pb2, registry_pb2_grpc
from modelyard_artifacts.http_server import download_app, serve_downloads
from modelyard_artifacts.manifest import ArtifactManifest, ManifestSigner
from modelyard_artifacts.signed_urls import UrlSigner, UrlVerifier
from modelyard_artifacts.testing import FolderBlobs
from modelyard_events.schemas.jobs import ModelInput
from modelyard_events.signing import Ed25519Key
from modelyard_grpc import Role, TokenError
from modelyard_grpc.auth import bearer_token
from modelyard_grpc.testing import serving_fake, verifier_for

REGISTRY_KEY = Ed25519Key.generate()  # what the trainer pins
OTHER_KEY = Ed25519Key.generate()  # a key the trainer does not pin
REGISTRY_AUDIENCE = "registry-svc"


@dataclass
class _Version:
    sha256: str
    size_bytes: int
    manifest_json: str | None


class FakeRegistry(registry_pb2_grpc.RegistryServiceServicer):
    """Versions and their blobs; records the subject of every GetDownloadUrl and every download."""

    def __init__(self, blob_root: Path) -> None:
        self.blobs = FolderBlobs(blob_root)
        self.versions: dict[str, _Version] = {}
        self.base_url = ""
        self.url_callers: list[str] = []
        self.downloads: list[str | None] = []
        self._urls = UrlSigner(REGISTRY_KEY)
        self._tokens = verifier_for(REGISTRY_AUDIENCE)

    def register(self, version_id: str, artifact: Path, semantic_version: str = "1.0.0") -> ModelInput:
        """A draft version of `artifact` (no manifest); the dispatch's model input naming it."""
        data = artifact.read_bytes()
        sha256 = self.blobs.put(data)
        self.versions[version_id] = _Version(sha256, len(data), None)
        return ModelInput(
            version_id=version_id,
            ai_module="animals",
            semantic_version=semantic_version,
            artifact_sha256=sha256,
            artifact_size_bytes=len(data),
        )

    def approve(self, model: ModelInput, key: Ed25519Key = REGISTRY_KEY, **changes: object) -> None:
        """Sign the version's manifest with `key`; `changes` alter what the manifest says."""
        fields: dict[str, object] = {
            "version_id": model.version_id,
            "org_id": "org-1",
            "ai_module": model.ai_module,
            "semantic_version": model.semantic_version,
            "artifact_sha256": model.artifact_sha256,
            "artifact_size_bytes": model.artifact_size_bytes,
            "config_sha256": hashlib.sha256(b"config").hexdigest(),
            "approved_by": "admin-2",
            "approved_at": datetime.now(UTC),
        }
        signed = ManifestSigner(key).sign(ArtifactManifest.model_validate(fields | changes))
        self.versions[model.version_id].manifest_json = signed.to_json().decode()

    def tamper(self, model: ModelInput) -> None:
        """Flip the stored artifact's last byte (same size, another SHA-256)."""
        path = self.blobs.root / model.artifact_sha256
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))

    async def GetDownloadUrl(  # noqa: N802 (the proto's method name)
        self, request: registry_pb2.DownloadUrlRequest, context: aio.ServicerContext
    ) -> registry_pb2.DownloadUrl:
        subject = await self._subject(dict(context.invocation_metadata() or ()).get("authorization"))
        if subject is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a trainer token is required")
        assert subject is not None
        self.url_callers.append(subject)
        version = self.versions.get(request.version_id)
        if version is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no model version {request.version_id}")
        assert version is not None
        expires = datetime.now(UTC) + timedelta(minutes=15)
        url = self._urls.mint(
            request.version_id, version.sha256, request.audience or subject, expires, self.base_url
        )
        answer = registry_pb2.DownloadUrl(
            url=url, artifact_sha256=version.sha256, artifact_size_bytes=version.size_bytes
        )
        if version.manifest_json is not None:
            answer.signed_manifest_json = version.manifest_json
        return answer

    async def authenticate_download(self, authorization: str | None) -> str | None:
        """The download endpoint's check (the caller must be the URL's audience); recorded."""
        self.downloads.append(authorization)
        return await self._subject(authorization)

    async def _subject(self, authorization: str | None) -> str | None:
        """The verified subject of a trainer's bearer token (None for none or another role)."""
        try:
            principal = self._tokens.verify(bearer_token(authorization))
        except TokenError:
            return None
        return principal.subject if Role.TRAINER in principal.roles else None


@asynccontextmanager
async def serving_registry(registry: FakeRegistry) -> AsyncIterator[str]:
    """Serve GetDownloadUrl and the download endpoint on free local ports; yields the gRPC target."""
    app = download_app(registry.blobs, UrlVerifier([REGISTRY_KEY.public_key]), registry.authenticate_download)
    async with (
        serve_downloads(app, "127.0.0.1", 0) as port,
        serving_fake(registry_pb2_grpc.add_RegistryServiceServicer_to_server, registry) as target,
    ):
        registry.base_url = f"http://127.0.0.1:{port}"
        yield target
