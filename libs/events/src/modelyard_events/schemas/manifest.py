"""The dataset version manifest: the contract between dataset-svc, which freezes it, and trainers.

A manifest lists every sample of a version (id, file name, SHA-256, size, media type, consensus label,
split) sorted by sample id. Its bytes are canonical JSON, and its SHA-256 over exactly those bytes is
the version's `manifest_sha256`; a reader refuses bytes that hash differently (`parse_manifest`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelyard_events.canonical import canonical_json
from modelyard_events.schemas.datasets import AnnotationData, LabelSchemaData, SplitName

MANIFEST_FORMAT: Final = "modelyard.dataset-manifest/1"
_VERSION_URI = re.compile(r"dataset://(?P<dataset>[A-Za-z0-9][A-Za-z0-9_-]*)/(?P<version>[1-9][0-9]{0,8})")


@dataclass(frozen=True)
class VersionUri:
    """`dataset://<dataset_id>/<version>`: one published version, by number (never "latest", so a
    job and every resume of it train on the same data). The one parser and formatter of these URIs."""

    dataset_id: str
    version: int

    def __str__(self) -> str:
        return f"dataset://{self.dataset_id}/{self.version}"

    @classmethod
    def parse(cls, uri: str) -> VersionUri:
        """The version a URI names; ValueError saying the expected form otherwise."""
        match = _VERSION_URI.fullmatch(uri)
        if match is None:
            raise ValueError(
                f"{uri!r} does not name a published version; "
                "expected dataset://<dataset_id>/<n> with 1 ≤ n ≤ 999999999"
            )
        return cls(match["dataset"], int(match["version"]))


class ManifestError(ValueError):
    """Manifest bytes that are not the manifest they claim to be (hash mismatch, bad format)."""


class ManifestSample(BaseModel):
    """One sample of a version; `label` is the reviewed consensus (None for task `none`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_id: str
    filename: str
    sha256: str
    size_bytes: int = Field(gt=0)
    media_type: str
    label: AnnotationData | None
    split: SplitName
    agreement: float = Field(ge=0, le=1)


class DatasetManifest(BaseModel):
    """Everything a trainer needs to rebuild a version's data exactly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["modelyard.dataset-manifest/1"] = MANIFEST_FORMAT
    dataset_id: str
    version: int = Field(ge=1)
    org_id: str
    name: str
    ai_module: str
    environment: str
    label_schema: LabelSchemaData
    seed: int
    train_fraction: float
    val_fraction: float
    samples: list[ManifestSample]

    def split(self, name: SplitName) -> list[ManifestSample]:
        """The samples of one split, in manifest (sample id) order."""
        return [sample for sample in self.samples if sample.split == name]


def manifest_bytes(manifest: DatasetManifest) -> bytes:
    """The canonical JSON bytes of a manifest (what is stored and hashed)."""
    return canonical_json(manifest.model_dump(mode="json")).encode()


def manifest_sha256(data: bytes) -> str:
    """Hex SHA-256 of manifest bytes."""
    return hashlib.sha256(data).hexdigest()


def parse_manifest(data: bytes, expected_sha256: str) -> DatasetManifest:
    """The manifest in `data`, after checking its SHA-256; ManifestError names what is wrong."""
    actual = manifest_sha256(data)
    if actual != expected_sha256:
        raise ManifestError(f"manifest bytes hash to {actual}, but the version records {expected_sha256}")
    try:
        return DatasetManifest.model_validate(json.loads(data))
    except ValueError as error:
        raise ManifestError(f"the manifest is not a {MANIFEST_FORMAT} document: {error}") from None
