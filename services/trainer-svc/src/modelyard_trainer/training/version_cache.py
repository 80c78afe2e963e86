"""The local cache of published dataset versions: content-addressed blobs and verified manifests.

Layout under one root (the worker uses `<trainer_root>/dataset-cache`)::

    blobs/<sha256[:2]>/<sha256>                     one sample's bytes
    versions/<dataset_id>/<version>/manifest.json   exactly the bytes dataset-svc hashed
    versions/<dataset_id>/<version>/manifest.sha256 their SHA-256 (hex)

A blob is written to a temp file beside its final name and renamed in only after its size and
SHA-256 match the manifest, so a reader sees a verified blob or none. Files are not fsynced: a blob
torn by a crash is caught by the hash check made when training reads it, removed, and downloaded
again by the next attempt; a cache trades durability for speed.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from modelyard_events.schemas.manifest import DatasetManifest, ManifestSample
from modelyard_trainer.training.errors import DatasetVersionError

MANIFEST_FILE = "manifest.json"
MANIFEST_SHA256_FILE = "manifest.sha256"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def describe(sample: ManifestSample) -> str:
    """How messages name a sample: its id and file name."""
    return f"sample {sample.sample_id} ({sample.filename})"


@dataclass(frozen=True)
class VersionCache:
    """Where blobs and materialized manifests live under `root`; refuses names that could escape it."""

    root: Path

    @classmethod
    def holding(cls, manifest_path: Path) -> VersionCache:
        """The cache whose `versions/<dataset_id>/<version>/manifest.json` is `manifest_path`."""
        return cls(manifest_path.parent.parent.parent.parent)

    def blob_path(self, sha256: str) -> Path:
        """`blobs/ab/abcd…`: where the bytes with this SHA-256 are kept."""
        if not _SHA256.fullmatch(sha256):
            raise DatasetVersionError(f"{sha256!r} is not a lowercase hex SHA-256")
        return self.root / "blobs" / sha256[:2] / sha256

    def manifest_path(self, dataset_id: str, version: int) -> Path:
        """Where the manifest of a materialized version is kept."""
        if not _SEGMENT.fullmatch(dataset_id) or version < 1:
            raise DatasetVersionError(f"dataset {dataset_id!r} version {version} cannot name a cache folder")
        return self.root / "versions" / dataset_id / str(version) / MANIFEST_FILE

    def has_blob(self, sample: ManifestSample) -> bool:
        """Whether a blob of the sample's size is cached (its hash was checked when it was written)."""
        path = self.blob_path(sample.sha256)
        return path.is_file() and path.stat().st_size == sample.size_bytes

    def cached_manifest(self, dataset_id: str, version: int, sha256: str) -> bytes | None:
        """The cached manifest bytes of a version when they hash to `sha256`, else None."""
        path = self.manifest_path(dataset_id, version)
        if not path.is_file():
            return None
        data = path.read_bytes()
        return data if hashlib.sha256(data).hexdigest() == sha256 else None

    def store_manifest(self, manifest: DatasetManifest, data: bytes, sha256: str) -> Path:
        """Write a verified manifest's exact bytes and its hash (each atomically); return its path."""
        path = self.manifest_path(manifest.dataset_id, manifest.version)
        _write_atomically(path.with_name(MANIFEST_SHA256_FILE), f"{sha256}\n".encode())
        _write_atomically(path, data)
        return path

    def blob_writer(self, sample: ManifestSample) -> BlobWriter:
        """A writer that adds the sample's blob once its bytes are verified."""
        return BlobWriter(self.blob_path(sample.sha256), sample)


class BlobWriter:
    """Receives one sample's bytes in pieces; `commit` verifies size and SHA-256, then renames them in.

    Bytes that do not match the manifest never reach the blob's name: the temp file is removed and
    DatasetVersionError names the sample. Call `discard` when giving up for any other reason.
    """

    def __init__(self, path: Path, sample: ManifestSample) -> None:
        self.path, self.sample = path, sample
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        self._temp, self._file = Path(name), os.fdopen(descriptor, "wb")
        self._digest, self._size = hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        """Append a piece; refuses (and discards) as soon as more bytes arrive than the manifest records."""
        self._size += len(data)
        if self._size > self.sample.size_bytes:
            self.discard()
            raise DatasetVersionError(
                f"{describe(self.sample)}: dataset-svc sent more than the {self.sample.size_bytes} bytes "
                "the manifest records; the bytes were discarded"
            )
        self._digest.update(data)
        self._file.write(data)

    def commit(self) -> Path:
        """Rename the verified bytes to the blob's name; DatasetVersionError if they are not the sample's."""
        self._file.close()
        actual = self._digest.hexdigest()
        if self._size != self.sample.size_bytes or actual != self.sample.sha256:
            self.discard()
            raise DatasetVersionError(
                f"{describe(self.sample)}: the bytes received ({self._size} bytes, SHA-256 {actual}) are not "
                f"the {self.sample.size_bytes} bytes with SHA-256 {self.sample.sha256} the manifest records; "
                "they were discarded"
            )
        os.replace(self._temp, self.path)
        return self.path

    def discard(self) -> None:
        """Drop what was received (idempotent)."""
        self._file.close()
        self._temp.unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
