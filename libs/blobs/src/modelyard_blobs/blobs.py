"""The blob store port: files stored by the SHA-256 of their bytes (samples, manifests, model artifacts).

Content addressing makes every write idempotent (the same bytes always land under the same name)
and lets readers verify what they get. Every adapter validates a `sha256` argument (64 lowercase
hex digits) before it builds a path or key from it, so no caller can reach outside the store.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from modelyard_blobs.staging import StagedBlob
from modelyard_events.domain_errors import InvalidArgument, NotFound

DEFAULT_CHUNK_BYTES = 1 << 20

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class BlobIntegrityError(ValueError):
    """A file's bytes do not hash to the SHA-256 it was to be stored under; nothing was stored."""

    def __init__(self, source: Path, expected_sha256: str, actual_sha256: str) -> None:
        super().__init__(
            f"{source} has SHA-256 {actual_sha256}, not the expected {expected_sha256}; nothing was stored"
        )
        self.expected_sha256 = expected_sha256
        self.actual_sha256 = actual_sha256


def checked_sha256(sha256: str) -> str:
    """`sha256` itself when it is 64 lowercase hex digits; InvalidArgument otherwise."""
    if not _SHA256_HEX.fullmatch(sha256):
        raise InvalidArgument(
            "sha256", f"{sha256[:80]!r} is not a SHA-256; send 64 lowercase hexadecimal digits"
        )
    return sha256


def checked_range(start: int, end: int | None, size_bytes: int) -> tuple[int, int]:
    """The byte range [start, end) of a blob of `size_bytes` (end None: to the end); InvalidArgument
    when it does not satisfy 0 <= start <= end <= size_bytes."""
    if start < 0:
        raise InvalidArgument("start", f"{start} is negative; a range starts at byte 0 or later")
    if start > size_bytes:
        raise InvalidArgument("start", f"{start} is past the blob's end ({size_bytes} bytes)")
    if end is None:
        return start, size_bytes
    if end < start:
        raise InvalidArgument("end", f"{end} is before start {start}; the end is exclusive and >= start")
    if end > size_bytes:
        raise InvalidArgument("end", f"{end} is past the blob's end ({size_bytes} bytes)")
    return start, end


def checked_chunk_bytes(chunk_bytes: int) -> int:
    """`chunk_bytes` itself when positive; ValueError otherwise (a programming error, not a request's)."""
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    return chunk_bytes


def blob_not_found(sha256: str, where: str) -> NotFound:
    """The NotFound every adapter raises for a missing blob."""
    return NotFound(f"no blob with sha256 {sha256} in {where}; upload the file first")


def copy_verified(source: Path, sink: BinaryIO | None, expected_sha256: str, max_bytes: int | None) -> int:
    """Stream `source` into `sink` (or only hash it when None) and return its size in bytes.

    Reads DEFAULT_CHUNK_BYTES at a time, never the whole file. InvalidArgument (field size_bytes) as
    soon as more than `max_bytes` were read; BlobIntegrityError when the bytes hash to anything but
    `expected_sha256`. On either error the sink holds a partial or wrong copy: the caller discards it.
    """
    digest, size_bytes = hashlib.sha256(), 0
    with source.open("rb") as file:
        while chunk := file.read(DEFAULT_CHUNK_BYTES):
            size_bytes += len(chunk)
            if max_bytes is not None and size_bytes > max_bytes:
                raise InvalidArgument("size_bytes", f"{source} is over the limit of {max_bytes} bytes")
            digest.update(chunk)
            if sink is not None:
                sink.write(chunk)
    if digest.hexdigest() != expected_sha256:
        raise BlobIntegrityError(source, expected_sha256, digest.hexdigest())
    return size_bytes


class BlobStore(Protocol):
    """Where blobs live; every method refuses a malformed sha256 with InvalidArgument."""

    async def exists(self, sha256: str) -> bool:
        """Whether a blob with this SHA-256 is stored."""
        ...

    async def size(self, sha256: str) -> int:
        """The blob's size in bytes; NotFound when it is not stored."""
        ...

    async def promote(self, staged: StagedBlob) -> None:
        """Store a staged file under its SHA-256 and consume it (moved or deleted).

        Idempotent: when the blob is already stored, the staged file is just deleted.
        """
        ...

    async def promote_all(self, staged: Sequence[StagedBlob]) -> None:
        """`promote` each, in one worker-thread hop (an upload of thousands of small files)."""
        ...

    async def put_bytes(self, data: bytes) -> str:
        """Store small bytes (a manifest) and return their SHA-256; idempotent."""
        ...

    async def put_file(self, path: Path, expected_sha256: str, *, max_bytes: int | None = None) -> int:
        """Copy the file at `path` into the store under `expected_sha256`, hashing it on the way;
        return its size in bytes. The source is left as it is and must not change during the call.

        Streams (never holds the file in memory) and stores nothing on failure: BlobIntegrityError
        when the bytes hash to another SHA-256, InvalidArgument when the file has more than
        `max_bytes`. Idempotent: when the blob is already stored, returns its size without reading
        `path`.
        """
        ...

    async def read(self, sha256: str) -> bytes:
        """The whole blob; NotFound when it is not stored."""
        ...

    def chunks(
        self,
        sha256: str,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        *,
        start: int = 0,
        end: int | None = None,
    ) -> AsyncIterator[bytes]:
        """Bytes [start, end) of the blob (end None: to its end) in pieces of at most `chunk_bytes`.

        On first iteration: NotFound when the blob is absent, InvalidArgument unless
        0 <= start <= end <= size (an empty range yields nothing).
        """
        ...

    async def delete(self, sha256: str) -> None:
        """Remove the blob; nothing when it is absent (idempotent). The caller knows nothing names it."""
        ...

    def local_path(self, sha256: str) -> Path | None:
        """Where the blob's file would be when this store keeps blobs as local files (so an HTTP
        server can sendfile it), None when it does not (S3). Does no I/O: the file may be absent."""
        ...

    def describe(self) -> str:
        """Where the blobs are, for logs (e.g. "local folder /x")."""
        ...
