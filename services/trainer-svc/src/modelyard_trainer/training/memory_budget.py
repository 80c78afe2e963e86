"""How much memory loading a dataset version takes, estimated before a byte of it is decoded.

A worker killed by the kernel (out of memory) reports nothing; its job is only noticed lost when the
lease lapses (issue 11, item 3). So before loading a version the run estimates what loading its
train and val splits needs at its peak and fails with a reason a person can act on when that is
above the worker's budget. The estimate reads image headers only (size and mode), and counts the
cells of table files with one byte scan each; the constants were measured on this loader
(`load_training_data`, peak RSS over the data's size; CPU, numpy 2, torch 2):

- images: ~13-15 bytes of peak memory per decoded 8-bit value (the uint8 decode, stack and
  concatenation, the float32 copy and its scaling temporaries, the split tensors); 16 is used;
- tables: ~64 bytes per cell (Python's strings, floats and lists while parsing) plus ~4 per
  byte of the file (its decoded text, the float64 matrix, the float32 tensors); for 20 columns
  of one-digit or full-precision values this came within 1-17 % above the measured peak, for CSV
  and JSONL alike (a JSONL field is followed by a comma or a newline, as a CSV cell is).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from modelyard_events.schemas.datasets import SplitName
from modelyard_events.schemas.manifest import ManifestSample
from modelyard_trainer.training.errors import TrainingDataError
from modelyard_trainer.training.version_cache import VersionCache
from modelyard_trainer.training.version_files import MaterializedVersion

IMAGE_BYTES_PER_VALUE = 16
TABLE_BYTES_PER_CELL = 64
TABLE_BYTES_PER_FILE_BYTE = 4
_CHANNELS = {"L": 1, "1": 1, "RGB": 3, "P": 3}  # what the loader converts each mode to
_UNKNOWN_CHANNELS = 4  # modes the loader refuses anyway; counted generously
_CHUNK_BYTES = 1 << 24
TRAINING_SPLITS: tuple[SplitName, ...] = ("train", "val")


def loading_bytes(
    version: MaterializedVersion, family: str, splits: Sequence[SplitName] = TRAINING_SPLITS
) -> int:
    """Peak memory (bytes) that loading the version's `splits` (training's: train, val) for `family` needs."""
    samples = [sample for split in splits for sample in version.manifest.split(split)]
    if family == "image_classifier":
        return IMAGE_BYTES_PER_VALUE * sum(_decoded_values(version.cache, s) for s in samples)
    return sum(_table_bytes(version.cache.blob_path(s.sha256)) for s in samples)


def check_memory_budget(
    version: MaterializedVersion,
    family: str,
    budget_bytes: int,
    splits: Sequence[SplitName] = TRAINING_SPLITS,
) -> None:
    """TrainingDataError when loading `splits` of `version` would need more than `budget_bytes` (one
    run's share)."""
    needed = loading_bytes(version, family, splits)
    if needed > budget_bytes:
        named = " and ".join(splits) + (" splits" if len(splits) > 1 else " split")
        raise TrainingDataError(
            f"{version.name} needs about {_gb(needed)} of memory to load its {named}, "
            f"more than the {_gb(budget_bytes)} this trainer allows a run "
            "(MODELYARD_TRAINER_MEMORY_BUDGET_BYTES shared by its slots); train on a smaller "
            "version (fewer or smaller samples) or give the trainers more memory"
        )


def _decoded_values(cache: VersionCache, sample: ManifestSample) -> int:
    try:
        with Image.open(cache.blob_path(sample.sha256)) as image:  # reads the header only
            width, height = image.size
            return width * height * _CHANNELS.get(image.mode, _UNKNOWN_CHANNELS)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return 0  # missing or unreadable: loading reports it, naming the sample


def _table_bytes(path: Path) -> int:
    cells, size = 1, 0
    try:
        with path.open("rb") as file:
            while chunk := file.read(_CHUNK_BYTES):  # the check itself must not load the file whole
                cells += chunk.count(b",") + chunk.count(b"\n")
                size += len(chunk)
    except OSError:
        return 0  # missing: loading reports it, naming the sample
    return TABLE_BYTES_PER_CELL * cells + TABLE_BYTES_PER_FILE_BYTE * size


def _gb(size_bytes: int) -> str:
    return f"{size_bytes / 1e9:.1f} GB"
