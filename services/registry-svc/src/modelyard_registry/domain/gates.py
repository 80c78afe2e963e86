"""Metric gates: per-module thresholds on an evaluation's figures that approval requires.

Configured per ai_module (`MODELYARD_REGISTRY_GATES`, JSON; the module "*" applies to modules not
named), e.g. `{"digits": [{"metric": "f1", "min": 0.9}, {"metric": "min_class_recall", "min": 0.8},
{"metric": "latency_p95_ms", "max": 20}]}`. Metrics: accuracy, precision, recall, f1 (macro),
latency_p50_ms, latency_p95_ms, and min_class_precision / min_class_recall / min_class_f1 (the
worst class's).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from modelyard_events.domain_errors import IllegalTransition
from modelyard_events.schemas.registry import EvaluationReport, GateResult

GateMetric = Literal[
    "accuracy",
    "precision",
    "recall",
    "f1",
    "latency_p50_ms",
    "latency_p95_ms",
    "min_class_precision",
    "min_class_recall",
    "min_class_f1",
]

_MEASURE: dict[str, Callable[[EvaluationReport], float]] = {
    "accuracy": lambda r: r.accuracy,
    "precision": lambda r: r.precision,
    "recall": lambda r: r.recall,
    "f1": lambda r: r.f1,
    "latency_p50_ms": lambda r: r.latency_p50_ms,
    "latency_p95_ms": lambda r: r.latency_p95_ms,
    # per_class keeps the lowest-recall classes of a large model, so only the worst recall is
    # certain to be in it; the worst precision or F1 is unknown then (NaN fails every gate).
    "min_class_precision": lambda r: _worst(r, [c.precision for c in r.per_class]),
    "min_class_recall": lambda r: min((c.recall for c in r.per_class), default=0.0),
    "min_class_f1": lambda r: _worst(r, [c.f1 for c in r.per_class]),
}


def _worst(report: EvaluationReport, values: list[float]) -> float:
    if report.classes_total > len(report.per_class):
        return math.nan
    return min(values, default=0.0)


class Gate(BaseModel):
    """One threshold: the metric must be ≥ `min` or ≤ `max` (exactly one of them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: GateMetric
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Gate:
        if (self.min is None) == (self.max is None):
            raise ValueError(f"gate on {self.metric} needs exactly one of min or max")
        return self

    @property
    def name(self) -> str:
        """e.g. "f1 >= 0.9"."""
        return f"{self.metric} >= {self.min:g}" if self.min is not None else f"{self.metric} <= {self.max:g}"

    def result(self, report: EvaluationReport) -> GateResult:
        """The measured value against the threshold."""
        measured = _MEASURE[self.metric](report)
        if self.min is not None:
            return GateResult(
                gate=self.name, threshold=self.min, measured=measured, passed=measured >= self.min
            )
        assert self.max is not None
        return GateResult(gate=self.name, threshold=self.max, measured=measured, passed=measured <= self.max)


GateConfig = Mapping[str, Sequence[Gate]]


def gates_for(config: GateConfig, ai_module: str) -> Sequence[Gate]:
    """The module's gates, else those of "*", else none."""
    return config.get(ai_module, config.get("*", ()))


def judged(gates: Sequence[Gate], report: EvaluationReport) -> list[GateResult]:
    """Every gate's result on `report`."""
    return [gate.result(report) for gate in gates]


def check_gates(results: Sequence[GateResult], semantic_version: str) -> None:
    """IllegalTransition naming each failing gate, its threshold and the measured value."""
    failing = [r for r in results if not r.passed]
    if failing:
        figures = "; ".join(f"{r.gate} failed: {_measured(r)}, threshold {r.threshold:g}" for r in failing)
        raise IllegalTransition(
            f"version {semantic_version} does not pass its module's gates ({figures}); "
            "train a better version or change the module's gates (MODELYARD_REGISTRY_GATES)"
        )


def _measured(result: GateResult) -> str:
    if math.isnan(result.measured):
        return "not measured for every class (the evaluation reports the 256 lowest-recall classes)"
    return f"measured {result.measured:.4g}"
