"""Datasets as the Datasets pages show them: labeling and review progress, versions, readiness checks."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.v1 import datasets_pb2
from modelyard_console.values import format_bytes, format_time


@dataclass(frozen=True, slots=True)
class DatasetView:
    """One dataset's line: its counts and how far labeling and review have come."""

    dataset_id: str
    name: str
    org_id: str
    ai_module: str
    environment: str
    status: str
    task: str
    classes: str
    samples: int
    size: str
    unlabeled: int
    labeled: int
    verified: int
    rejected: int
    labeled_percent: float  # labeled or reviewed, of all samples
    reviewed_percent: float  # verified or rejected, of all samples
    latest_version: int
    created_by: str
    description: str


@dataclass(frozen=True, slots=True)
class CheckView:
    """One readiness check: passed or not, and what was measured (and what to do)."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class VersionView:
    """One published version."""

    version: int
    uri: str
    samples: int
    size: str
    split: str
    manifest_sha256: str
    published_by: str
    published_at: str
    ready: bool


def enum_word(name: str, prefix: str) -> str:
    """`DATASET_STATUS_ACTIVE` → `active`."""
    return name.removeprefix(prefix).lower()


def dataset_view(dataset: datasets_pb2.Dataset) -> DatasetView:
    """The view of `dataset` as ListDatasets or GetDataset returned it."""
    counts = dataset.counts
    total = counts.samples or 1
    return DatasetView(
        dataset_id=dataset.dataset_id, name=dataset.name, org_id=dataset.org_id, ai_module=dataset.ai_module,
        environment=enum_word(datasets_pb2.Environment.Name(dataset.environment), "ENVIRONMENT_"),
        status=enum_word(datasets_pb2.DatasetStatus.Name(dataset.status), "DATASET_STATUS_"),
        task=enum_word(datasets_pb2.LabelTask.Name(dataset.label_schema.task), "LABEL_TASK_"),
        classes=", ".join(dataset.label_schema.classes) or "-",
        samples=counts.samples, size=format_bytes(counts.bytes), unlabeled=counts.unlabeled,
        labeled=counts.labeled, verified=counts.verified, rejected=counts.rejected,
        labeled_percent=100 * (counts.labeled + counts.verified + counts.rejected) / total,
        reviewed_percent=100 * (counts.verified + counts.rejected) / total,
        latest_version=dataset.latest_version, created_by=dataset.created_by, description=dataset.description,
    )  # fmt: skip


def checks_view(report: datasets_pb2.ReadinessReport) -> list[CheckView]:
    """The report's checks, failed ones first (they say what to do)."""
    checks = [CheckView(c.name, c.passed, c.detail) for c in report.checks]
    return sorted(checks, key=lambda c: c.passed)


def version_view(version: datasets_pb2.DatasetVersion) -> VersionView:
    """The view of one published version."""
    split = version.split
    return VersionView(
        version=version.version, uri=version.uri, samples=version.samples, size=format_bytes(version.bytes),
        split=f"train {split.train} · val {split.val} · test {split.test}",
        manifest_sha256=version.manifest_sha256, published_by=version.published_by,
        published_at=format_time(version.published_at), ready=version.readiness.ready,
    )  # fmt: skip
