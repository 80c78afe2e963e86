"""scikit-learn's handwritten digits (1,797 8×8 images, 10 classes), bundled with it: the offline demo set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
