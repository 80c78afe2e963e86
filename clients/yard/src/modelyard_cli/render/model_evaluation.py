"""A model version's evaluation as rich tables: the figures, the per-class scores, the confusion
matrix, and the metric gates as judged at approval."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from modelyard.v1 import registry_pb2
from modelyard_cli.render.values import cells, format_metric, format_percent

PASSED_MARK = "✓"
FAILED_MARK = "✗"


def evaluation_view(evaluation: registry_pb2.Evaluation, class_names: Sequence[str]) -> Group:
    """The evaluation's run and figures; once finished, its per-class table and confusion matrix."""
    parts: list[RenderableType] = [_figures_grid(evaluation)]
    if evaluation.finished and evaluation.per_class:
        parts.append(per_class_table(evaluation.per_class))
    if evaluation.finished and evaluation.confusion:
        labels = list(class_names) or [scores.label for scores in evaluation.per_class]
        parts.append(confusion_table(evaluation.confusion, labels))
    return Group(*parts)


def _figures_grid(evaluation: registry_pb2.Evaluation) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.title = "evaluation"
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in _figure_rows(evaluation):
        grid.add_row(*cells(label, value))
    return grid


def _figure_rows(evaluation: registry_pb2.Evaluation) -> list[tuple[str, object]]:
    run = [
        ("evaluation", f"{evaluation.evaluation_id} (job {evaluation.job_id or '-'})"),
        ("requested by", evaluation.requested_by),
        ("on", f"{evaluation.dataset_uri} ({evaluation.split or '-'} split)"),
    ]
    if not evaluation.finished:
        return [*run, ("result", "pending: the evaluation run has not finished")]
    return [
        *run,
        ("samples", evaluation.samples),
        ("device", evaluation.device),
        ("accuracy", format_percent(evaluation.accuracy)),
        ("precision / recall / F1", figures_text(evaluation)),
        ("latency", f"p50 {evaluation.latency_p50_ms:.2f} ms · p95 {evaluation.latency_p95_ms:.2f} ms"),
    ]


def figures_text(evaluation: registry_pb2.Evaluation) -> str:
    """`0.9100 / 0.9000 / 0.9050` (macro averages)."""
    return " / ".join(format_metric(v) for v in (evaluation.precision, evaluation.recall, evaluation.f1))


def per_class_table(per_class: Iterable[registry_pb2.ClassScores]) -> Table:
    """One row per class: precision, recall, F1 and support (samples of that class)."""
    table = Table("class", "precision", "recall", "F1", "support", title="per class")
    for scores in per_class:
        table.add_row(
            *cells(
                scores.label,
                format_metric(scores.precision),
                format_metric(scores.recall),
                format_metric(scores.f1),
                scores.support,
            )
        )
    return table


def confusion_table(rows: Iterable[registry_pb2.ConfusionRow], labels: Sequence[str]) -> Table:
    """Counts with the true class down and the predicted class across; unnamed classes by index."""
    counts = [list(row.counts) for row in rows]
    width = max((len(row) for row in counts), default=0)
    names = [labels[i] if i < len(labels) else str(i) for i in range(max(width, len(counts)))]
    table = Table("true \\ predicted", *names[:width], title="confusion matrix")
    for index, row in enumerate(counts):
        table.add_row(*cells(names[index], *row))
    return table


def gates_table(gates: Iterable[registry_pb2.GateResult]) -> Table:
    """The module's metric gates as judged at approval: ✓/✗, gate, threshold, measured."""
    table = Table("", "gate", "threshold", "measured", title="gates at approval")
    for gate in gates:
        mark = Text(PASSED_MARK if gate.passed else FAILED_MARK, style="green" if gate.passed else "red")
        table.add_row(mark, *cells(gate.gate, format_metric(gate.threshold), format_metric(gate.measured)))
    return table
