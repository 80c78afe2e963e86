"""The blob store port: sample files and manifests stored by the SHA-256 of their bytes.

Content addressing makes every write idempotent (the same bytes always land under the same name)
and lets readers verify what they get. Every adapter validates a `sha256` argument (64 lowercase
hex digits) before it builds a path or key from it, so no caller can reach outside the store.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from modelyard_dataset.storage.staging import StagedBlob
from modelyard_events.domain_errors import InvalidArgument, NotFound

DEFAULT_CHUNK_BYTES = 1 << 20

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def checked_sha256(sha256: str) -> str:
    """`sha256` itself when it is 64 lowercase hex digits; InvalidArgument otherwise."""
    if not _SHA256_HEX.fullmatch(sha256):
        raise InvalidArgument(
            "sha256", f"{sha256[:80]!r} is not a SHA-256; send 64 lowercase hexadecimal digits"
        )
    return sha256


def blob_not_found(sha256: str, where: str) -> NotFound:
    """The NotFound every adapter raises for a missing blob."""
    return NotFound(f"no blob with sha256 {sha256} in {where}; upload the file first")


class BlobStore(Protocol):
    """Where blobs live; every method refuses a malformed sha256 with InvalidArgument."""

    async def exists(self, sha256: str) -> bool:
        """Whether a blob with this SHA-256 is stored."""
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

    async def read(self, sha256: str) -> bytes:
        """The whole blob; NotFound when it is not stored."""
        ...

    def chunks(self, sha256: str, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> AsyncIterator[bytes]:
        """The blob in pieces of at most `chunk_bytes`; NotFound (on first iteration) when absent."""
        ...

    def describe(self) -> str:
        """Where the blobs are, for logs (e.g. "local folder /x")."""
        ...
