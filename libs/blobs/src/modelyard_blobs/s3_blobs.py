"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW …): key `<prefix>/<ab>/<sha256>`.

boto3 is synchronous, so every call runs in a worker thread. Promotion uploads with
`upload_file` (multipart for big files) only when the key is not there yet: content addressing
makes a second upload of the same bytes pointless. S3 writes are atomic per object, so a reader
never sees a half-written blob. `put_file` hashes the file before it uploads it, so no object ever
holds bytes other than its key's SHA-256. Range reads are ranged GETs after a HEAD for the size.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from modelyard_blobs.blobs import (
    DEFAULT_CHUNK_BYTES,
    blob_not_found,
    checked_chunk_bytes,
    checked_range,
    checked_sha256,
    copy_verified,
)
from modelyard_blobs.staging import StagedBlob

_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


class S3BlobStore:
    """A BlobStore over one bucket and key prefix; `client` is a boto3 S3 client (thread-safe)."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client

    def describe(self) -> str:
        """ "s3://bucket/prefix at <endpoint>"."""
        return f"s3://{self.bucket}/{self.prefix} at {self._client.meta.endpoint_url}"

    def key_of(self, sha256: str) -> str:
        """The object key of the blob with this SHA-256."""
        sha256 = checked_sha256(sha256)
        return f"{self.prefix}/{sha256[:2]}/{sha256}" if self.prefix else f"{sha256[:2]}/{sha256}"

    def local_path(self, sha256: str) -> None:
        """None: S3 blobs are no local files (the sha256 is still checked)."""
        checked_sha256(sha256)
        return None

    async def exists(self, sha256: str) -> bool:
        """Whether the object is there (one HEAD request)."""
        return await asyncio.to_thread(self._exists, self.key_of(sha256))

    async def size(self, sha256: str) -> int:
        """The object's size in bytes (one HEAD request); NotFound when absent."""
        size_bytes = await asyncio.to_thread(self._stored_size, self.key_of(sha256))
        if size_bytes is None:
            raise blob_not_found(sha256, self.describe())
        return size_bytes

    async def promote(self, staged: StagedBlob) -> None:
        """Upload the staged file unless its key exists, then delete the staged file."""
        key = self.key_of(staged.sha256)
        await asyncio.to_thread(self._promote, staged, key)

    async def promote_all(self, staged: Sequence[StagedBlob]) -> None:
        """Promote many staged files from one worker thread (one request pair per file)."""
        keyed = [(blob, self.key_of(blob.sha256)) for blob in staged]
        await asyncio.to_thread(self._promote_each, keyed)

    def _promote_each(self, keyed: list[tuple[StagedBlob, str]]) -> None:
        for blob, key in keyed:
            self._promote(blob, key)

    async def put_bytes(self, data: bytes) -> str:
        """Put `data` under its SHA-256 unless already stored; return the SHA-256."""
        sha256 = hashlib.sha256(data).hexdigest()
        key = self.key_of(sha256)
        if not await asyncio.to_thread(self._exists, key):
            await asyncio.to_thread(self._client.put_object, Bucket=self.bucket, Key=key, Body=data)
        return sha256

    async def put_file(self, path: Path, expected_sha256: str, *, max_bytes: int | None = None) -> int:
        """Hash `path`, then upload it under `expected_sha256` unless that key exists; its size.
        See BlobStore.put_file for the errors."""
        key = self.key_of(expected_sha256)
        return await asyncio.to_thread(self._put_file, path, expected_sha256, key, max_bytes)

    def _put_file(self, path: Path, sha256: str, key: str, max_bytes: int | None) -> int:
        stored = self._stored_size(key)
        if stored is not None:
            return stored
        size_bytes = copy_verified(path, None, sha256, max_bytes)
        self._client.upload_file(str(path), self.bucket, key)
        return size_bytes

    async def read(self, sha256: str) -> bytes:
        """The whole object; NotFound when absent."""
        body = await self._open(sha256)
        try:
            return await asyncio.to_thread(body.read)
        finally:
            body.close()

    async def delete(self, sha256: str) -> None:
        """Delete the object (S3 answers success for an absent key too)."""
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=self.key_of(sha256))

    async def chunks(
        self,
        sha256: str,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        *,
        start: int = 0,
        end: int | None = None,
    ) -> AsyncIterator[bytes]:
        """Bytes [start, end) of the object streamed in pieces of at most `chunk_bytes`."""
        checked_chunk_bytes(chunk_bytes)
        byte_range = None
        if start or end is not None:  # the whole object needs no HEAD first
            first, stop = checked_range(start, end, await self.size(sha256))
            if first == stop:
                return
            byte_range = f"bytes={first}-{stop - 1}"  # HTTP ranges are inclusive
        body = await self._open(sha256, byte_range)
        try:
            pieces: Iterator[bytes] = body.iter_chunks(chunk_bytes)
            while chunk := await asyncio.to_thread(next, pieces, b""):
                yield chunk
        finally:
            body.close()

    async def _open(self, sha256: str, byte_range: str | None = None) -> Any:
        key = self.key_of(sha256)
        ranged = {"Range": byte_range} if byte_range else {}
        try:
            response = await asyncio.to_thread(self._client.get_object, Bucket=self.bucket, Key=key, **ranged)
        except ClientError as error:
            if _is_missing(error):
                raise blob_not_found(sha256, self.describe()) from None
            raise
        return response["Body"]

    def _exists(self, key: str) -> bool:
        return self._stored_size(key) is not None

    def _stored_size(self, key: str) -> int | None:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _is_missing(error):
                return None
            raise
        return int(head["ContentLength"])

    def _promote(self, staged: StagedBlob, key: str) -> None:
        if not self._exists(key):
            self._client.upload_file(str(staged.path), self.bucket, key)
        staged.path.unlink(missing_ok=True)


def _is_missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _MISSING_CODES
