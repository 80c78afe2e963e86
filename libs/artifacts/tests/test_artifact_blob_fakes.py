"""The test blob stores obey the contract the download endpoint relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard_artifacts.testing import CONTRACT_BLOB, ArtifactBlobsContract, FolderBlobs, MemoryBlobs


class TestMemoryBlobs(ArtifactBlobsContract):
    @pytest.fixture
    def blobs(self) -> MemoryBlobs:
        store = MemoryBlobs()
        store.put(CONTRACT_BLOB)
        return store


class TestFolderBlobs(ArtifactBlobsContract):
    @pytest.fixture
    def blobs(self, tmp_path: Path) -> FolderBlobs:
        store = FolderBlobs(tmp_path / "blobs")
        store.put(CONTRACT_BLOB)
        return store
