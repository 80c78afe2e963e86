"""Input scaling fitted on the training split and applied identically at training and inference (edges).

The fitted statistics travel in the artifact's config (plain floats and lists),
so the edge agent scales its inputs with exactly the numbers training used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

# A constant column (or image channel) has no spread to divide by; leaving it
# unscaled (std 1) keeps it finite instead of turning it into NaN.
_MIN_STD = 1e-8


def _spread(std: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.where(std < _MIN_STD, 1.0, std)


@dataclass(frozen=True)
class TabularScaling:
    """Standardizes each feature column (and a regressor's target) with training-split mean and std."""

    feature_names: list[str]
    feature_mean: list[float]
    feature_std: list[float]
    target_mean: float | None = None  # regressors only: the model learns the standardized target
    target_std: float | None = None

    @classmethod
    def fit(cls, names: list[str], features: npt.NDArray[np.float64], targets: Any = None) -> TabularScaling:
        """Statistics of `features` (rows of the training split) and, for regressors, of `targets`."""
        mean, std = features.mean(axis=0), _spread(features.std(axis=0))
        target_mean = target_std = None
        if targets is not None:
            values = np.asarray(targets, dtype=np.float64)
            target_mean, target_std = float(values.mean()), float(_spread(np.asarray(values.std())))
        return cls(names, mean.tolist(), std.tolist(), target_mean, target_std)

    def features(self, rows: npt.ArrayLike) -> FloatArray:
        """Rows of raw feature values (N × F, in `feature_names` order), standardized, as float32."""
        raw = np.asarray(rows, dtype=np.float64)
        scaled: npt.NDArray[np.float64] = (raw - np.asarray(self.feature_mean)) / np.asarray(self.feature_std)
        return scaled.astype(np.float32)

    def target(self, values: npt.ArrayLike) -> FloatArray:
        """A regressor's raw targets in the standardized units the model is trained on."""
        assert self.target_mean is not None
        assert self.target_std is not None
        return ((np.asarray(values, dtype=np.float64) - self.target_mean) / self.target_std).astype(
            np.float32
        )

    def to_config(self) -> dict[str, Any]:
        """Plain values for the artifact config."""
        return {
            "kind": "tabular",
            "feature_names": list(self.feature_names),
            "feature_mean": list(self.feature_mean),
            "feature_std": list(self.feature_std),
            "target_mean": self.target_mean,
            "target_std": self.target_std,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TabularScaling:
        """The scaling `to_config` described."""
        return cls(
            list(config["feature_names"]),
            [float(v) for v in config["feature_mean"]],
            [float(v) for v in config["feature_std"]],
            config["target_mean"],
            config["target_std"],
        )


@dataclass(frozen=True)
class ImageScaling:
    """Scales pixels to [0, 1] by the training split's range, then normalizes each channel."""

    pixel_min: float
    pixel_max: float
    channel_mean: list[float]
    channel_std: list[float]

    @classmethod
    def fit(cls, images: npt.NDArray[Any]) -> ImageScaling:
        """Statistics of the training split's images (N × C × H × W)."""
        low, high = float(images.min()), float(images.max())
        span = high - low if high > low else 1.0
        # Scaling to [0, 1] is affine, so the unit-range statistics follow from the raw ones
        # without materializing a scaled copy of the dataset.
        mean = (images.mean(axis=(0, 2, 3), dtype=np.float64) - low) / span
        std = _spread(np.sqrt(images.var(axis=(0, 2, 3), dtype=np.float64)) / span)
        return cls(low, high, mean.tolist(), std.tolist())

    def images(self, images: npt.ArrayLike) -> FloatArray:
        """Images (N × C × H × W, any numeric dtype) as float32 ((x − min) / span − mean) / std."""
        pixels = np.asarray(images, dtype=np.float32)
        span = self.pixel_max - self.pixel_min
        span = span if span > 0 else 1.0
        mean, std = np.asarray(self.channel_mean), np.asarray(self.channel_std)
        # One multiply-add per pixel in float32: the same affine map, folded into a scale and a shift.
        scale = (1.0 / (span * std)).astype(np.float32).reshape(1, -1, 1, 1)
        shift = (-(self.pixel_min / span + mean) / std).astype(np.float32).reshape(1, -1, 1, 1)
        scaled: FloatArray = pixels * scale + shift
        return scaled

    def to_config(self) -> dict[str, Any]:
        """Plain values for the artifact config."""
        return {
            "kind": "image",
            "pixel_min": self.pixel_min,
            "pixel_max": self.pixel_max,
            "channel_mean": list(self.channel_mean),
            "channel_std": list(self.channel_std),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ImageScaling:
        """The scaling `to_config` described."""
        return cls(
            float(config["pixel_min"]),
            float(config["pixel_max"]),
            [float(v) for v in config["channel_mean"]],
            [float(v) for v in config["channel_std"]],
        )
