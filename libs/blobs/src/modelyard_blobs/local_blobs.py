"""Blobs in a local folder (or a mounted volume): `root/ab/<sha256>`, like the S3 keys.

One level of 256 folders: a call's new blobs land in at most 256 folders, each synced once after
its renames (two levels would mean a folder, and a folder sync, per file); ext4 and XFS index large
folders, so millions of blobs stay fast to look up. A blob appears under its final
name only complete: promotion is one `os.replace` (an atomic rename) from staging, which is why
the staging root should be on the same filesystem as `root`. Across filesystems the rename fails
with EXDEV and the file is copied to a temporary name in the target folder, then renamed.
`put_file` copies to a temporary name in the target folder, fsyncs it, then renames it the same
way. Blocking file I/O runs in worker threads, off the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from modelyard_blobs.blobs import (
    DEFAULT_CHUNK_BYTES,
    blob_not_found,
    checked_chunk_bytes,
    checked_range,
    checked_sha256,
    copy_verified,
)
from modelyard_blobs.staging import StagedBlob


class LocalFolderBlobStore:
    """A BlobStore over a local folder; safe for several writers (renames are atomic, content is equal)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        """ "local folder <root>"."""
        return f"local folder {self.root}"

    def path_of(self, sha256: str) -> Path:
        """Where the blob with this SHA-256 lives (whether or not it exists)."""
        sha256 = checked_sha256(sha256)
        return self.root / sha256[:2] / sha256

    def local_path(self, sha256: str) -> Path:
        """The blob's file (`path_of`), for a server that sends it with sendfile; no I/O."""
        return self.path_of(sha256)

    async def exists(self, sha256: str) -> bool:
        """Whether the blob's file is there."""
        return await asyncio.to_thread(self.path_of(sha256).is_file)

    async def size(self, sha256: str) -> int:
        """The blob file's size in bytes; NotFound when absent."""
        path = self.path_of(sha256)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            raise blob_not_found(sha256, self.describe()) from None

    async def promote(self, staged: StagedBlob) -> None:
        """Rename the staged file to its final name, or delete it when that blob is already stored."""
        await asyncio.to_thread(self._promote, staged, self.path_of(staged.sha256))

    async def promote_all(self, staged: Sequence[StagedBlob]) -> None:
        """Promote many staged files in one worker thread, syncing each touched folder once."""
        await asyncio.to_thread(self._promote_all, list(staged))

    def _promote_all(self, staged: list[StagedBlob]) -> None:
        folders: set[Path] = set()
        for blob in staged:
            target = self.path_of(blob.sha256)
            self._promote(blob, target, sync_folder=False)
            folders.add(target.parent)
        for folder in folders:
            _fsync_folder(folder)

    async def put_bytes(self, data: bytes) -> str:
        """Write `data` under its SHA-256 (atomically, via a temporary name) unless already stored."""
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path_of(sha256)
        await asyncio.to_thread(_write_new, target, data)
        return sha256

    async def put_file(self, path: Path, expected_sha256: str, *, max_bytes: int | None = None) -> int:
        """Copy `path` in under `expected_sha256` (hashed while copied to a synced temporary file,
        then renamed) and return its size; see BlobStore.put_file for the errors."""
        target = self.path_of(expected_sha256)
        return await asyncio.to_thread(_copy_in, path, target, expected_sha256, max_bytes)

    async def read(self, sha256: str) -> bytes:
        """The blob's bytes; NotFound when absent."""
        path = self.path_of(sha256)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise blob_not_found(sha256, self.describe()) from None

    async def delete(self, sha256: str) -> None:
        """Unlink the blob's file (absent: nothing to do)."""
        await asyncio.to_thread(self.path_of(sha256).unlink, missing_ok=True)

    async def chunks(
        self,
        sha256: str,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        *,
        start: int = 0,
        end: int | None = None,
    ) -> AsyncIterator[bytes]:
        """Bytes [start, end) of the blob in pieces of at most `chunk_bytes`, each read in a worker thread."""
        checked_chunk_bytes(chunk_bytes)
        path = self.path_of(sha256)
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise blob_not_found(sha256, self.describe()) from None
        try:
            first, stop = checked_range(start, end, os.fstat(file.fileno()).st_size)
            file.seek(first)
            remaining = stop - first
            while remaining and (chunk := await asyncio.to_thread(file.read, min(chunk_bytes, remaining))):
                remaining -= len(chunk)
                yield chunk
        finally:
            file.close()

    @staticmethod
    def _promote(staged: StagedBlob, target: Path, sync_folder: bool = True) -> None:
        if target.is_file():
            staged.path.unlink(missing_ok=True)
            return
        _ensure_folder(target.parent)
        try:
            os.replace(staged.path, target)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            _copy_then_rename(staged.path, target)
            staged.path.unlink(missing_ok=True)
        if sync_folder:
            _fsync_folder(target.parent)


def _ensure_folder(folder: Path) -> None:
    # A new prefix folder is durable only once its parent is synced too.
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        _fsync_folder(folder.parent)


def _fsync_file(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    # A rename is durable only once its folder is synced (the file's bytes were synced in staging).
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _write_new(target: Path, data: bytes) -> None:
    if not target.is_file():
        _write_atomically(target, lambda handle: handle.write(data))


def _copy_in(source: Path, target: Path, sha256: str, max_bytes: int | None) -> int:
    try:
        return target.stat().st_size
    except FileNotFoundError:
        return _write_atomically(target, lambda handle: copy_verified(source, handle, sha256, max_bytes))


def _write_atomically(target: Path, write: Callable[[BinaryIO], int]) -> int:
    # The blob appears under its name only complete and synced; on any error nothing is left.
    _ensure_folder(target.parent)
    temporary = _temporary_beside(target)
    try:
        with temporary.open("wb") as handle:
            written = write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        _fsync_folder(target.parent)
    finally:
        temporary.unlink(missing_ok=True)
    return written


def _copy_then_rename(source: Path, target: Path) -> None:
    # A temporary name in the target folder, so the final rename is atomic on that filesystem.
    temporary = _temporary_beside(target)
    try:
        shutil.copyfile(source, temporary)
        _fsync_file(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _temporary_beside(target: Path) -> Path:
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:8]}-", suffix=".tmp")
    os.close(handle)
    return Path(name)
