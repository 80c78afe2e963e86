"""Model versions as rich tables and lines: the list, one version in full, a command's one-line result."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.console import Group, RenderableType
from rich.table import Table

from modelyard.v1 import registry_pb2
from modelyard_cli.render.model_evaluation import evaluation_view, gates_table
from modelyard_cli.render.model_values import semver_label, shape_text, status_name
from modelyard_cli.render.values import (
    MISSING,
    cells,
    format_bytes,
    format_metric,
    format_percent,
    format_time,
    present,
)

VERSION_COLUMNS = (
    "version", "module", "semver", "status", "accuracy", "F1", "created by", "approved by", "environments",
)  # fmt: skip


def versions_table(versions: Iterable[registry_pb2.ModelVersion]) -> Table:
    """One row per version: id, module, number, status, accuracy and F1 once evaluated, who created and
    who approved it, the environments where it is the current release."""
    table = Table(*VERSION_COLUMNS, title="model versions")
    for version in versions:
        table.add_row(
            *cells(
                version.version_id,
                version.ai_module,
                version.semantic_version,
                status_name(version.status),
                format_percent(present(version, "accuracy")),
                format_metric(present(version, "f1_score")),
                version.created_by,
                present(version, "approved_by"),
                ", ".join(version.environments),
            )
        )
    return table


def version_line(version: registry_pb2.ModelVersion) -> str:
    """One line about a version after a command: id, module and number, status, then what goes with
    the status (the pending evaluation, the approver, the environments, the reason)."""
    line = f"{version.version_id}  {semver_label(version)}  {status_name(version.status)}"
    evaluation = present(version, "evaluation")
    if evaluation is not None and not evaluation.finished:
        on = f"{evaluation.dataset_uri} ({evaluation.split or 'default'} split)"
        line += f"  evaluation {evaluation.evaluation_id} on {on} pending"
    if version.HasField("approved_by"):
        line += f"  approved by {version.approved_by}"
    if version.environments:
        line += f"  released in {', '.join(version.environments)}"
    if version.status_reason:
        line += f"  ({version.status_reason})"
    return line


def rollback_lines(response: registry_pb2.RollbackResponse) -> list[str]:
    """What a rollback did: the version released again, and the one it deprecated."""
    return [
        f"released:   {version_line(response.released)}",
        f"deprecated: {version_line(response.deprecated)}",
    ]


def version_view(version: registry_pb2.ModelVersion) -> Group:
    """Everything about one version: its details, its evaluation, and the gates judged at approval."""
    parts: list[RenderableType] = [_grid(_detail_rows(version))]
    evaluation = present(version, "evaluation")
    if evaluation is not None:
        parts.append(evaluation_view(evaluation, list(version.config.class_names)))
    if version.gates:
        parts.append(gates_table(version.gates))
    return Group(*parts)


def _detail_rows(version: registry_pb2.ModelVersion) -> list[tuple[str, object]]:
    return [
        ("version", version.version_id),
        ("org", version.org_id),
        ("module", version.ai_module),
        ("number", _number_text(version)),
        ("name", version.name),
        ("description", version.description),
        ("status", _status_text(version)),
        ("training job", version.training_job_id),
        ("base version", present(version, "base_version_id") or "none (trained from scratch)"),
        ("artifact", version.artifact_uri),
        ("artifact sha256", version.artifact_sha256),
        ("artifact size", format_bytes(version.artifact_size_bytes)),
        *_config_rows(version.config),
        ("dataset", version.dataset_uri),
        ("dataset manifest", present(version, "dataset_manifest_sha256")),
        ("training metrics", _metrics_text(version.training_metrics)),
        ("approval", _approval_text(version)),
        ("release", _release_text(version)),
        ("release notes", version.release_notes),
        ("min edge version", version.min_edge_version),
        ("platforms", ", ".join(version.supported_platforms)),
        (
            "registered",
            f"{format_time(present(version, 'registered_at'))} by {version.created_by or MISSING}",
        ),
        ("revision", version.revision),
    ]


def _config_rows(config: registry_pb2.ModelConfig) -> list[tuple[str, object]]:
    classes = f"{len(config.class_names)}: {', '.join(config.class_names)}" if config.class_names else None
    return [
        ("family", config.family),
        ("input shape", shape_text(config.input_shape)),
        ("classes", classes),
        ("features", ", ".join(config.feature_names)),
        ("preprocessing", config.preprocessing),
        ("config", f"{config.config_uri or MISSING} (sha256 {config.config_sha256 or MISSING})"),
    ]


def _number_text(version: registry_pb2.ModelVersion) -> str:
    """`1.3.0 (minor: new classes)`; the number alone when no bump was recorded."""
    if not version.bump:
        return version.semantic_version
    why = f": {version.bump_reason}" if version.bump_reason else ""
    return f"{version.semantic_version} ({version.bump}{why})"


def _status_text(version: registry_pb2.ModelVersion) -> str:
    status = status_name(version.status)
    return f"{status}: {version.status_reason}" if version.status_reason else status


def _metrics_text(metrics: Mapping[str, float]) -> str:
    """`val_accuracy=0.9800 val_loss=0.0500`, in name order."""
    return " ".join(f"{name}={format_metric(value)}" for name, value in sorted(metrics.items()))


def _approval_text(version: registry_pb2.ModelVersion) -> str:
    if not version.is_approved and not version.HasField("approved_by"):
        return "not approved"
    return f"by {version.approved_by or MISSING} at {format_time(present(version, 'approved_at'))}"


def _release_text(version: registry_pb2.ModelVersion) -> str:
    if not version.is_released and not version.environments:
        return "not released"
    where = ", ".join(version.environments) or "no environment now"
    return f"{where} (released {format_time(present(version, 'released_at'))})"


def _grid(rows: list[tuple[str, object]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in rows:
        grid.add_row(*cells(label, value))
    return grid
