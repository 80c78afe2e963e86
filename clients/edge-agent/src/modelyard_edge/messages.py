"""Between the agent's own values and deploy.proto's messages (limits in, health reports and running
models out)."""

from __future__ import annotations

from collections.abc import Iterable

from modelyard.v1 import deploy_pb2
from modelyard_edge.health import Figures, HealthVerdict, Limits
from modelyard_edge.probing import ServedModel

_LIMIT_FIELDS = (
    "max_load_time_ratio",
    "max_p95_latency_ratio",
    "min_agreement",
    "load_time_slack_ms",
    "latency_slack_ms",
)


def limits_from_proto(health: deploy_pb2.HealthLimits) -> Limits:
    """The assignment's limits; an unset field takes its default (docs/deploy.md)."""
    given = {name: float(getattr(health, name)) for name in _LIMIT_FIELDS if health.HasField(name)}
    return Limits(**given)


def health_to_proto(verdict: HealthVerdict) -> deploy_pb2.HealthReport:
    report = deploy_pb2.HealthReport(
        probes=verdict.probes,
        new=_figures(verdict.new),
        compared_classes=verdict.compared_classes,
        passed=verdict.passed,
        reasons=verdict.reasons[:8],  # the event carries at most 8
    )
    if verdict.old is not None:
        report.old.CopyFrom(_figures(verdict.old))
    if verdict.agreement is not None:
        report.agreement = verdict.agreement
    return report


def running_to_proto(served: Iterable[ServedModel]) -> list[deploy_pb2.RunningModel]:
    return [
        deploy_pb2.RunningModel(
            ai_module=model.ai_module, version_id=model.version_id, semantic_version=model.semantic_version
        )
        for model in sorted(served, key=lambda model: model.ai_module)
    ]


def _figures(figures: Figures) -> deploy_pb2.ModelFigures:
    return deploy_pb2.ModelFigures(
        version_id=figures.version_id,
        load_time_ms=figures.load_time_ms,
        latency_p95_ms=figures.latency_p95_ms,
    )
