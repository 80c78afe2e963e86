"""scikit-learn's handwritten digits (1,797 8×8 images, 10 classes), bundled with it: the offline demo set."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits  # type: ignore[import-untyped]  # scikit-learn ships no type hints


def export_digits(path: Path) -> Path:
    """Write the digits as the .npz the image classifier reads: `images` uint8 N×8×8 (0–16), `labels` int64.

    Reads only files inside the scikit-learn wheel (no network); returns `path`.
    """
    digits = load_digits()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez_compressed(
            handle, images=digits.images.astype(np.uint8), labels=digits.target.astype(np.int64)
        )
    return path


def export_digits_images(folder: Path) -> list[tuple[str, str]]:
    """Write the digits as 8×8 grayscale PNGs `digit-0000.png` … (pixels 0–16 scaled to 0–255, uint8)
    and `labels.csv` (`filename,class`) into `folder`; return the (filename, class name) pairs in order.

    The class names are "0" … "9": what a dataset's label schema and annotations hold.
    """
    digits = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    labelled = [(f"digit-{index:04d}.png", str(int(label))) for index, label in enumerate(digits.target)]
    for (filename, _), image in zip(labelled, pixels, strict=True):
        Image.fromarray(image).save(folder / filename, format="PNG")
    with (folder / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "class"])
        writer.writerows(labelled)
    return labelled
