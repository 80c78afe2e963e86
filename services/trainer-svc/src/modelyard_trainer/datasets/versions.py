"""Fetching a published dataset version (`dataset://<dataset_id>/<version>`) from dataset-svc.

The result is a *materialized version*: every sample's bytes in the local content-addressed cache,
each verified against the manifest before it got its name, and then the manifest itself (exactly
the bytes dataset-svc hashed, checked against the version's `manifest_sha256`). Training reads it
through `file://…/manifest.json` with no network at all.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
from grpc import aio

from modelyard.v1 import datasets_pb2, datasets_pb2_grpc
from modelyard_events.schemas.downloads import (
    MAX_BYTES_PER_DOWNLOAD,
    MAX_SAMPLES_PER_DOWNLOAD,
    download_batches,
)
from modelyard_events.schemas.manifest import (
    DatasetManifest,
    ManifestError,
    ManifestSample,
    VersionUri,
    parse_manifest,
)
from modelyard_trainer.datasets.sample_chunks import SampleReceiver
from modelyard_trainer.training.errors import DatasetVersionError, TrainingDataError
from modelyard_trainer.training.version_cache import VersionCache

log = logging.getLogger(__name__)

DATASET_SCHEME = "dataset"
_CALL_TIMEOUT_S = 30.0  # unary calls; a download takes as long as the version is large
# A download has no overall deadline, but a stream that sends nothing for this long has hung (a
# half-open connection, a stuck server): it fails the fetch instead of holding the run, and its
# lease, forever while heartbeats keep the lease alive.
DEFAULT_STALL_TIMEOUT_S = 60.0
# What one DownloadSamples call may ask for: dataset-svc's caps (it refuses a request over them).
_HASHES_PER_REQUEST = MAX_SAMPLES_PER_DOWNLOAD
_BYTES_PER_REQUEST = MAX_BYTES_PER_DOWNLOAD


def refuse_local_files(dataset_uri: str, allow_file_datasets: bool) -> None:
    """TrainingDataError for a `file://` dataset URI on a trainer whose setting turns them off.

    A cluster trains only on published versions (issue 11, item 6): job-svc refuses such jobs at
    CreateJob, and a worker refuses a dispatch naming a local file too, whoever sent it.
    """
    if not allow_file_datasets and urlsplit(dataset_uri).scheme.lower() == "file":
        raise TrainingDataError(
            "this trainer trains only on published dataset versions, not local files "
            f"(MODELYARD_ALLOW_FILE_DATASETS is off): {dataset_uri}; publish a dataset version "
            "and use dataset://<dataset_id>/<version number>"
        )


def parse_version_uri(uri: str) -> VersionUri:
    """`dataset://<dataset_id>/<version>` with a version ≥ 1; DatasetVersionError for anything else.

    "Latest" (version 0) is refused: a run, and the resume of it, must train on one fixed version.
    """
    try:
        return VersionUri.parse(uri)
    except ValueError as error:
        raise DatasetVersionError(f"dataset URI {error}") from None


class VersionFetcher:
    """Materializes versions from DatasetService into a `VersionCache`, downloading each blob once.

    Blobs already cached (verified when written) are not asked for again; one version is fetched
    by one task at a time, so two runs of the same version share a single download.
    """

    def __init__(
        self,
        dataset_svc: aio.Channel,
        cache: VersionCache,
        target: str = "dataset-svc",
        *,
        stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S,
    ) -> None:
        self._stub = datasets_pb2_grpc.DatasetServiceStub(dataset_svc)
        self._cache, self._target = cache, target
        self._stall_timeout_s = stall_timeout_s
        self._locks: dict[VersionUri, asyncio.Lock] = {}

    async def training_uri(self, dataset_uri: str) -> str:
        """The URI to train on: `file://` URIs unchanged (where the worker allows them, see
        `refuse_local_files`), a version's URI → its materialized manifest."""
        if urlsplit(dataset_uri).scheme != DATASET_SCHEME:
            return dataset_uri
        return (await self.materialize(dataset_uri)).as_uri()

    async def materialize(self, dataset_uri: str) -> Path:
        """Fetch the version into the cache; return its local manifest.json.

        Raises DatasetVersionError naming what failed: the version unknown or unpublished,
        dataset-svc unreachable or refusing the token, a manifest or sample whose bytes hash
        differently from what the version records, or a cache that cannot be written.
        """
        ref = parse_version_uri(dataset_uri)
        lock = self._locks.setdefault(ref, asyncio.Lock())
        try:
            async with lock:
                return await self._materialize(ref)
        except aio.AioRpcError as error:
            raise DatasetVersionError(rpc_failure(ref, self._target, error)) from None
        except OSError as error:
            raise DatasetVersionError(
                f"cannot write {ref} into the dataset cache at {self._cache.root}: {error}"
            ) from None
        finally:
            if not lock.locked():  # nobody fetching it now: do not keep a lock per version forever
                self._locks.pop(ref, None)

    async def _materialize(self, ref: VersionUri) -> Path:
        request = datasets_pb2.VersionRef(dataset_id=ref.dataset_id, version=ref.version)
        version = await self._stub.GetVersion(request, timeout=_CALL_TIMEOUT_S)
        expected = version.manifest_sha256
        data = await asyncio.to_thread(self._cache.cached_manifest, ref.dataset_id, ref.version, expected)
        if data is None:
            data = await self._download_manifest(ref, request)
        manifest = await asyncio.to_thread(verified_manifest, ref, data, expected)
        missing = await asyncio.to_thread(self._missing, manifest)
        if missing:
            log.info("fetching %d of %d samples of %s", len(missing), len(manifest.samples), ref)
            sizes = ((sha, sample.size_bytes) for sha, sample in missing.items())
            for batch in download_batches(sizes, _HASHES_PER_REQUEST, _BYTES_PER_REQUEST):
                await self._download(ref, {sha: missing[sha] for sha in batch})
        return await asyncio.to_thread(self._cache.store_manifest, manifest, data, expected)

    async def _download_manifest(self, ref: VersionUri, request: datasets_pb2.VersionRef) -> bytes:
        # Streamed, so a manifest of any size arrives (one message may not pass 4 MiB); the joined
        # bytes are checked against the version's SHA-256 by the caller, as one answer would be.
        call = self._stub.DownloadManifest(request)
        pieces: list[bytes] = []
        try:
            while (chunk := await self._next_chunk(call, ref)) is not aio.EOF:
                pieces.append(chunk.data)
        finally:
            call.cancel()
        return b"".join(pieces)

    def _missing(self, manifest: DatasetManifest) -> dict[str, ManifestSample]:
        missing: dict[str, ManifestSample] = {}
        for sample in manifest.samples:
            if sample.sha256 not in missing and not self._cache.has_blob(sample):
                missing[sample.sha256] = sample
        return missing

    async def _download(self, ref: VersionUri, missing: dict[str, ManifestSample]) -> None:
        request = datasets_pb2.DownloadSamplesRequest(
            dataset_id=ref.dataset_id, version=ref.version, sha256=list(missing)
        )
        receiver = SampleReceiver(self._cache, missing, str(ref))
        call = self._stub.DownloadSamples(request)
        try:
            while (chunk := await self._next_chunk(call, ref)) is not aio.EOF:
                await asyncio.to_thread(receiver.receive, chunk)
            receiver.finish()
        finally:
            receiver.abandon()
            call.cancel()  # no-op once the stream ended; stops the server sending after a refusal

    async def _next_chunk(self, call: Any, ref: VersionUri) -> Any:
        try:
            return await asyncio.wait_for(call.read(), self._stall_timeout_s)
        except TimeoutError:
            raise DatasetVersionError(
                f"downloading {ref} from dataset-svc at {self._target} stalled: nothing arrived for "
                f"{self._stall_timeout_s:g} s; the run fails so the job can be tried again"
            ) from None


