"""Fetching a dispatch's model version from registry-svc: the base a fine-tuning run starts from, or
the version an evaluation run measures.

`GetDownloadUrl` (with the worker's `trainer` token; the URL is for the token's own subject) gives an
expiring signed URL, and the download sends that token again as `Authorization: Bearer`. A base for
fine-tuning must be approved: its signed manifest must verify under a pinned registry key
(MODELYARD_REGISTRY_PUBLIC_KEYS) and name the dispatch's version, SHA-256 and size. A version under
evaluation is not approved yet, so only its bytes are checked against the dispatch. Either way the
file is kept in the model cache under its SHA-256 and reused, after hashing it again, by later runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from pathlib import Path

import aiohttp
import grpc
from grpc import aio

from modelyard.v1 import registry_pb2, registry_pb2_grpc
from modelyard_artifacts.download import DownloadError, download_artifact
from modelyard_artifacts.integrity import ArtifactMismatch, check_file
from modelyard_artifacts.manifest import (
    MalformedManifest,
    ManifestSignatureError,
    ManifestVerifier,
    SignedManifest,
)
from modelyard_events.schemas.jobs import JobDispatched, ModelInput
from modelyard_grpc.client import TokenSource
from modelyard_trainer.training import TrainingError

log = logging.getLogger(__name__)

_CALL_TIMEOUT_S = 30.0


class ModelInputError(TrainingError):
    """A dispatch's model version cannot be used; the message names the version and what failed."""

    code = "bad_model_input"


class _Refused(Exception):
    """The registry's answer does not vouch for the dispatch's version (a reason for a person)."""


