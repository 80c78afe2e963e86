"""Datasets as rich tables and lines: the list, one dataset's details and counts, a published version,
a readiness report and an upload's summary."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Group
from rich.table import Table
from rich.text import Text

from modelyard.v1 import datasets_pb2
from modelyard_cli.render.dataset_values import environment_name, task_name
from modelyard_cli.render.values import MISSING, cells, format_bytes, format_time, present

PASSED_MARK = "✓"
FAILED_MARK = "✗"


def schema_text(schema: datasets_pb2.LabelSchema) -> str:
    """`classification [cat, dog]`; a task without classes is its name alone."""
    task = task_name(schema.task)
    return f"{task} [{', '.join(schema.classes)}]" if schema.classes else task


def dataset_line(dataset: datasets_pb2.Dataset) -> str:
    """One line about a dataset after a command: id, name, module, environment, schema."""
    return (
        f"{dataset.dataset_id}  {dataset.name}  module {dataset.ai_module}  "
        f"env {environment_name(dataset.environment)}  {schema_text(dataset.label_schema)}"
    )


def datasets_table(datasets: Iterable[datasets_pb2.Dataset]) -> Table:
    """One row per dataset: id, name, org, module, environment, schema, samples, bytes, latest version."""
    table = Table(
        "id", "name", "org", "module", "env", "schema", "samples", "size", "version", title="datasets"
    )
    for dataset in datasets:
        table.add_row(
            *cells(
                dataset.dataset_id,
                dataset.name,
                dataset.org_id,
                dataset.ai_module,
                environment_name(dataset.environment),
                schema_text(dataset.label_schema),
                dataset.counts.samples,
                format_bytes(dataset.counts.bytes),
                dataset.latest_version or MISSING,
            )
        )
    return table


def counts_text(counts: datasets_pb2.DatasetCounts) -> str:
    """`120 samples (3.4 MiB): 10 unlabeled · 50 labeled · 55 verified · 5 rejected`."""
    return (
        f"{counts.samples} samples ({format_bytes(counts.bytes)}): {counts.unlabeled} unlabeled · "
        f"{counts.labeled} labeled · {counts.verified} verified · {counts.rejected} rejected"
    )


def dataset_details(dataset: datasets_pb2.Dataset) -> Table:
    """Every field of one dataset worth reading, as a two-column grid."""
    rows: list[tuple[str, object]] = [
        ("dataset", dataset.dataset_id),
        ("name", dataset.name),
        ("org", dataset.org_id),
        ("module", dataset.ai_module),
        ("env", environment_name(dataset.environment)),
        ("schema", schema_text(dataset.label_schema)),
        ("counts", counts_text(dataset.counts)),
        ("latest version", dataset.latest_version or "none published"),
        ("created", f"{format_time(present(dataset, 'created_at'))} by {dataset.created_by or MISSING}"),
    ]
    return _grid(rows)


def version_details(version: datasets_pb2.DatasetVersion) -> Table:
    """A published version: number, URI, manifest SHA-256, size, split counts, seed, publisher."""
    split = version.split
    rows: list[tuple[str, object]] = [
        ("version", version.version),
        ("uri", version.uri),
        ("manifest sha256", version.manifest_sha256),
        ("samples", f"{version.samples} ({format_bytes(version.bytes)})"),
        ("split", f"train {split.train} · val {split.val} · test {split.test}"),
        ("seed", version.seed),
        ("schema", schema_text(version.label_schema)),
        (
            "published",
            f"{format_time(present(version, 'published_at'))} by {version.published_by or MISSING}",
        ),
    ]
    return _grid(rows)


def _grid(rows: list[tuple[str, object]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in rows:
        grid.add_row(*cells(label, value))
    return grid


def readiness_verdict(report: datasets_pb2.ReadinessReport) -> str:
    """`ds-1 version 2 is ready` or `… is NOT ready` (version 0 is `the working set`)."""
    which = f"version {report.version}" if report.version else "the working set"
    return f"{report.dataset_id} {which} is {'ready' if report.ready else 'NOT ready'}"


def readiness_view(report: datasets_pb2.ReadinessReport) -> Group:
    """The report: one row per check (✓/✗, name, detail), verified samples per class, the verdict."""
    checks = Table("", "check", "detail", title="readiness")
    for check in report.checks:
        mark = Text(PASSED_MARK if check.passed else FAILED_MARK, style="green" if check.passed else "red")
        checks.add_row(mark, *cells(check.name, check.detail))
    parts: list[Table | Text] = [checks]
    if report.verified_per_class:
        per_class = Table("class", "verified", title="verified samples per class")
        for name, count in sorted(report.verified_per_class.items()):
            per_class.add_row(*cells(name, count))
        parts.append(per_class)
    parts.append(Text(readiness_verdict(report), style="bold green" if report.ready else "bold red"))
    return Group(*parts)


def upload_summary(responses: Iterable[datasets_pb2.UploadSamplesResponse]) -> list[str]:
    """What the stored batches added: samples, duplicates, bytes, and the organization's usage."""
    stored = list(responses)
    added = sum(r.added for r in stored)
    duplicates = sum(r.duplicates for r in stored)
    lines = [
        f"added {added} samples ({format_bytes(sum(r.bytes_added for r in stored))}), "
        f"{duplicates} duplicates (already in the dataset)"
    ]
    if stored:
        lines.append(f"organization storage {usage_text(stored[-1])}")
    return lines


def usage_text(response: datasets_pb2.UploadSamplesResponse) -> str:
    """`3 GB of 10 GB (30.0%)`, or `3 GB (no limit)`."""
    used = format_bytes(response.org_bytes_used)
    limit = present(response, "org_bytes_limit")
    if limit is None:
        return f"{used} (no limit)"
    share = f" ({100 * response.org_bytes_used / limit:.1f}%)" if limit else ""
    return f"{used} of {format_bytes(limit)}{share}"


def batch_line(index: int, batches: int, response: datasets_pb2.UploadSamplesResponse) -> str:
    """`batch 2/3 stored: 500 files, 498 added, 2 duplicates, 12.3 MiB new`."""
    return (
        f"batch {index}/{batches} stored: {len(response.samples)} files, {response.added} added, "
        f"{response.duplicates} duplicates, {format_bytes(response.bytes_added)} new"
    )