def verified_manifest(ref: VersionUri, data: bytes, expected_sha256: str) -> DatasetManifest:
    """The manifest of `ref` in `data`, which must hash to the version's recorded SHA-256."""
    try:
        manifest = parse_manifest(data, expected_sha256)
    except ManifestError as error:
        raise DatasetVersionError(f"the manifest of {ref} is refused: {error}") from None
    if (manifest.dataset_id, manifest.version) != (ref.dataset_id, ref.version):
        raise DatasetVersionError(
            f"dataset-svc answered {ref} with the manifest of dataset {manifest.dataset_id} "
            f"v{manifest.version}"
        )
    return manifest


def rpc_failure(ref: VersionUri, target: str, error: aio.AioRpcError) -> str:
    """A failure reason a person can act on, for a DatasetService call that failed."""
    code, details = error.code(), error.details()
    if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
        return (
            f"{ref} is not a published version at dataset-svc ({details}); "
            "publish it or point the job at a published version"
        )
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return f"dataset-svc at {target} is unreachable ({code.name}: {details}); retry once it is up"
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        return (
            f"dataset-svc refused the trainer's token for {ref} ({code.name}: {details}); "
            "check that the trainer's MODELYARD_TOKEN_FILE holds a fresh token for dataset-svc from "
            "an issuer that dataset-svc's MODELYARD_TOKEN_PUBLIC_KEYS pins"
        )
    return f"dataset-svc could not serve {ref} ({code.name}: {details})"
