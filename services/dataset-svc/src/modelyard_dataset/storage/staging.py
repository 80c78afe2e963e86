"""Staging: where an upload's files are written (and hashed) before the upload is accepted.

The upload handler streams each file's chunks into a `StagingWriter`; the SHA-256 and the byte
count grow with every chunk, so nothing is read twice. Only when the whole upload call is accepted
are the `StagedBlob`s promoted into the blob store; an upload area deletes whatever is left in it
when the upload ends, so an interrupted or refused upload leaves nothing behind.

Keep the staging root on the same filesystem as a local blob store's root: promotion is then one
atomic rename (the store falls back to copy + rename across filesystems, which is slower).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

    def finish(self) -> StagedBlob:
        """Flush the file to disk (fsync), close it and return its hash, size and path.

        Durable before it is promoted: the event that names the blob is committed durably, so the
        bytes it names must be too. The file stays until promoted or discarded.
        """
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


class Staging:
    """A folder of staged files; `upload_area()` gives each upload its own folder, removed when it ends."""

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

    @contextmanager
    def upload_area(self) -> Iterator[Staging]:
        """A private staging folder for one upload; everything still in it is deleted on exit.

        Promoted files have already been moved out by then, so only the leftovers of a refused or
        interrupted upload (or of one whose files were already stored) are removed, and writers
        left open are closed first.
        """
        area = Staging(Path(tempfile.mkdtemp(dir=self.root, prefix="upload-")))
        try:
            yield area
        finally:
            area.discard_all()
            shutil.rmtree(area.root, ignore_errors=True)

    def discard_all(self) -> None:
        """Close this staging's open writers and delete everything under the root.

        Meant for an upload area's end, or for start-up (the leftovers of a crash) when no other
        process shares the root.
        """
        for writer in list(self._open_writers):
            writer.discard()
        entries = list(self.root.iterdir()) if self.root.is_dir() else []
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
