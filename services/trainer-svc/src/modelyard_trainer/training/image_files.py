"""Reading image datasets: an .npz with `images` (N×H×W or N×C×H×W) and `labels` (N integers)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from modelyard_trainer.training.errors import TrainingDataError


def read_images(path: Path) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
    """Images as N × C × H × W (dtype kept) and integer labels; refuses anything else by name."""
    if path.suffix.lower() != ".npz":
        raise TrainingDataError(f"{path.name}: image datasets must be .npz files with 'images' and 'labels'")
    if path.stat().st_size == 0:
        raise TrainingDataError(f"{path.name} is empty")
    try:
        # allow_pickle=False: a dataset is untrusted input and must not run code when loaded.
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ("images", "labels") if key not in archive.files]
            if missing:
                found = ", ".join(archive.files) or "nothing"
                raise TrainingDataError(f"{path.name} has no {' or '.join(missing)} array (it holds {found})")
            images, labels = archive["images"], archive["labels"]
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise TrainingDataError(
            f"{path.name} is not a readable .npz archive of numeric arrays: {error}"
        ) from None
    return _checked_images(path.name, images), _checked_labels(path.name, labels, len(images))


def _checked_images(source: str, images: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if images.dtype == np.bool_ or not np.issubdtype(images.dtype, np.number) or np.iscomplexobj(images):
        raise TrainingDataError(f"{source}: images must be numeric, not {images.dtype}")
    if images.ndim == 3:
        images = images[:, np.newaxis]
    if images.ndim != 4:
        raise TrainingDataError(f"{source}: images must be N×H×W or N×C×H×W, not shape {images.shape}")
    if len(images) < 2:
        raise TrainingDataError(f"{source} has {len(images)} images; at least 2 are needed to hold some out")
    if min(images.shape[1:]) < 1:
        raise TrainingDataError(f"{source}: images of shape {images.shape[1:]} have no pixels")
    if np.issubdtype(images.dtype, np.floating) and not np.isfinite(images).all():
        raise TrainingDataError(f"{source}: images contain NaN or infinite values")
    return images


def _checked_labels(source: str, labels: npt.NDArray[Any], count: int) -> npt.NDArray[np.int64]:
    if labels.ndim != 1:
        raise TrainingDataError(f"{source}: labels must be one integer per image, not shape {labels.shape}")
    if len(labels) != count:
        raise TrainingDataError(f"{source} has {count} images but {len(labels)} labels")
    if np.issubdtype(labels.dtype, np.floating) and np.isfinite(labels).all() and (labels % 1 == 0).all():
        labels = labels.astype(np.int64)
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        raise TrainingDataError(f"{source}: labels must be integers, not {labels.dtype}")
    return labels.astype(np.int64)
