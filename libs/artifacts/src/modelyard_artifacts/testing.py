"""Test support shipped with the library: two small ArtifactBlobs and the contract every one obeys.

`MemoryBlobs` streams from memory (like an S3 store: no local path); `FolderBlobs` keeps each blob
as a file named by its SHA-256 (like the local-folder store: sendfile). A real store's tests
subclass `ArtifactBlobsContract` with a `blobs` fixture holding `CONTRACT_BLOB`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelyard_artifacts.http_server import ArtifactBlobs
from modelyard_events.domain_errors import NotFound

CONTRACT_BLOB = bytes(range(256)) * 12_289  # 3 MiB + 256 bytes: more than one default chunk
CONTRACT_SHA256 = hashlib.sha256(CONTRACT_BLOB).hexdigest()
ABSENT_SHA256 = "0" * 64


def _not_found(sha256: str) -> NotFound:
    return NotFound(f"no blob {sha256}")


class MemoryBlobs:
    """Blobs held in memory, served only by streaming (no local path)."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        """Hold `data`; returns its SHA-256."""
        sha256 = hashlib.sha256(data).hexdigest()
        self._blobs[sha256] = data
        return sha256

    async def size(self, sha256: str) -> int:
        """The blob's size; NotFound when absent."""
        if sha256 not in self._blobs:
            raise _not_found(sha256)
        return len(self._blobs[sha256])

    def local_path(self, sha256: str) -> Path | None:
        """Always None: these bytes are not on disk."""
        return None

    async def chunks(
        self, sha256: str, chunk_bytes: int = 1 << 20, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes [start, end) in chunks of at most `chunk_bytes`; NotFound when absent."""
        if sha256 not in self._blobs:
            raise _not_found(sha256)
        data = self._blobs[sha256]
        stop = len(data) if end is None else min(end, len(data))
        for offset in range(start, stop, chunk_bytes):
            yield data[offset : min(offset + chunk_bytes, stop)]


class FolderBlobs:
    """Blobs as files named by their SHA-256 in one folder, served with sendfile."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes) -> str:
        """Write `data` as a blob; returns its SHA-256."""
        sha256 = hashlib.sha256(data).hexdigest()
        (self.root / sha256).write_bytes(data)
        return sha256

    def adopt(self, path: Path, sha256: str) -> None:
        """Hold an existing file as blob `sha256` (a hard link; benchmarks use it for large files)."""
        (self.root / sha256).hardlink_to(path)

    async def size(self, sha256: str) -> int:
        """The blob's size; NotFound when absent."""
        try:
            return (self.root / sha256).stat().st_size
        except FileNotFoundError:
            raise _not_found(sha256) from None

    def local_path(self, sha256: str) -> Path | None:
        """The blob's file, or None when absent."""
        path = self.root / sha256
        return path if path.is_file() else None

    async def chunks(
        self, sha256: str, chunk_bytes: int = 1 << 20, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes [start, end) in chunks of at most `chunk_bytes`; NotFound when absent."""
        try:
            file = (self.root / sha256).open("rb")
        except FileNotFoundError:
            raise _not_found(sha256) from None
        with file:
            file.seek(start)
            left = None if end is None else max(end - start, 0)
            while left is None or left > 0:
                chunk = file.read(chunk_bytes if left is None else min(chunk_bytes, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk


async def _collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


class ArtifactBlobsContract:
    """What the download endpoint relies on; subclasses provide a `blobs` fixture holding CONTRACT_BLOB."""

    async def test_size_is_the_blob_length(self, blobs: ArtifactBlobs) -> None:
        assert await blobs.size(CONTRACT_SHA256) == len(CONTRACT_BLOB)

    async def test_chunks_join_to_the_blob_and_respect_chunk_bytes(self, blobs: ArtifactBlobs) -> None:
        chunks = await _collect(blobs.chunks(CONTRACT_SHA256, 1 << 20))
        assert b"".join(chunks) == CONTRACT_BLOB
        assert all(0 < len(chunk) <= 1 << 20 for chunk in chunks)

    @pytest.mark.parametrize(
        ("start", "end"),
        [(0, 1), (5, 1 << 20), (1_000_000, 2_500_000), ((1 << 20) - 1, None), (len(CONTRACT_BLOB) - 1, None)],
    )
    async def test_chunks_from_start_to_end_exclusive(
        self, blobs: ArtifactBlobs, start: int, end: int | None
    ) -> None:
        got = b"".join(await _collect(blobs.chunks(CONTRACT_SHA256, 65_536, start=start, end=end)))
        assert got == CONTRACT_BLOB[start:end]

    async def test_an_absent_blob_is_not_found(self, blobs: ArtifactBlobs) -> None:
        with pytest.raises(NotFound):
            await blobs.size(ABSENT_SHA256)
        with pytest.raises(NotFound):
            await _collect(blobs.chunks(ABSENT_SHA256))
        assert blobs.local_path(ABSENT_SHA256) is None

    async def test_a_local_path_holds_exactly_the_blob(self, blobs: ArtifactBlobs) -> None:
        path = blobs.local_path(CONTRACT_SHA256)
        assert path is None or path.read_bytes() == CONTRACT_BLOB
