"""dataset-svc storage: staging of uploaded files and the content-addressed blob store."""

from modelyard_dataset.storage.blobs import BlobStore, checked_sha256
from modelyard_dataset.storage.factory import BlobSettings, open_blob_store
from modelyard_dataset.storage.local_blobs import LocalFolderBlobStore
from modelyard_dataset.storage.s3_blobs import S3BlobStore
from modelyard_dataset.storage.staging import StagedBlob, Staging, StagingWriter

__all__ = [
    "BlobSettings",
    "BlobStore",
    "LocalFolderBlobStore",
    "S3BlobStore",
    "StagedBlob",
    "Staging",
    "StagingWriter",
    "checked_sha256",
    "open_blob_store",
]
