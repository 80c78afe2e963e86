"""A run's metrics per epoch as chart data (uPlot's aligned columns) and as CSV.

Charts take one x column (the epoch) and one column per series, `None` where a run has no value, so
runs of different lengths share one chart. An epoch repeated by a later attempt counts once: the last
attempt's figures.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.v1 import jobs_pb2

_CSV_COLUMNS = (
    "epoch", "attempt", "train_loss", "val_loss", "val_accuracy", "samples_per_s", "duration_s",
    "gpu_utilization_pct", "gpu_memory_bytes",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Run:
    """One job's epochs, with the label its series carry."""

    label: str
    epochs: Sequence[jobs_pb2.EpochMetrics]


def latest_per_epoch(epochs: Iterable[jobs_pb2.EpochMetrics]) -> list[jobs_pb2.EpochMetrics]:
    """One row per epoch number, the latest attempt's, in epoch order."""
    by_epoch: dict[int, jobs_pb2.EpochMetrics] = {}
    for epoch in epochs:
        if epoch.epoch not in by_epoch or epoch.attempt >= by_epoch[epoch.epoch].attempt:
            by_epoch[epoch.epoch] = epoch
    return [by_epoch[n] for n in sorted(by_epoch)]


def chart_data(runs: Sequence[Run]) -> dict[str, Any]:
    """`{"loss": {...}, "accuracy": {...}}`, each `{"x": [epochs], "series": [{"label", "values"}]}`:
    train and validation loss, and validation accuracy, of every run on shared epochs."""
    rows = [{e.epoch: e for e in latest_per_epoch(run.epochs)} for run in runs]
    x = sorted({n for by_epoch in rows for n in by_epoch})
    many = len(runs) > 1
    loss, accuracy = [], []
    for run, by_epoch in zip(runs, rows, strict=True):
        prefix = f"{run.label} " if many else ""
        loss.append(_series(f"{prefix}train loss", x, by_epoch, "train_loss"))
        loss.append(_series(f"{prefix}val loss", x, by_epoch, "val_loss"))
        accuracy.append(_series(f"{prefix}val accuracy", x, by_epoch, "val_accuracy"))
    return {"epochs": len(x), "loss": {"x": x, "series": loss}, "accuracy": {"x": x, "series": accuracy}}


def _series(
    label: str, x: list[int], by_epoch: dict[int, jobs_pb2.EpochMetrics], field: str
) -> dict[str, Any]:
    values = [_value(by_epoch.get(n), field) for n in x]
    return {"label": label, "values": values}


def _value(epoch: jobs_pb2.EpochMetrics | None, field: str) -> float | None:
    if epoch is None or (field == "val_accuracy" and not epoch.HasField("val_accuracy")):
        return None
    value: float = getattr(epoch, field)
    return value


def metrics_csv(epochs: Iterable[jobs_pb2.EpochMetrics]) -> str:
    """Every recorded epoch (each attempt's) as CSV: the fixed columns, then the task's own metrics."""
    rows = list(epochs)
    extra = sorted({name for e in rows for name in e.metrics})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180; a CR in a name is then quoted too
    writer.writerow([*_CSV_COLUMNS, *(spreadsheet_text(name) for name in extra)])
    for e in rows:
        fixed = [getattr(e, c) if c not in _OPTIONAL or e.HasField(c) else "" for c in _CSV_COLUMNS]
        writer.writerow([*fixed, *(e.metrics.get(name, "") for name in extra)])
    return out.getvalue()


def spreadsheet_text(text: str) -> str:
    """`text` as a CSV cell a spreadsheet shows as text: a leading `=`, `+`, `-`, `@`, tab or CR would
    make it a formula (metric names come from trainers' code), so such a cell starts with `'`."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_OPTIONAL = frozenset({"val_accuracy", "gpu_utilization_pct", "gpu_memory_bytes"})
