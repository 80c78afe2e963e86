"""A classifier's confusion matrix and the precision, recall and F1 read from it.

Conventions (those of scikit-learn's `precision_recall_fscore_support(…, zero_division=0)`):
a class never predicted has precision 0.0, a class with no true samples recall 0.0, and F1 is 0.0
when precision and recall are both 0. Macro averages are over the classes that occur in the truth
or in the predictions (scikit-learn's default labels): a class of the model that the split neither
holds nor is predicted says nothing about the model and is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch


@dataclass(frozen=True)
class ClassMetrics:
    """One class: its label (as text), precision, recall, F1 and support (true samples of it)."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ClassificationScores:
    """Accuracy, macro averages, per-class metrics (class order) and the confusion matrix."""

    accuracy: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    per_class: list[ClassMetrics]
    confusion: list[list[int]]  # rows: true class, columns: predicted class


def confusion_matrix(true: torch.Tensor, predicted: torch.Tensor, classes: int) -> npt.NDArray[np.int64]:
    """classes × classes counts of (true, predicted) class indices, computed where the tensors live."""
    pairs = true.long() * classes + predicted.long()
    counts = torch.bincount(pairs, minlength=classes * classes)
    return counts.reshape(classes, classes).cpu().numpy().astype(np.int64)


def classification_scores(confusion: npt.NDArray[np.int64], labels: Sequence[str]) -> ClassificationScores:
    """The metrics of a confusion matrix whose classes are `labels`, in that order."""
    hits = np.diag(confusion).astype(np.float64)
    support, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    precision = _ratio(hits, predicted)
    recall = _ratio(hits, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    seen = (support > 0) | (predicted > 0)
    total = int(confusion.sum())
    per_class = [
        ClassMetrics(label, float(p), float(r), float(f), int(n))
        for label, p, r, f, n in zip(labels, precision, recall, f1, support, strict=True)
    ]
    return ClassificationScores(
        accuracy=float(hits.sum() / total) if total else 0.0,
        precision_macro=_mean(precision[seen]),
        recall_macro=_mean(recall[seen]),
        f1_macro=_mean(f1[seen]),
        per_class=per_class,
        confusion=confusion.tolist(),
    )


def _ratio(numerator: npt.NDArray[np.float64], denominator: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """numerator / denominator, and 0.0 where the denominator is 0."""
    safe = np.where(denominator > 0, denominator, 1)
    ratio: npt.NDArray[np.float64] = np.where(denominator > 0, numerator / safe, 0.0)
    return ratio


def _mean(values: npt.NDArray[np.float64]) -> float:
    return float(values.mean()) if values.size else 0.0
