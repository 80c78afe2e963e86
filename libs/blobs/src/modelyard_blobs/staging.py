"""Staging: where an upload's files are written (and hashed) before the upload is accepted.

The upload handler streams each file's chunks into a `StagingWriter`; the SHA-256 and the byte
count grow with every chunk, so nothing is read twice. Only when the whole upload call is accepted
are the `StagedBlob`s promoted into the blob store; the receiver discards every file of a refused or
interrupted upload, and at start-up the service removes what a crashed process left
(`remove_abandoned`).

Keep the staging root on the same filesystem as a local blob store's root: promotion is then one
atomic rename (the store falls back to copy + rename across filesystems, which is slower).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class StagedBlob:
    """A complete local file in staging whose SHA-256 (lowercase hex) and size were computed on write."""

    sha256: str
    size_bytes: int
    path: Path


class StagingWriter:
    """One file being staged: appends chunks, hashing them on the way; finish or discard it exactly once."""

    def __init__(self, path: Path, file: BinaryIO, on_close: Callable[[StagingWriter], None]) -> None:
        self.path = path
        self._file = file
        self._on_close = on_close
        self._hash = hashlib.sha256()
        self._size_bytes = 0

    @property
    def size_bytes(self) -> int:
        """Bytes written so far (lets the caller enforce a size limit while the file streams in)."""
        return self._size_bytes

    def write(self, chunk: bytes) -> None:
        """Append `chunk` to the file and to its running SHA-256."""
        self._file.write(chunk)
        self._hash.update(chunk)
        self._size_bytes += len(chunk)

    def seal(self) -> None:
        """Flush and close the file once its last chunk is written, so that an upload of many files
        holds one open file at a time (1,100 files once hit a 1,024 open-file limit); `finish`
        still makes it durable."""
        if not self._file.closed:
            self._file.flush()
            self._close()

    def finish(self) -> StagedBlob:
        """Flush the file to disk (fsync), close it and return its hash, size and path.

        Durable before it is promoted: the event that names the blob is committed durably, so the
        bytes it names must be too. The file stays until promoted or discarded.
        """
        if self._file.closed:  # sealed: fsync through a fresh descriptor (held for that call only)
            _fsync_path(self.path)
        else:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._close()
        return StagedBlob(sha256=self._hash.hexdigest(), size_bytes=self._size_bytes, path=self.path)

    def discard(self) -> None:
        """Close the file (if still open) and delete it."""
        self._close()
        self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        self._file.close()
        self._on_close(self)


def _fsync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class Staging:
    """A folder of staged files, each written by one StagingWriter."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._open_writers: set[StagingWriter] = set()

    def new_file(self) -> StagingWriter:
        """A fresh, uniquely named, empty file under the root, open for writing."""
        handle, name = tempfile.mkstemp(dir=self.root, prefix="staged-", suffix=".part")
        writer = StagingWriter(Path(name), os.fdopen(handle, "wb"), on_close=self._open_writers.discard)
        self._open_writers.add(writer)
        return writer

    def remove_abandoned(self, older_than_s: float, now: float | None = None) -> int:
        """Delete staged files not touched for `older_than_s` (a crashed process's leftovers); count them.

        Safe beside live uploads of other replicas sharing the root: a file being written is touched
        by every chunk, and an upload is refused long before a day without a byte.
        """
        cutoff = (time.time() if now is None else now) - older_than_s
        removed = 0
        for entry in self.root.glob("staged-*.part"):
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
        return removed
