"""Probe inputs: a few valid inputs an edge runs through a freshly loaded model before it serves.

Either generated from the artifact's config (deterministic for a seed, so two edges probing the
same version run the same inputs) or read from a file an operator supplied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from modelyard_inference.artifact import ArtifactConfig, raw_batch
from modelyard_inference.errors import ProbeInputError
from modelyard_inference.scaling import TabularScaling

NUMPY_SUFFIX = ".npy"
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


def probe_inputs(config: ArtifactConfig, count: int, seed: int = 0) -> npt.NDArray[np.float64]:
    """`count` unscaled inputs shaped `count × input_shape`, the same for the same config and seed.

    Tabular: each feature drawn from a normal with its training mean and std. Images: pixels drawn
    uniformly from the training split's pixel range. Inputs in the training distribution's range
    exercise the model the way real traffic does (no overflow, no constant input).
    """
    if count < 1:
        raise ValueError(f"probe count must be ≥ 1, not {count}")
    generator = np.random.default_rng(seed)
    scaling = config.scaling
    if isinstance(scaling, TabularScaling):
        mean, std = np.asarray(scaling.feature_mean), np.asarray(scaling.feature_std)
        drawn: npt.NDArray[np.float64] = generator.normal(mean, std, size=(count, len(mean)))
        return drawn
    pixels: npt.NDArray[np.float64] = generator.uniform(
        scaling.pixel_min, scaling.pixel_max, size=(count, *config.input_shape)
    )
    return pixels


def read_probe_inputs(path: Path, config: ArtifactConfig) -> npt.NDArray[np.float64]:
    """Probe inputs from `path` as an unscaled `N × input_shape` batch; ProbeInputError if unusable.

    `.npy`: an array shaped like the model's inputs (one input or a batch; N×H×W for a one-channel
    image model). `.jsonl` / `.ndjson` (tabular only): one object of feature name → number a line.
    """
    try:
        raw = _json_lines(path, config) if path.suffix in JSON_LINES_SUFFIXES else _numpy_array(path)
        batch = np.asarray(raw_batch(config, raw), dtype=np.float64)
    except ProbeInputError:
        raise
    except (OSError, ValueError, TypeError) as error:
        raise ProbeInputError(f"{path}: {error}") from None
    if len(batch) == 0:
        raise ProbeInputError(f"{path} holds no probe inputs")
    if not np.isfinite(batch).all():
        raise ProbeInputError(f"{path} holds values that are not finite numbers")
    return batch


def _numpy_array(path: Path) -> npt.NDArray[Any]:
    if path.suffix != NUMPY_SUFFIX:
        allowed = ", ".join((NUMPY_SUFFIX, *JSON_LINES_SUFFIXES))
        raise ProbeInputError(f"{path}: probe inputs must be a {allowed} file")
    array: npt.NDArray[Any] = np.load(path, allow_pickle=False)  # a pickle could run code
    if not np.issubdtype(array.dtype, np.number):
        raise ProbeInputError(f"{path}: probe inputs must be numbers, not {array.dtype}")
    return array


def _json_lines(path: Path, config: ArtifactConfig) -> list[dict[str, Any]]:
    if config.feature_names is None:
        raise ProbeInputError(f"{path}: JSON Lines probes need a tabular model; give images as .npy")
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ProbeInputError(f"{path}, line {number}: not JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise ProbeInputError(f"{path}, line {number}: expected an object of feature name → number")
        rows.append(row)
    return rows
