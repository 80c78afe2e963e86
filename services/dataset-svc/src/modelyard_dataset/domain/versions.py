"""Freezing a version: which samples it holds, their labels and splits, and how ready it is to train on.

Pure: the handler loads the dataset and its samples, this decides the manifest and the readiness report,
and the handler stores the manifest bytes and appends DatasetVersionPublished.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelyard_dataset.domain.dataset import Dataset
from modelyard_dataset.domain.readiness import (
    ReadinessPolicy,
    VerifiedSample,
    readiness_report,
    verified_sample,
)
from modelyard_dataset.domain.sample import Sample, SampleState
from modelyard_dataset.domain.splits import assign_splits
from modelyard_events.domain_errors import IllegalTransition
from modelyard_events.schemas.bounds import checked_identifier
from modelyard_events.schemas.datasets import (
    AnnotationData,
    DatasetVersionPublished,
    ReadinessCheckData,
    ReadinessData,
    SplitName,
)
from modelyard_events.schemas.manifest import DatasetManifest, ManifestSample, manifest_bytes, manifest_sha256


@dataclass(frozen=True)
class VersionRequest:
    """How to freeze: the split's seed and fractions, the family the readiness judges for."""

    seed: int
    train_fraction: float
    val_fraction: float
    family: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class StorageUse:
    """The organization's stored dataset bytes and its plan's limit (None = no limit)."""

    org_bytes: int
    limit_bytes: int | None


@dataclass(frozen=True)
class FrozenVersion:
    """A manifest, its exact bytes and hash, and the event that publishes it."""

    manifest: DatasetManifest
    data: bytes
    sha256: str
    event: DatasetVersionPublished


def verified_samples(samples: Sequence[Sample]) -> list[Sample]:
    """The approved samples, in sample id order (rejected and unreviewed ones never enter a version)."""
    return sorted((s for s in samples if s.state is SampleState.VERIFIED), key=lambda s: s.sample_id)


def working_readiness(
    dataset: Dataset,
    samples: Sequence[Sample],
    storage: StorageUse,
    policy: ReadinessPolicy,
    family: str | None,
) -> ReadinessData:
    """How ready the dataset would be if published now (splits are judged when they exist)."""
    chosen = verified_samples(samples)
    verified = [_verified(sample, None) for sample in chosen]
    report = readiness_report(
        dataset.label_schema,
        verified,
        dataset.size_bytes,
        storage.org_bytes,
        storage.limit_bytes,
        policy,
        family,
    )
    return with_media_check(report, [dataset.sample(s.sample_id).media_type for s in chosen], family)


def freeze_version(
    dataset: Dataset,
    samples: Sequence[Sample],
    request: VersionRequest,
    storage: StorageUse,
    policy: ReadinessPolicy,
    published_by: str,
) -> FrozenVersion:
    """The next version of `dataset` from its verified samples; IllegalTransition when there are none
    or the dataset is archived."""
    dataset.check_writable("publish a version of it")
    checked_identifier(request.request_id, "request_id")
    checked_identifier(request.family, "family")
    chosen = verified_samples(samples)
    if not chosen:
        raise IllegalTransition(
            f"dataset {dataset.dataset_id} has no verified samples to publish; label samples and approve "
            "them first (yard datasets label / review)"
        )
    strata = [(s.sample_id, _stratum(s)) for s in chosen]
    splits = assign_splits(strata, request.seed, request.train_fraction, request.val_fraction)
    entries = [_entry(dataset, sample, splits[sample.sample_id]) for sample in chosen]
    manifest = DatasetManifest(
        dataset_id=dataset.dataset_id,
        version=dataset.latest_version + 1,
        org_id=dataset.org_id,
        name=dataset.name,
        ai_module=dataset.ai_module,
        environment=dataset.environment,
        label_schema=dataset.label_schema,
        seed=request.seed,
        train_fraction=request.train_fraction,
        val_fraction=request.val_fraction,
        samples=entries,
    )
    data = manifest_bytes(manifest)
    verified = [_verified(sample, splits[sample.sample_id]) for sample in chosen]
    readiness = readiness_report(
        dataset.label_schema,
        verified,
        sum(entry.size_bytes for entry in entries),
        storage.org_bytes,
        storage.limit_bytes,
        policy,
        request.family,
    )
    readiness = with_media_check(readiness, [entry.media_type for entry in entries], request.family)
    split_counts = {name: sum(1 for e in entries if e.split == name) for name in ("train", "val", "test")}
    event = DatasetVersionPublished(
        dataset_id=dataset.dataset_id,
        version=manifest.version,
        org_id=dataset.org_id,
        manifest_sha256=manifest_sha256(data),
        samples=len(entries),
        size_bytes=sum(entry.size_bytes for entry in entries),
        split_counts=split_counts,
        seed=request.seed,
        train_fraction=request.train_fraction,
        val_fraction=request.val_fraction,
        readiness=readiness,
        published_by=published_by,
        family=request.family,
        request_id=request.request_id,
    )
    return FrozenVersion(manifest, data, event.manifest_sha256, event)


def _label(sample: Sample) -> AnnotationData | None:
    return sample.approval.consensus if sample.approval else None


def _stratum(sample: Sample) -> str | None:
    label = _label(sample)
    return label.class_name if label is not None else None


def _verified(sample: Sample, split: SplitName | None) -> VerifiedSample:
    agreement = sample.approval.agreement if sample.approval else 0.0
    return verified_sample(_label(sample), agreement, len(sample.labels), split)


def _entry(dataset: Dataset, sample: Sample, split: SplitName) -> ManifestSample:
    stored = dataset.sample(sample.sample_id)
    label = _label(sample)
    return ManifestSample(
        sample_id=sample.sample_id,
        filename=stored.filename,
        sha256=stored.sha256,
        size_bytes=stored.size_bytes,
        media_type=stored.media_type,
        label=label,
        split=split,
        agreement=sample.approval.agreement if sample.approval else 1.0,
    )


def with_media_check(report: ReadinessData, media_types: Sequence[str], family: str | None) -> ReadinessData:
    """The report with `media_fits_family` added when the family decodes only some kinds of file.

    An image classifier decodes images; a classification dataset may also hold videos, which it
    cannot train on, so they must not reach a job that would fail on them.
    """
    if family != "image_classifier":
        return report
    others = sorted({media for media in media_types if not media.startswith("image/")})
    check = ReadinessCheckData(
        name="media_fits_family",
        passed=not others,
        detail=(
            "every verified sample is an image"
            if not others
            else f"{family} trains on images, but verified samples include {', '.join(others)}; "
            "reject those samples or keep them in another dataset"
        ),
    )
    return report.model_copy(
        update={"checks": [*report.checks, check], "ready": report.ready and check.passed}
    )
