"""Builders of the dataset-version tests: manifests, hand-made materialized versions, sample files.

A materialized version is written here by hand, in the documented cache layout
(`blobs/ab/<sha256>`, `versions/<dataset_id>/<version>/manifest.json` + `manifest.sha256`), so the
training side is tested without the fetcher, and the fetcher's output can be compared with it.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from modelyard_events.schemas.datasets import AnnotationData, LabelSchemaData, LabelTask, SplitName
from modelyard_events.schemas.manifest import DatasetManifest, ManifestSample, manifest_bytes

MEDIA_TYPES = {".png": "image/png", ".csv": "text/csv", ".jsonl": "application/x-ndjson"}


@dataclass(frozen=True)
class SampleFile:
    """One uploaded file of a version: its bytes, split and (classification) label."""

    filename: str
    data: bytes
    split: SplitName
    class_name: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def sample_id(self) -> str:
        return f"smp-{self.sha256[:16]}"


def manifest_of(
    files: Sequence[SampleFile],
    classes: Sequence[str] = (),
    task: LabelTask = "classification",
    dataset_id: str = "ds-1",
    version: int = 1,
) -> DatasetManifest:
    """The manifest dataset-svc would publish for `files` (sorted by sample id, as it does)."""
    samples = [
        ManifestSample(
            sample_id=file.sample_id,
            filename=file.filename,
            sha256=file.sha256,
            size_bytes=len(file.data),
            media_type=MEDIA_TYPES[Path(file.filename).suffix],
            label=AnnotationData(class_name=file.class_name) if file.class_name is not None else None,
            split=file.split,
            agreement=1.0,
        )
        for file in files
    ]
    return DatasetManifest(
        dataset_id=dataset_id,
        version=version,
        org_id="org-1",
        name="sample data",
        ai_module="vision",
        environment="dev",
        label_schema=LabelSchemaData(task=task, classes=list(classes)),
        seed=7,
        train_fraction=0.8,
        val_fraction=0.1,
        samples=sorted(samples, key=lambda sample: sample.sample_id),
    )


def blob_path(cache: Path, sha256: str) -> Path:
    return cache / "blobs" / sha256[:2] / sha256


def materialize_by_hand(cache: Path, files: Sequence[SampleFile], manifest: DatasetManifest) -> Path:
    """Write the blobs and the manifest (+ its SHA-256) into the cache layout; return manifest.json."""
    for file in files:
        path = blob_path(cache, file.sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file.data)
    folder = cache / "versions" / manifest.dataset_id / str(manifest.version)
    folder.mkdir(parents=True, exist_ok=True)
    data = manifest_bytes(manifest)
    (folder / "manifest.sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")
    (folder / "manifest.json").write_bytes(data)
    return folder / "manifest.json"


def png_bytes(pixels: np.ndarray) -> bytes:
    """A PNG of uint8 pixels (H×W grayscale or H×W×3 RGB)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def csv_bytes(header: list[str], rows: list[list[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def blob_csv_files(rows: int = 120) -> list[SampleFile]:
    """Two CSV files of the same columns (x, y, z, label) with separable classes: train and val."""
    rng = np.random.default_rng(3)
    files = []
    for name, split, count in (("train.csv", "train", rows), ("val.csv", "val", rows // 3)):
        labels = rng.integers(0, 2, count)
        features = rng.normal(size=(count, 3)) + labels[:, None] * np.array([3.0, -3.0, 2.0])
        table = [
            [*map(float, row), "dog" if label else "cat"] for row, label in zip(features, labels, strict=True)
        ]
        files.append(SampleFile(name, csv_bytes(["x", "y", "z", "label"], table), split))
    return files
