"""The consensus rule: which label a sample gets from its annotators, how much they agree, its quality.

Each annotator counts once, with their latest label of the sample.

**Classification.** The consensus is the class with the most votes (a plurality), and the agreement
is the share of annotators who voted for it. When two or more classes tie for the most votes there is
no consensus (no label): another annotator (the reviewer may label it too) must break the tie; the
agreement is still the top share (e.g. 1 of 2 → 0.5). A single annotator's class is the consensus,
agreement 1.0.

**Detection.** Two annotations agree by the F1 score of a one-to-one matching of their boxes: pairs
of boxes of the same class with IoU (intersection over union) ≥ 0.5 are matched greedily, highest
IoU first, each box at most once; F1 = 2 × matches / (boxes of one + boxes of the other). Two empty
annotations ("nothing to detect") agree fully (1.0); an empty one and a non-empty one not at all (0.0).
The consensus is the medoid: the annotation with the highest mean agreement with all the others,
ties going to the annotator whose name sorts first (by code point), so the result is deterministic.
Its mean is the agreement. A single annotator's boxes are the consensus, agreement 1.0.

**Task none** takes no labels, so it has no consensus: (no label, agreement 0.0).

**Quality** of a sample, 0..1: 0 when a reviewer rejected it; otherwise
agreement × review factor (approved 1.0, not yet reviewed 0.5) × annotator confidence (0 or 1
annotator 0.8, 2 annotators 0.9, 3 or more 1.0). It only grows with agreement, with approval and with
the number of annotators. A sample of task none has nothing to agree on, so its review alone decides:
callers pass agreement 1.0 with full confidence (3 annotators), i.e. approved 1.0, not yet reviewed 0.5.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from modelyard_events.schemas.datasets import AnnotationData, BoxData

MIN_MATCH_IOU = 0.5
REVIEW_FACTOR = {"approved": 1.0, None: 0.5}
CONFIDENCE_BY_ANNOTATORS = {0: 0.8, 1: 0.8, 2: 0.9}  # 3 or more: 1.0


@dataclass(frozen=True)
class Consensus:
    """A sample's consensus label (None when there is none), agreement in 0..1, annotators counted."""

    annotation: AnnotationData | None
    agreement: float
    annotators: int


def consensus(task: str, labels: Mapping[str, AnnotationData]) -> Consensus:
    """The consensus of the annotators' latest labels (annotator → label) by the rule above."""
    if not labels or task == "none":
        return Consensus(None, 0.0, len(labels) if task == "none" else 0)
    if task == "classification":
        return _classification_consensus(labels)
    return _detection_consensus(labels)


def _classification_consensus(labels: Mapping[str, AnnotationData]) -> Consensus:
    votes = Counter(label.class_name for label in labels.values())
    ranked = votes.most_common()
    top_class, top_votes = ranked[0]
    agreement = top_votes / len(labels)
    tied = len(ranked) > 1 and ranked[1][1] == top_votes
    if tied or top_class is None:
        return Consensus(None, agreement, len(labels))
    return Consensus(AnnotationData(class_name=top_class), agreement, len(labels))


def _detection_consensus(labels: Mapping[str, AnnotationData]) -> Consensus:
    annotators = sorted(labels)
    if len(annotators) == 1:
        return Consensus(labels[annotators[0]], 1.0, 1)
    mean_agreement = {
        name: sum(
            box_agreement(labels[name].boxes, labels[other].boxes) for other in annotators if other != name
        )
        / (len(annotators) - 1)
        for name in annotators
    }
    # max() keeps the first of equals, and annotators are sorted: ties go to the first name
    medoid = max(annotators, key=lambda name: mean_agreement[name])
    return Consensus(labels[medoid], min(1.0, mean_agreement[medoid]), len(annotators))


def box_agreement(first: Sequence[BoxData], second: Sequence[BoxData]) -> float:
    """F1 of a greedy one-to-one matching (same class, IoU ≥ 0.5) of two box lists; both empty = 1.0."""
    if not first and not second:
        return 1.0
    candidates = sorted(
        (
            (-overlap, i, j)
            for i, a in enumerate(first)
            for j, b in enumerate(second)
            if a.class_name == b.class_name and (overlap := iou(a, b)) >= MIN_MATCH_IOU
        )
    )
    matched_first: set[int] = set()
    matched_second: set[int] = set()
    for _, i, j in candidates:
        if i not in matched_first and j not in matched_second:
            matched_first.add(i)
            matched_second.add(j)
    return 2 * len(matched_first) / (len(first) + len(second))


def iou(a: BoxData, b: BoxData) -> float:
    """Intersection over union of two boxes' areas (0 when they do not overlap)."""
    overlap_w = max(0.0, min(a.x + a.width, b.x + b.width) - max(a.x, b.x))
    overlap_h = max(0.0, min(a.y + a.height, b.y + b.height) - max(a.y, b.y))
    intersection = overlap_w * overlap_h
    union = a.width * a.height + b.width * b.height - intersection
    return intersection / union if union > 0 else 0.0


def quality_score(agreement: float, review: Literal["approved", "rejected"] | None, annotators: int) -> float:
    """The sample's quality in 0..1 by the formula above; ValueError for agreement outside 0..1."""
    if not 0.0 <= agreement <= 1.0:
        raise ValueError(f"agreement must be within 0..1; got {agreement}")
    if annotators < 0:
        raise ValueError(f"annotators must be ≥ 0; got {annotators}")
    if review == "rejected":
        return 0.0
    confidence = CONFIDENCE_BY_ANNOTATORS.get(annotators, 1.0)
    return agreement * REVIEW_FACTOR[review] * confidence
