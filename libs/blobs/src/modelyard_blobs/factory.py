"""Choosing the blob store from settings (the service's env settings mirror these fields).

S3 credentials are never settings here: boto3 reads its standard chain (AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance or pod roles …), like every other S3 tool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import boto3
from botocore.config import Config
from pydantic import BaseModel, ConfigDict

from modelyard_blobs.blobs import BlobStore
from modelyard_blobs.local_blobs import LocalFolderBlobStore
from modelyard_blobs.s3_blobs import S3BlobStore


class BlobSettings(BaseModel):
    """Where blobs go: MODELYARD_BLOB_STORE, MODELYARD_BLOB_ROOT and MODELYARD_S3_* in the service."""

    model_config = ConfigDict(frozen=True)

    blob_store: Literal["local", "s3"] = "local"
    blob_root: Path = Path(".modelyard/blobs")
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_prefix: str = "modelyard/blobs"
    s3_region: str | None = None


class BlobStoreChoice(BaseModel):
    """The blob-store fields a service's settings mix in (MODELYARD_BLOB_STORE, MODELYARD_BLOB_ROOT,
    MODELYARD_S3_*); a service may override a default (its own root or prefix)."""

    blob_store: Literal["local", "s3"] = "local"
    blob_root: Path = Path(".modelyard/blobs")
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_prefix: str = "modelyard/blobs"
    s3_region: str | None = None

    def blob_settings(self) -> BlobSettings:
        """The blob store's part of the settings."""
        return BlobSettings(**{name: getattr(self, name) for name in BlobSettings.model_fields})


def open_blob_store(settings: BlobSettings) -> BlobStore:
    """The configured store; ValueError naming the missing setting when S3 has no bucket."""
    if settings.blob_store == "local":
        return LocalFolderBlobStore(settings.blob_root)
    if not settings.s3_bucket:
        raise ValueError(
            "blob store 's3' needs a bucket: set MODELYARD_S3_BUCKET "
            "(or MODELYARD_BLOB_STORE=local to keep blobs in MODELYARD_BLOB_ROOT)"
        )
    return S3BlobStore(settings.s3_bucket, settings.s3_prefix, _s3_client(settings))


def _s3_client(settings: BlobSettings) -> object:
    # Path-style addressing when an endpoint is given: MinIO and Ceph RGW rarely have the
    # per-bucket DNS names that virtual-hosted style needs.
    addressing = "path" if settings.s3_endpoint_url else "auto"
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        config=Config(s3={"addressing_style": addressing}),
    )
