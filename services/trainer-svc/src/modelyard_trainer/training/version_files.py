"""Reading a materialized dataset version: its verified manifest and its cached blobs, hashed again.

The trainer promises to train only on the bytes a version published, so every blob's SHA-256 is
checked when it is read for training, not only when it was downloaded.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from modelyard_events.schemas.datasets import SplitName
from modelyard_events.schemas.manifest import MANIFEST_FORMAT, DatasetManifest, ManifestError, ManifestSample
from modelyard_events.schemas.manifest import parse_manifest as parse_verified_manifest
from modelyard_trainer.training.errors import DatasetVersionError
from modelyard_trainer.training.tabular_files import Table, concat_tables, parse_table
from modelyard_trainer.training.version_cache import MANIFEST_SHA256_FILE, VersionCache, describe

# Palette and bilevel images have an obvious channel layout; others (alpha, 16-bit, CMYK) are refused.
_CONVERTED_MODES = {"L": "L", "RGB": "RGB", "1": "L", "P": "RGB"}


@dataclass(frozen=True)
class MaterializedVersion:
    """A version's manifest (verified against its recorded hash) and the cache holding its blobs."""

    manifest: DatasetManifest
    manifest_sha256: str
    cache: VersionCache

    @property
    def name(self) -> str:
        """`<dataset_id> v<version>`, for messages."""
        return f"dataset {self.manifest.dataset_id} v{self.manifest.version}"

    def split(self, split: SplitName) -> list[ManifestSample]:
        """The samples of a split; DatasetVersionError when it is empty."""
        samples = self.manifest.split(split)
        if not samples:
            raise DatasetVersionError(
                f"{self.name} has no {split} samples; publish a version whose {split} fraction is above 0"
            )
        return samples

    def blob(self, sample: ManifestSample) -> bytes:
        """The sample's bytes, after checking their SHA-256 against the manifest.

        A cached blob that hashes differently is removed, so the next fetch downloads it again.
        """
        path = self.cache.blob_path(sample.sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DatasetVersionError(
                f"{describe(sample)} of {self.name} is not in the dataset cache ({path}); "
                "fetch the version again"
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sample.sha256:
            path.unlink(missing_ok=True)
            raise DatasetVersionError(
                f"{describe(sample)} of {self.name}: the cached bytes hash to {actual}, not to the "
                f"manifest's {sample.sha256}; refused and removed from the cache, "
                "so a retry downloads it again"
            )
        return data


def read_materialized_version(path: Path) -> MaterializedVersion | None:
    """The version whose manifest is `path`, told by the manifest's `format` field; None for other files.

    The manifest must hash to the `manifest.sha256` written beside it when it was fetched.
    """
    if path.suffix.lower() != ".json":
        return None
    data = path.read_bytes()
    try:
        document = json.loads(data)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        return None
    sha_path = path.with_name(MANIFEST_SHA256_FILE)
    if not sha_path.is_file():
        raise DatasetVersionError(
            f"{path} is a dataset manifest without {MANIFEST_SHA256_FILE} beside it; "
            "train on dataset://<dataset_id>/<version> so the trainer fetches and verifies it"
        )
    expected = sha_path.read_text(encoding="utf-8").strip()
    try:
        manifest = parse_verified_manifest(data, expected)
    except ManifestError as error:
        raise DatasetVersionError(f"{path}: {error}") from None
    return MaterializedVersion(manifest, expected, VersionCache.holding(path))


@dataclass(frozen=True)
class VersionImages:
    """The train and val images of a version (N × C × H × W, uint8) with class indices in schema order."""

    train_images: npt.NDArray[np.uint8]
    train_targets: npt.NDArray[np.int64]
    val_images: npt.NDArray[np.uint8]
    val_targets: npt.NDArray[np.int64]
    classes: list[str]


def version_images(version: MaterializedVersion) -> VersionImages:
    """Decode the train and val images; the test split is held out. Every image must share size and mode."""
    schema = version.manifest.label_schema
    if schema.task != "classification" or len(schema.classes) < 2:
        raise DatasetVersionError(
            f"{version.name} has a {schema.task} label schema with {len(schema.classes)} class(es); "
            "an image_classifier needs a classification schema with at least two classes"
        )
    index = {name: position for position, name in enumerate(schema.classes)}
    train, val = version.split("train"), version.split("val")
    images = _decoded_images(version, [*train, *val])
    targets = np.asarray([_class_index(version, sample, index) for sample in (*train, *val)], dtype=np.int64)
    cut = len(train)
    return VersionImages(images[:cut], targets[:cut], images[cut:], targets[cut:], list(schema.classes))


def version_table(
    version: MaterializedVersion, target_column: str, feature_columns: list[str] | None
) -> tuple[Table, int]:
    """The rows of the train files, then of the val files, and how many rows are train rows."""
    train, val = version.split("train"), version.split("val")
    tables = [
        parse_table(sample.filename, version.blob(sample), target_column, feature_columns)
        for sample in (*train, *val)
    ]
    train_rows = sum(len(table.features) for table in tables[: len(train)])
    return concat_tables(tables), train_rows


def version_split_images(
    version: MaterializedVersion, split: SplitName
) -> tuple[npt.NDArray[np.uint8], list[str]]:
    """The decoded images of one split (N × C × H × W, uint8) and each one's class name, in manifest
    order; the names are not checked against the label schema (the caller maps them to its classes)."""
    samples = version.split(split)
    return _decoded_images(version, samples), [_class_name(version, sample) for sample in samples]


def version_split_table(
    version: MaterializedVersion, split: SplitName, target_column: str, feature_columns: list[str] | None
) -> Table:
    """The rows of one split's files, in manifest order."""
    return concat_tables(
        [
            parse_table(sample.filename, version.blob(sample), target_column, feature_columns)
            for sample in version.split(split)
        ]
    )


def _decoded_images(version: MaterializedVersion, samples: list[ManifestSample]) -> npt.NDArray[np.uint8]:
    pixels = [_decoded_image(sample, version.blob(sample)) for sample in samples]
    first = pixels[0]
    for sample, image in zip(samples, pixels, strict=True):
        if image.shape != first.shape:
            raise DatasetVersionError(
                f"{describe(sample)} of {version.name} is {_looks(image)}, but {describe(samples[0])} is "
                f"{_looks(first)}; every image of a version must have the same size and mode"
            )
    return np.stack(pixels)


def _decoded_image(sample: ManifestSample, data: bytes) -> npt.NDArray[np.uint8]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            mode = _CONVERTED_MODES.get(image.mode)
            if mode is None:
                raise DatasetVersionError(
                    f"{describe(sample)} is a {image.mode} image; use grayscale (L) or RGB images"
                )
            pixels: npt.NDArray[Any] = np.asarray(image.convert(mode), dtype=np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as error:
        raise DatasetVersionError(f"{describe(sample)} is not a readable image: {error}") from None
    return pixels[np.newaxis] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _looks(image: npt.NDArray[np.uint8]) -> str:
    channels, height, width = image.shape
    return f"{width}×{height} {'grayscale' if channels == 1 else 'RGB'}"


def _class_name(version: MaterializedVersion, sample: ManifestSample) -> str:
    name = sample.label.class_name if sample.label is not None else None
    if name is None:
        raise DatasetVersionError(f"{describe(sample)} of {version.name} has no class label")
    return name


def _class_index(version: MaterializedVersion, sample: ManifestSample, index: dict[str, int]) -> int:
    name = _class_name(version, sample)
    if name not in index:
        raise DatasetVersionError(
            f"{describe(sample)} of {version.name} is labelled {name!r}, which is not a class of the "
            f"label schema ({', '.join(index)})"
        )
    return index[name]
