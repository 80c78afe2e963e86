"""Choosing the blob store from settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard_blobs import BlobSettings, LocalFolderBlobStore, S3BlobStore, open_blob_store


def test_local_is_the_default_store(tmp_path: Path) -> None:
    store = open_blob_store(BlobSettings(blob_root=tmp_path / "blobs"))

    assert isinstance(store, LocalFolderBlobStore)
    assert store.describe() == f"local folder {tmp_path / 'blobs'}"


def test_s3_store_uses_the_endpoint_bucket_and_prefix() -> None:
    settings = BlobSettings(
        blob_store="s3",
        s3_endpoint_url="http://minio.internal:9000",
        s3_bucket="yard",
        s3_prefix="/blobs/",
        s3_region="eu-west-1",
    )

    store = open_blob_store(settings)

    assert isinstance(store, S3BlobStore)
    assert store.describe() == "s3://yard/blobs at http://minio.internal:9000"


def test_s3_without_a_bucket_is_refused_with_the_setting_to_set() -> None:
    with pytest.raises(ValueError, match="MODELYARD_S3_BUCKET"):
        open_blob_store(BlobSettings(blob_store="s3"))
