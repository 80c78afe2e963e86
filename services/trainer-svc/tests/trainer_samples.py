"""Test doubles and data builders of the trainer tests (imported by name; see conftest for fixtures)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelyard_trainer.training import CheckpointInfo, EpochResult, Progress, StartInfo, TrainingSpec

SpecFactory = Callable[..., TrainingSpec]


class RecordingObserver:
    """Keeps every report; `on_progress` / `on_epoch` hooks let a test act from the training thread."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, str]] = []
        self.starts: list[StartInfo] = []
        self.progress: list[Progress] = []
        self.epochs: list[tuple[EpochResult, CheckpointInfo]] = []
        self.on_progress: Callable[[Progress], None] = lambda progress: None
        self.on_epoch: Callable[[EpochResult], None] = lambda result: None

    def phase(self, phase: str, message: str) -> None:
        self.phases.append((phase, message))

    def started(self, info: StartInfo) -> None:
        self.starts.append(info)

    def progressed(self, progress: Progress) -> None:
        self.progress.append(progress)
        self.on_progress(progress)

    def epoch_completed(self, result: EpochResult, checkpoint: CheckpointInfo) -> None:
        self.epochs.append((result, checkpoint))
        self.on_epoch(result)


def blobs(rows: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Three features; two well-separated classes labelled "cat" and "dog"."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    features = rng.normal(size=(rows, 3)) + labels[:, None] * np.array([3.0, -3.0, 2.0])
    return features, np.where(labels == 1, "dog", "cat")


def linear_rows(rows: int, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Three features on different scales and y = 3·a − 0.02·b + 40·c + 100 + small noise."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 3)) * np.array([1.0, 100.0, 0.1])
    target = features @ np.array([3.0, -0.02, 40.0]) + 100 + rng.normal(scale=0.1, size=rows)
    return features, target


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path
