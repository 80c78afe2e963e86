"""Readiness: whether a dataset (a published version, or the working set as it would publish) is fit
to train on, judged criterion by criterion over its verified (review-approved) samples.

Each check states what it measured and, when it fails, what to do. The report is ready when every
check passed; a check that does not apply (class balance for task none, the validation split of an
unpublished working set, agreement when nobody double-labeled) passes and says why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from modelyard_dataset.domain.label_schema import listing
from modelyard_events.plans import human_bytes
from modelyard_events.schemas.datasets import (
    FAMILY_LABEL_TASKS,
    AnnotationData,
    LabelSchemaData,
    ReadinessCheckData,
    ReadinessData,
    SplitName,
)

_SHOWN_CLASSES = 5


@dataclass(frozen=True)
class ReadinessPolicy:
    """The thresholds a dataset must meet to be ready."""

    min_per_class: int = 10
    min_class_balance: float = 0.1
    min_agreement: float = 0.8
    min_val_samples: int = 1


@dataclass(frozen=True)
class VerifiedSample:
    """What readiness needs of one verified sample: its class (classification), the classes of its
    boxes (detection), how much its annotators agreed and how many there were, its split (None before
    publishing)."""

    class_name: str | None
    agreement: float
    annotators: int
    split: SplitName | None
    box_classes: frozenset[str] = frozenset()


def verified_sample(
    label: AnnotationData | None, agreement: float, annotators: int, split: SplitName | None = None
) -> VerifiedSample:
    """The VerifiedSample of a sample whose consensus label is `label` (None for task none)."""
    if label is None:
        return VerifiedSample(None, agreement, annotators, split)
    box_classes = frozenset(box.class_name for box in label.boxes)
    return VerifiedSample(label.class_name, agreement, annotators, split, box_classes)


def readiness_report(
    schema: LabelSchemaData,
    verified: Sequence[VerifiedSample],
    dataset_bytes: int,
    org_bytes: int,
    org_limit_bytes: int | None,
    policy: ReadinessPolicy,
    family: str | None = None,
) -> ReadinessData:
    """Every readiness check, in a fixed order, with `ready` = all passed and verified counts per class.

    `verified_per_class` holds every schema class (zeros included): for classification the samples
    labeled with it, for detection the samples with at least one box of it.
    """
    per_class = verified_per_class(schema, verified)
    checks = [
        _verified_samples(schema, verified),
        _samples_per_class(schema, per_class, policy),
        _class_balance(schema, per_class, policy),
        _label_agreement(verified, policy),
        _validation_split(verified, policy),
        _size_within_plan(dataset_bytes, org_bytes, org_limit_bytes),
    ]
    if family is not None:
        checks.append(_family_fits_schema(schema, family))
    return ReadinessData(
        ready=all(check.passed for check in checks), checks=checks, verified_per_class=per_class
    )


def verified_per_class(schema: LabelSchemaData, verified: Sequence[VerifiedSample]) -> dict[str, int]:
    """Verified samples per class: schema classes first, in schema order, zeros included."""
    counts: Counter[str] = Counter()
    for sample in verified:
        if schema.task == "detection":
            counts.update(sample.box_classes)
        elif sample.class_name is not None:
            counts[sample.class_name] += 1
    extra = sorted(set(counts) - set(schema.classes))  # cannot happen for labels the schema checked
    return {name: counts[name] for name in [*schema.classes, *extra]}


def _check(name: str, passed: bool, detail: str) -> ReadinessCheckData:
    return ReadinessCheckData(name=name, passed=passed, detail=detail)


def _verified_samples(schema: LabelSchemaData, verified: Sequence[VerifiedSample]) -> ReadinessCheckData:
    needed = 2 if schema.task == "classification" else 1
    count = len(verified)
    measured = f"{count} verified sample{'' if count == 1 else 's'}"
    if count >= needed:
        return _check("verified_samples", True, measured)
    why = " (a classifier needs at least 2, to hold some out)" if needed == 2 else ""
    return _check(
        "verified_samples",
        False,
        f"{measured}, needs {needed}{why}; label samples and approve them in review",
    )


def _samples_per_class(
    schema: LabelSchemaData, per_class: dict[str, int], policy: ReadinessPolicy
) -> ReadinessCheckData:
    if schema.task == "none":
        return _check("samples_per_class", True, "not applicable: task none has no classes")
    short = [(name, count) for name, count in per_class.items() if count < policy.min_per_class]
    if not short:
        smallest = min(per_class, key=lambda name: per_class[name])
        return _check(
            "samples_per_class",
            True,
            f"every class has at least {policy.min_per_class} verified samples "
            f"(fewest: class {smallest!r} with {per_class[smallest]})",
        )
    described = [
        f"class {name!r} has {count} verified sample{'' if count == 1 else 's'}, needs {policy.min_per_class}"
        for name, count in short
    ]
    return _check(
        "samples_per_class",
        False,
        f"{listing(described, _SHOWN_CLASSES, '; ')}; label and approve more samples of these classes",
    )


def _class_balance(
    schema: LabelSchemaData, per_class: dict[str, int], policy: ReadinessPolicy
) -> ReadinessCheckData:
    if schema.task == "none":
        return _check("class_balance", True, "not applicable: task none has no classes")
    smallest = min(per_class, key=lambda name: per_class[name])
    largest = max(per_class, key=lambda name: per_class[name])
    if per_class[largest] == 0:
        return _check("class_balance", False, "not measurable: no class has verified samples yet")
    ratio = per_class[smallest] / per_class[largest]
    measured = (
        f"smallest class {smallest!r} has {per_class[smallest]}, largest {largest!r} has "
        f"{per_class[largest]}: ratio {ratio:.2f} (needs ≥ {policy.min_class_balance:.2f})"
    )
    if ratio >= policy.min_class_balance:
        return _check("class_balance", True, measured)
    return _check("class_balance", False, f"{measured}; label and approve more samples of {smallest!r}")


def _label_agreement(verified: Sequence[VerifiedSample], policy: ReadinessPolicy) -> ReadinessCheckData:
    measured = [sample.agreement for sample in verified if sample.annotators >= 2]
    if not measured:
        return _check("label_agreement", True, "not measured: no sample has 2 or more annotators")
    mean = sum(measured) / len(measured)
    detail = (
        f"mean agreement {mean:.2f} over {len(measured)} sample{'' if len(measured) == 1 else 's'} "
        f"with 2 or more annotators (needs ≥ {policy.min_agreement:.2f})"
    )
    if mean >= policy.min_agreement:
        return _check("label_agreement", True, detail)
    return _check(
        "label_agreement",
        False,
        f"{detail}; clarify the labeling guidelines and relabel or reject the disputed samples",
    )


def _validation_split(verified: Sequence[VerifiedSample], policy: ReadinessPolicy) -> ReadinessCheckData:
    if all(sample.split is None for sample in verified):
        return _check("validation_split", True, "computed when published")
    val = sum(1 for sample in verified if sample.split == "val")
    detail = f"{val} sample{'' if val == 1 else 's'} in the val split (needs ≥ {policy.min_val_samples})"
    if val >= policy.min_val_samples:
        return _check("validation_split", True, detail)
    return _check("validation_split", False, f"{detail}; raise val_fraction or verify more samples")


def _size_within_plan(dataset_bytes: int, org_bytes: int, org_limit_bytes: int | None) -> ReadinessCheckData:
    usage = (
        f"the organization stores {human_bytes(org_bytes)} of dataset data "
        f"(this dataset: {human_bytes(dataset_bytes)})"
    )
    if org_limit_bytes is None:
        return _check("size_within_plan", True, f"{usage}; the plan sets no limit")
    limit = f"the plan allows {human_bytes(org_limit_bytes)}"
    if org_bytes <= org_limit_bytes:
        return _check("size_within_plan", True, f"{usage}; {limit}")
    return _check(
        "size_within_plan", False, f"{usage}; {limit}: delete unused datasets or move to a larger plan"
    )


def _family_fits_schema(schema: LabelSchemaData, family: str) -> ReadinessCheckData:
    task = FAMILY_LABEL_TASKS.get(family)
    if task is None:
        known = ", ".join(FAMILY_LABEL_TASKS)
        return _check("family_fits_schema", False, f"unknown family {family!r}; choose one of {known}")
    if task == schema.task:
        return _check("family_fits_schema", True, f"{family} trains on task {task}, the dataset's task")
    return _check(
        "family_fits_schema",
        False,
        f"{family} needs a dataset of task {task}; this one is {schema.task}: "
        f"choose a family for {schema.task} or create a dataset of task {task}",
    )
