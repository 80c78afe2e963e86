"""Blob store contract, run against the local folder store and a real S3-compatible HTTP server."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from modelyard_blobs import (
    BlobStore,
    LocalFolderBlobStore,
    S3BlobStore,
    StagedBlob,
    Staging,
)
from modelyard_events.domain_errors import InvalidArgument, NotFound

BUCKET = "modelyard-test"  # made by conftest's s3_client
ABSENT = hashlib.sha256(b"never stored").hexdigest()


def stage(staging: Staging, *chunks: bytes) -> StagedBlob:
    writer = staging.new_file()
    for chunk in chunks:
        writer.write(chunk)
    return writer.finish()


async def collect(store: BlobStore, sha256: str, chunk_bytes: int) -> list[bytes]:
    return [chunk async for chunk in store.chunks(sha256, chunk_bytes)]


class BlobStoreContract:
    """Every BlobStore obeys these; a subclass provides the `store` fixture."""

    @pytest.fixture
    def staging(self, tmp_path: Path) -> Staging:
        return Staging(tmp_path / "staging")

    async def test_promoted_blob_exists_and_reads_back(self, store: BlobStore, staging: Staging) -> None:
        staged = stage(staging, b"hello ", b"blobs")

        await store.promote(staged)

        assert staged.sha256 == hashlib.sha256(b"hello blobs").hexdigest()
        assert await store.exists(staged.sha256)
        assert await store.read(staged.sha256) == b"hello blobs"

    async def test_promote_consumes_the_staged_file(self, store: BlobStore, staging: Staging) -> None:
        staged = stage(staging, b"consumed")

        await store.promote(staged)

        assert not staged.path.exists()

    async def test_promote_all_stores_each_once_and_consumes_the_staged_files(
        self, store: BlobStore, staging: Staging
    ) -> None:
        staged = [stage(staging, b"first"), stage(staging, b"second"), stage(staging, b"first")]

        await store.promote_all(staged)

        assert [await store.read(s.sha256) for s in staged] == [b"first", b"second", b"first"]
        assert not any(s.path.exists() for s in staged)

    async def test_chunks_stream_the_blob_in_pieces(self, store: BlobStore, staging: Staging) -> None:
        data = bytes(range(256)) * 40
        staged = stage(staging, data)
        await store.promote(staged)

        pieces = await collect(store, staged.sha256, 1000)

        assert b"".join(pieces) == data
        assert max(len(piece) for piece in pieces) <= 1000
        assert len(pieces) >= 11

    async def test_promoting_the_same_content_twice_keeps_one_blob(
        self, store: BlobStore, staging: Staging
    ) -> None:
        first = stage(staging, b"same bytes")
        second = stage(staging, b"same ", b"bytes")
        await store.promote(first)

        await store.promote(second)

        assert not second.path.exists()
        assert await store.read(first.sha256) == b"same bytes"

    async def test_put_bytes_returns_the_sha256_of_the_bytes(self, store: BlobStore) -> None:
        manifest = b'{"format":"modelyard.dataset-manifest/1"}'

        sha256 = await store.put_bytes(manifest)

        assert sha256 == hashlib.sha256(manifest).hexdigest()
        assert await store.read(sha256) == manifest
        assert await store.put_bytes(manifest) == sha256

    async def test_a_missing_blob_is_not_found(self, store: BlobStore) -> None:
        assert not await store.exists(ABSENT)
        with pytest.raises(NotFound, match=ABSENT):
            await store.read(ABSENT)
        with pytest.raises(NotFound, match=ABSENT):
            await collect(store, ABSENT, 1024)

    @pytest.mark.parametrize(
        "bad_sha256",
        ["", "../../etc/passwd", ABSENT.upper(), ABSENT[:-1], ABSENT + "0", "g" * 64, "ab/" + ABSENT[3:]],
    )
    async def test_a_malformed_sha256_is_refused_before_any_lookup(
        self, store: BlobStore, bad_sha256: str
    ) -> None:
        with pytest.raises(InvalidArgument) as refused:
            await store.exists(bad_sha256)
        assert refused.value.field == "sha256"
        with pytest.raises(InvalidArgument):
            await store.read(bad_sha256)
        with pytest.raises(InvalidArgument):
            await collect(store, bad_sha256, 1024)

    async def test_a_staged_blob_with_a_malformed_sha256_is_not_promoted(
        self, store: BlobStore, staging: Staging
    ) -> None:
        staged = stage(staging, b"x")
        forged = StagedBlob(sha256="../" + staged.sha256[3:], size_bytes=1, path=staged.path)

        with pytest.raises(InvalidArgument):
            await store.promote(forged)

    def test_describe_says_where_the_blobs_are(self, store: BlobStore) -> None:
        assert self.expected_location in store.describe()

    expected_location = ""


class TestLocalFolderBlobStore(BlobStoreContract):
    expected_location = "local folder"

    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalFolderBlobStore:
        return LocalFolderBlobStore(tmp_path / "blobs")

    async def test_blobs_are_laid_out_by_their_first_hex_digits(
        self, store: LocalFolderBlobStore, staging: Staging
    ) -> None:
        staged = stage(staging, b"layout")

        await store.promote(staged)

        sha = staged.sha256
        assert (store.root / sha[:2] / sha).read_bytes() == b"layout"

    async def test_promotion_across_filesystems_copies_then_renames(
        self, store: LocalFolderBlobStore, staging: Staging, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        staged = stage(staging, b"far away")
        real_replace = os.replace

        def replace_refusing_staging(source: Any, target: Any) -> None:
            if Path(source) == staged.path:
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            real_replace(source, target)

        monkeypatch.setattr("modelyard_blobs.local_blobs.os.replace", replace_refusing_staging)

        await store.promote(staged)

        assert await store.read(staged.sha256) == b"far away"
        assert not staged.path.exists()
        assert [p.name for p in store.path_of(staged.sha256).parent.iterdir()] == [staged.sha256]


class TestS3BlobStore(BlobStoreContract):
    expected_location = f"s3://{BUCKET}/"

    @pytest.fixture
    def store(self, s3_client: Any, request: pytest.FixtureRequest) -> S3BlobStore:
        # One prefix per test keeps tests independent on the shared server.
        return S3BlobStore(BUCKET, f"tests/{request.node.name}", s3_client)

    async def test_blobs_are_keyed_under_the_prefix(
        self, store: S3BlobStore, staging: Staging, s3_client: Any
    ) -> None:
        staged = stage(staging, b"keyed")

        await store.promote(staged)

        key = f"{store.prefix}/{staged.sha256[:2]}/{staged.sha256}"
        assert s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"keyed"


class TestDurability:
    async def test_a_promoted_blob_is_synced_to_disk_with_its_new_folders(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        synced: list[str] = []
        real_fsync = os.fsync

        def recording_fsync(fd: int) -> None:
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", recording_fsync)
        store = LocalFolderBlobStore(tmp_path / "blobs")
        staged = stage(Staging(tmp_path / "staging"), b"durable")
        await store.promote_all([staged])
        target = store.path_of(staged.sha256)
        assert str(staged.path) in synced  # the bytes, before the rename
        assert str(target.parent) in synced  # the rename
        assert str(target.parent.parent) in synced  # the new prefix folder
