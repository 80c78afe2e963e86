"""Samples as rich tables and lines: the sample list, one sample's labels and consensus, review results."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rich.console import Group
from rich.table import Table

from modelyard.v1 import datasets_pb2
from modelyard_cli.render.dataset_values import sample_state_name
from modelyard_cli.render.values import MISSING, cells, format_bytes, format_percent, format_time, present


def box_text(box: datasets_pb2.BoundingBox) -> str:
    """`cat at (0.10, 0.20) 0.30×0.40` (fractions of the image)."""
    return f"{box.class_name} at ({box.x:.2f}, {box.y:.2f}) {box.width:.2f}×{box.height:.2f}"


def annotation_text(annotation: datasets_pb2.Annotation | None) -> str:
    """A class name (classification), the boxes (detection), or `-` when there is none."""
    if annotation is None:
        return MISSING
    if annotation.boxes:
        return "; ".join(box_text(box) for box in annotation.boxes)
    return annotation.class_name or MISSING


def samples_table(samples: Iterable[datasets_pb2.Sample], title: str = "samples") -> Table:
    """One row per sample: id, file, size, type, state, labels, consensus, agreement, version."""
    table = Table(
        "id", "file", "size", "type", "state", "labels", "consensus", "agreement", "version", title=title
    )
    for sample in samples:
        table.add_row(
            *cells(
                sample.sample_id,
                sample.filename,
                format_bytes(sample.size_bytes),
                sample.media_type,
                sample_state_name(sample.state),
                len(sample.labels),
                annotation_text(present(sample, "consensus")),
                format_percent(sample.agreement) if sample.labels else MISSING,
                sample.version,
            )
        )
    return table


def sample_details(sample: datasets_pb2.Sample) -> Group:
    """One sample: its fields, then each annotator's label."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows: list[tuple[str, object]] = [
        ("sample", sample.sample_id),
        ("dataset", sample.dataset_id),
        ("file", f"{sample.filename} ({format_bytes(sample.size_bytes)}, {sample.media_type or MISSING})"),
        ("sha256", sample.sha256),
        ("state", f"{sample_state_name(sample.state)} (version {sample.version})"),
        ("consensus", annotation_text(present(sample, "consensus"))),
        ("agreement", format_percent(sample.agreement)),
        ("quality", format_percent(sample.quality)),
    ]
    if sample.reviewed_by:
        rows.append(("reviewed by", f"{sample.reviewed_by}: {sample.review_reason or 'no reason given'}"))
    for name, value in rows:
        grid.add_row(*cells(name, value))
    labels = Table("annotator", "label", "labeled at", title="labels")
    for by in sample.labels:
        labels.add_row(
            *cells(by.annotator, annotation_text(by.annotation), format_time(present(by, "labeled_at")))
        )
    return Group(grid, labels)


def review_line(sample: datasets_pb2.Sample) -> str:
    """`ds-1:ab12  verified by bob  version 5` after a review."""
    by = f" by {sample.reviewed_by}" if sample.reviewed_by else ""
    return f"{sample.sample_id}  {sample_state_name(sample.state)}{by}  version {sample.version}"


def states_text(samples: Iterable[datasets_pb2.Sample]) -> str:
    """How many samples are in each state: `labeled 98 · verified 2` (states in their enum order)."""
    counts = Counter(sample.state for sample in samples)
    return " · ".join(f"{sample_state_name(state)} {counts[state]}" for state in sorted(counts)) or "none"