class ModelInputFetcher:
    """Fetches model versions from RegistryService into the model cache (one download per SHA-256).

    `cache` holds `<sha256>.pt` files, shared by the runs (and trainers) of one root; `staging` is
    this worker's own folder for downloads in progress, so two trainers never write the same file.
    """

    def __init__(
        self,
        registry_svc: aio.Channel,
        token: TokenSource,
        verifier: ManifestVerifier | None,
        cache: Path,
        staging: Path,
        *,
        target: str = "registry-svc",
        stall_timeout_s: float = 60.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._stub = registry_pb2_grpc.RegistryServiceStub(registry_svc)
        self._token, self._verifier = token, verifier
        self._cache, self._staging, self._target = cache, staging, target
        self._stall_timeout_s, self._tls = stall_timeout_s, tls
        self._locks: dict[str, asyncio.Lock] = {}

    async def artifact_for(self, dispatch: JobDispatched) -> Path | None:
        """The local artifact of the dispatch's model version; None when it names none, or when a
        fine-tuning run resumes from a checkpoint (whose weights win over the base's).

        Raises ModelInputError naming the version and the reason: registry-svc unreachable or refusing,
        a base that is not approved or whose manifest does not verify, bytes that hash differently.
        """
        model = dispatch.model_input
        fine_tuning = dispatch.kind == "training"
        if model is None or (fine_tuning and dispatch.checkpoint_uri):
            return None
        what = f"base version {model.semantic_version} ({model.version_id})"
        if not fine_tuning:
            what = f"version {model.semantic_version} ({model.version_id}) to evaluate"
        try:
            return await self._fetch(model, fine_tuning)
        except aio.AioRpcError as error:
            raise ModelInputError(f"{what} could not be fetched: {self._rpc_failure(error)}") from None
        except (
            _Refused,
            DownloadError,
            ArtifactMismatch,
            MalformedManifest,
            ManifestSignatureError,
        ) as error:
            raise ModelInputError(f"{what} could not be fetched: {error}") from None
        except OSError as error:
            raise ModelInputError(
                f"{what} could not be fetched: cannot write the model cache at {self._cache}: {error}"
            ) from None

    async def _fetch(self, model: ModelInput, fine_tuning: bool) -> Path:
        verifier = self._manifest_verifier() if fine_tuning else None
        request = registry_pb2.DownloadUrlRequest(version_id=model.version_id)  # audience: ourselves
        answer: registry_pb2.DownloadUrl = await self._stub.GetDownloadUrl(request, timeout=_CALL_TIMEOUT_S)
        if (answer.artifact_sha256, answer.artifact_size_bytes) != (
            model.artifact_sha256,
            model.artifact_size_bytes,
        ):
            raise _Refused(
                f"the registry holds SHA-256 {answer.artifact_sha256} ({answer.artifact_size_bytes:,} bytes) "
                f"for it, not the dispatch's {model.artifact_sha256} ({model.artifact_size_bytes:,} bytes)"
            )
        if verifier is not None:
            check_manifest(model, answer, verifier)
        lock = self._locks.setdefault(model.artifact_sha256, asyncio.Lock())
        try:
            async with lock:
                return await self._cached_or_downloaded(model, answer.url)
        finally:
            if not lock.locked():  # nobody fetching it now: do not keep a lock per version forever
                self._locks.pop(model.artifact_sha256, None)

    def _manifest_verifier(self) -> ManifestVerifier:
        if self._verifier is None:
            raise _Refused(
                "MODELYARD_REGISTRY_PUBLIC_KEYS pins no registry key, so its signed manifest cannot be "
                "checked; pin the registry's public key on this trainer"
            )
        return self._verifier

    async def _cached_or_downloaded(self, model: ModelInput, url: str) -> Path:
        path = self._cache / f"{model.artifact_sha256}.pt"
        if await asyncio.to_thread(_intact, path, model):
            return path
        staged = self._staging / path.name
        connector = aiohttp.TCPConnector(ssl=self._tls or True)
        async with aiohttp.ClientSession(connector=connector) as session:
            await download_artifact(
                url,
                staged,
                expected_sha256=model.artifact_sha256,
                expected_size=model.artifact_size_bytes,
                headers={"Authorization": f"Bearer {_current(self._token)}"},
                stall_timeout_s=self._stall_timeout_s,
                session=session,
            )
        await asyncio.to_thread(os.replace, staged, path)  # same bytes whoever renames last
        log.info("fetched model version %s (%s) into %s", model.version_id, model.semantic_version, path)
        return path

    def _rpc_failure(self, error: aio.AioRpcError) -> str:
        code, details = error.code(), error.details()
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return f"registry-svc at {self._target} is unreachable ({code.name}: {details}); retry later"
        if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
            return (
                f"registry-svc refused the trainer's token ({code.name}: {details}); check that "
                "MODELYARD_TOKEN_FILE holds a fresh trainer token for registry-svc"
            )
        return f"registry-svc answered {code.name}: {details}"


def check_manifest(model: ModelInput, answer: registry_pb2.DownloadUrl, verifier: ManifestVerifier) -> None:
    """Return when the answer carries a manifest a pinned key signed for exactly the dispatch's version,
    SHA-256 and size; otherwise raise saying which (no manifest: the version is not approved)."""
    if not answer.HasField("signed_manifest_json"):
        raise _Refused(
            "the registry sent no signed manifest: the version is not approved; fine-tune from an "
            "approved or released version"
        )
    manifest = verifier.verify(SignedManifest.from_json(answer.signed_manifest_json.encode()))
    signed = (manifest.version_id, manifest.artifact_sha256, manifest.artifact_size_bytes)
    expected = (model.version_id, model.artifact_sha256, model.artifact_size_bytes)
    if signed != expected:
        raise _Refused(
            f"its signed manifest vouches for version {signed[0]}, SHA-256 {signed[1]} ({signed[2]:,} "
            f"bytes), not the dispatch's {expected[0]}, {expected[1]} ({expected[2]:,} bytes)"
        )


def _intact(path: Path, model: ModelInput) -> bool:
    """Whether the cache holds the version's bytes (a damaged file is removed, to be fetched again)."""
    if not path.is_file():
        return False
    try:
        check_file(path, model.artifact_sha256, model.artifact_size_bytes)
    except ArtifactMismatch as mismatch:
        log.warning("model cache: %s; fetching it again", mismatch)
        path.unlink(missing_ok=True)
        return False
    return True


def _current(token: TokenSource) -> str:
    return token() if callable(token) else token
