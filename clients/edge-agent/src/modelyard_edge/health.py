"""The edge health gate's verdict: is the new model worse than the one it replaces, beyond the limits?

Pure: the figures come from the agent's probe runs (`probing.py`), the limits from the assignment.
A ratio limit is broken only when the difference is also above its absolute slack, so a model of a
fraction of a millisecond is not failed for noise. Agreement is judged only where it was measured
(the two models share classes); without an old model the new one passes on its own figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from modelyard_events.schemas import deploy as deploy_events

_DEFAULTS = deploy_events.HealthLimits()


@dataclass(frozen=True, slots=True)
class Limits:
    """How much worse than the running model the new one may be (defaults: the deploy events')."""

    max_load_time_ratio: float = _DEFAULTS.max_load_time_ratio
    max_p95_latency_ratio: float = _DEFAULTS.max_p95_latency_ratio
    min_agreement: float = _DEFAULTS.min_agreement
    load_time_slack_ms: float = _DEFAULTS.load_time_slack_ms
    latency_slack_ms: float = _DEFAULTS.latency_slack_ms


@dataclass(frozen=True, slots=True)
class Figures:
    """One model measured on the probes: how long it took to load and its p95 single-sample latency."""

    version_id: str
    load_time_ms: float
    latency_p95_ms: float


@dataclass(frozen=True, slots=True)
class HealthVerdict:
    """The gate's outcome, shaped like the proto's HealthReport (`reasons`: one per broken limit)."""

    probes: int
    new: Figures
    old: Figures | None
    agreement: float | None
    compared_classes: int
    passed: bool
    reasons: list[str] = field(default_factory=list)


def judge_health(
    new: Figures,
    old: Figures | None,
    agreement: float | None,
    compared_classes: int,
    limits: Limits,
    *,
    probes: int = 0,
) -> HealthVerdict:
    """The verdict on `new` against `old` under `limits`; each reason names the figure, the limit and
    what was measured."""
    reasons: list[str] = []
    if old is not None:
        reasons += _ratio_problem(
            "load time",
            new.load_time_ms,
            old.load_time_ms,
            limits.max_load_time_ratio,
            limits.load_time_slack_ms,
        )
        reasons += _ratio_problem(
            "p95 latency",
            new.latency_p95_ms,
            old.latency_p95_ms,
            limits.max_p95_latency_ratio,
            limits.latency_slack_ms,
        )
        if agreement is not None and agreement < limits.min_agreement:
            reasons.append(
                f"agreement with version {old.version_id} is {agreement:.1%} on {compared_classes} shared "
                f"classes, below the minimum of {limits.min_agreement:.1%}"
            )
    return HealthVerdict(probes, new, old, agreement, compared_classes, not reasons, reasons)


def _ratio_problem(figure: str, new_ms: float, old_ms: float, max_ratio: float, slack_ms: float) -> list[str]:
    if new_ms - old_ms <= slack_ms or new_ms <= old_ms * max_ratio:
        return []
    ratio = new_ms / old_ms if old_ms > 0 else float("inf")
    return [
        f"{figure} is {new_ms:.2f} ms against {old_ms:.2f} ms for the running version ({ratio:.2f}x), "
        f"above the limit of {max_ratio:g}x plus {slack_ms:g} ms of slack"
    ]


def agreement_of(
    new_labels: Sequence[object],
    old_labels: Sequence[object],
    new_classes: Sequence[object] | None,
    old_classes: Sequence[object] | None,
) -> tuple[float | None, int]:
    """(agreement, compared classes): the share of probes where both models predict the same class,
    counting only probes whose old prediction is a class the new model knows too (a class the new
    model dropped cannot be agreed with). None when the models share no class (or are regressors)
    or no probe's old prediction is shared."""
    if new_classes is None or old_classes is None:
        return None, 0
    shared = set(new_classes) & set(old_classes)
    compared = [(new, old) for new, old in zip(new_labels, old_labels, strict=True) if old in shared]
    if not shared or not compared:
        return None, len(shared)
    same = sum(1 for new, old in compared if new == old)
    return same / len(compared), len(shared)
