"""The content-addressed blob store (a local folder or an S3-compatible bucket) and upload staging.

One store serves every service that keeps files by their SHA-256: dataset-svc's samples and
manifests, registry-svc's model artifacts.
"""

from modelyard_blobs.blobs import DEFAULT_CHUNK_BYTES, BlobIntegrityError, BlobStore, checked_sha256
from modelyard_blobs.factory import BlobSettings, BlobStoreChoice, open_blob_store
from modelyard_blobs.local_blobs import LocalFolderBlobStore
from modelyard_blobs.s3_blobs import S3BlobStore
from modelyard_blobs.staging import StagedBlob, Staging, StagingWriter

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "BlobIntegrityError",
    "BlobSettings",
    "BlobStore",
    "BlobStoreChoice",
    "LocalFolderBlobStore",
    "S3BlobStore",
    "StagedBlob",
    "Staging",
    "StagingWriter",
    "checked_sha256",
    "open_blob_store",
]
