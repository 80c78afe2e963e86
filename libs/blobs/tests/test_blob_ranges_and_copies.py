"""Sizes, range reads and verified file copies: one contract for the local folder store and S3."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from modelyard_blobs import BlobIntegrityError, BlobStore, LocalFolderBlobStore, S3BlobStore
from modelyard_events.domain_errors import InvalidArgument, NotFound

BUCKET = "modelyard-test"  # made by conftest's s3_client
ABSENT = hashlib.sha256(b"never stored").hexdigest()
DATA = bytes(range(256)) * 10  # 2,560 bytes


async def collect(store: BlobStore, sha256: str, start: int = 0, end: int | None = None) -> list[bytes]:
    return [chunk async for chunk in store.chunks(sha256, 100, start=start, end=end)]


def file_of(tmp_path: Path, data: bytes, name: str = "artifact.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


class BlobReadAndCopyContract:
    """Every BlobStore obeys these; a subclass provides the `store` fixture."""

    async def test_size_is_the_stored_byte_count(self, store: BlobStore) -> None:
        sha256 = await store.put_bytes(DATA)

        assert await store.size(sha256) == len(DATA)

    async def test_size_of_a_missing_blob_is_not_found(self, store: BlobStore) -> None:
        with pytest.raises(NotFound, match=ABSENT):
            await store.size(ABSENT)

    async def test_size_refuses_a_malformed_sha256(self, store: BlobStore) -> None:
        with pytest.raises(InvalidArgument):
            await store.size("../" + ABSENT[3:])

    @pytest.mark.parametrize(
        ("start", "end"),
        [(0, None), (10, None), (0, 10), (1000, 2500), (99, 101), (2559, None), (2560, None), (7, 7)],
    )
    async def test_a_range_yields_the_bytes_from_start_up_to_end(
        self, store: BlobStore, start: int, end: int | None
    ) -> None:
        sha256 = await store.put_bytes(DATA)

        pieces = await collect(store, sha256, start, end)

        assert b"".join(pieces) == DATA[start:end]
        assert all(0 < len(piece) <= 100 for piece in pieces)

    @pytest.mark.parametrize(
        ("start", "end", "field"),
        [(-1, None, "start"), (10, 5, "end"), (0, 2561, "end"), (2561, None, "start"), (-5, 3, "start")],
    )
    async def test_a_range_outside_the_blob_or_reversed_is_refused(
        self, store: BlobStore, start: int, end: int | None, field: str
    ) -> None:
        sha256 = await store.put_bytes(DATA)

        with pytest.raises(InvalidArgument) as refused:
            await collect(store, sha256, start, end)

        assert refused.value.field == field

    async def test_a_range_of_a_missing_blob_is_not_found(self, store: BlobStore) -> None:
        with pytest.raises(NotFound, match=ABSENT):
            await collect(store, ABSENT, 5, 10)

    async def test_put_file_stores_the_file_under_its_sha256_and_returns_its_size(
        self, store: BlobStore, tmp_path: Path
    ) -> None:
        data = os.urandom(3 * (1 << 20) + 17)  # several of the copy's chunks
        source = file_of(tmp_path, data)
        sha256 = hashlib.sha256(data).hexdigest()

        size_bytes = await store.put_file(source, sha256)

        assert size_bytes == len(data)
        assert await store.read(sha256) == data
        assert source.read_bytes() == data  # copied, not moved

    async def test_put_file_with_another_hash_is_refused_naming_both_and_stores_nothing(
        self, store: BlobStore, tmp_path: Path
    ) -> None:
        source = file_of(tmp_path, b"tampered weights")
        actual = hashlib.sha256(b"tampered weights").hexdigest()
        expected = hashlib.sha256(b"the published weights").hexdigest()

        with pytest.raises(BlobIntegrityError, match=f"{actual}.*{expected}"):
            await store.put_file(source, expected)

        assert not await store.exists(expected)
        assert not await store.exists(actual)

    async def test_put_file_over_max_bytes_is_refused_and_stores_nothing(
        self, store: BlobStore, tmp_path: Path
    ) -> None:
        sha256 = hashlib.sha256(DATA).hexdigest()

        with pytest.raises(InvalidArgument, match="2559 bytes") as refused:
            await store.put_file(file_of(tmp_path, DATA), sha256, max_bytes=len(DATA) - 1)

        assert refused.value.field == "size_bytes"
        assert not await store.exists(sha256)

    async def test_put_file_of_exactly_max_bytes_is_stored(self, store: BlobStore, tmp_path: Path) -> None:
        sha256 = hashlib.sha256(DATA).hexdigest()

        assert await store.put_file(file_of(tmp_path, DATA), sha256, max_bytes=len(DATA)) == len(DATA)
        assert await store.read(sha256) == DATA

    async def test_put_file_of_a_stored_blob_returns_its_size_without_reading_the_file(
        self, store: BlobStore, tmp_path: Path
    ) -> None:
        sha256 = await store.put_bytes(DATA)

        assert await store.put_file(tmp_path / "gone.bin", sha256) == len(DATA)

    async def test_put_file_refuses_a_malformed_sha256_before_reading(
        self, store: BlobStore, tmp_path: Path
    ) -> None:
        with pytest.raises(InvalidArgument) as refused:
            await store.put_file(file_of(tmp_path, DATA), "../" + ABSENT[3:])

        assert refused.value.field == "sha256"


class TestLocalFolderBlobStore(BlobReadAndCopyContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalFolderBlobStore:
        return LocalFolderBlobStore(tmp_path / "blobs")

    async def test_local_path_is_the_blobs_file(self, store: LocalFolderBlobStore) -> None:
        sha256 = await store.put_bytes(DATA)

        path = store.local_path(sha256)

        assert path is not None
        assert path.read_bytes() == DATA

    def test_local_path_refuses_a_malformed_sha256(self, store: LocalFolderBlobStore) -> None:
        with pytest.raises(InvalidArgument):
            store.local_path("../" + ABSENT[3:])

    async def test_a_refused_put_file_leaves_no_file_in_the_store(
        self, store: LocalFolderBlobStore, tmp_path: Path
    ) -> None:
        source = file_of(tmp_path, DATA)
        sha256 = hashlib.sha256(DATA).hexdigest()

        with pytest.raises(InvalidArgument):
            await store.put_file(source, sha256, max_bytes=100)
        with pytest.raises(BlobIntegrityError):
            await store.put_file(source, ABSENT)

        assert [path for path in store.root.rglob("*") if not path.is_dir()] == []

    async def test_put_file_syncs_the_copy_and_its_folder(
        self, store: LocalFolderBlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        synced: list[str] = []
        real_fsync = os.fsync

        def recording_fsync(fd: int) -> None:
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", recording_fsync)
        sha256 = hashlib.sha256(DATA).hexdigest()
        await store.put_file(file_of(tmp_path, DATA), sha256)
        target = store.path_of(sha256)
        copies = [path for path in synced if Path(path).parent == target.parent and path.endswith(".tmp")]
        assert copies  # the bytes, under a temporary name, before the rename
        assert synced.index(str(target.parent)) > synced.index(copies[0])  # then the rename

    async def test_put_file_streams_instead_of_reading_the_whole_file(
        self, store: LocalFolderBlobStore, tmp_path: Path
    ) -> None:
        data = os.urandom(16 * (1 << 20))
        source = file_of(tmp_path, data)
        sha256 = hashlib.sha256(data).hexdigest()
        del data
        tracemalloc.start()
        try:
            await store.put_file(source, sha256)
            _, peak_bytes = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak_bytes < 4 * (1 << 20)


class TestS3BlobStore(BlobReadAndCopyContract):
    @pytest.fixture
    def store(self, s3_client: Any, request: pytest.FixtureRequest) -> S3BlobStore:
        # One prefix per test keeps tests independent on the shared server.
        return S3BlobStore(BUCKET, f"tests/{request.node.name}", s3_client)

    def test_an_s3_blob_has_no_local_path(self, store: S3BlobStore) -> None:
        assert store.local_path(ABSENT) is None

    async def test_put_file_uploads_under_the_prefixed_key(
        self, store: S3BlobStore, tmp_path: Path, s3_client: Any
    ) -> None:
        sha256 = hashlib.sha256(DATA).hexdigest()

        await store.put_file(file_of(tmp_path, DATA), sha256)

        key = f"{store.prefix}/{sha256[:2]}/{sha256}"
        assert s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == DATA
