"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW …): key `<prefix>/<ab>/<sha256>`.

boto3 is synchronous, so every call runs in a worker thread. Promotion uploads with
`upload_file` (multipart for big files) only when the key is not there yet: content addressing
makes a second upload of the same bytes pointless. S3 writes are atomic per object, so a reader
never sees a half-written blob.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError

from modelyard_dataset.storage.blobs import DEFAULT_CHUNK_BYTES, blob_not_found, checked_sha256
from modelyard_dataset.storage.staging import StagedBlob

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

    async def exists(self, sha256: str) -> bool:
        """Whether the object is there (one HEAD request)."""
        return await asyncio.to_thread(self._exists, self.key_of(sha256))

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

    async def read(self, sha256: str) -> bytes:
        """The whole object; NotFound when absent."""
        body = await self._open(sha256)
        try:
            return await asyncio.to_thread(body.read)
        finally:
            body.close()

    async def chunks(self, sha256: str, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> AsyncIterator[bytes]:
        """The object streamed in pieces of at most `chunk_bytes`."""
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        body = await self._open(sha256)
        try:
            pieces: Iterator[bytes] = body.iter_chunks(chunk_bytes)
            while chunk := await asyncio.to_thread(next, pieces, b""):
                yield chunk
        finally:
            body.close()

    async def _open(self, sha256: str) -> Any:
        key = self.key_of(sha256)
        try:
            response = await asyncio.to_thread(self._client.get_object, Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _is_missing(error):
                raise blob_not_found(sha256, self.describe()) from None
            raise
        return response["Body"]

    def _exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _is_missing(error):
                return False
            raise
        return True

    def _promote(self, staged: StagedBlob, key: str) -> None:
        if not self._exists(key):
            self._client.upload_file(str(staged.path), self.bucket, key)
        staged.path.unlink(missing_ok=True)


def _is_missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _MISSING_CODES
