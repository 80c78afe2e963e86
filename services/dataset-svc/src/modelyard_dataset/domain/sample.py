"""The Sample aggregate: one sample's labels (one per annotator) and its review.

States: unlabeled → labeled (a label arrives) → verified (approved) | rejected. A new label reopens a
reviewed sample: it is labeled again and needs a new review. Approving needs a consensus label (see
consensus.py), except on datasets whose schema has no labels (task `none`), whose samples are approved
as they are. Reviews are decided on the version the reviewer looked at; the handler appends at that
version, so of two reviewers racing on one sample exactly one wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

from modelyard_dataset.domain.consensus import Consensus, consensus, quality_score
from modelyard_events.domain_errors import IllegalTransition, InvalidArgument
from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.datasets import AnnotationData, SampleApproved, SampleLabeled, SampleRejected

REASON_MAX_CHARS = 1000


class SampleState(StrEnum):
    """Where a sample is in labeling and review."""

    UNLABELED = "unlabeled"
    LABELED = "labeled"
    VERIFIED = "verified"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Sample:
    """One sample's labeling history folded into its current state (`task` is its dataset's)."""

    sample_id: str
    dataset_id: str
    task: str
    version: int = 0
    labels: Mapping[str, AnnotationData] = field(default_factory=dict)  # annotator → latest label
    review: SampleApproved | SampleRejected | None = None

    @classmethod
    def rebuild(cls, sample_id: str, dataset_id: str, task: str, events: Iterable[DomainEvent]) -> Sample:
        """The sample after its stored events (an empty stream is an unlabeled sample)."""
        sample = cls(sample_id, dataset_id, task)
        for event in events:
            sample = sample.apply(event)
        return sample

    @property
    def state(self) -> SampleState:
        """Unlabeled, labeled, verified or rejected."""
        if isinstance(self.review, SampleApproved):
            return SampleState.VERIFIED
        if isinstance(self.review, SampleRejected):
            return SampleState.REJECTED
        return SampleState.LABELED if self.labels else SampleState.UNLABELED

    @property
    def approval(self) -> SampleApproved | None:
        """The review that verified the sample (with the label it froze), if it is verified."""
        return self.review if isinstance(self.review, SampleApproved) else None

    @property
    def consensus(self) -> Consensus:
        """The consensus of the annotators' latest labels (docs/datasets.md, "Consensus")."""
        return consensus(self.task, self.labels)

    @property
    def quality(self) -> float:
        """0..1 from agreement, annotator count and the review (docs/datasets.md, "Quality")."""
        review: Literal["approved", "rejected"] | None = None
        if self.state is SampleState.VERIFIED:
            review = "approved"
        elif self.state is SampleState.REJECTED:
            review = "rejected"
        return self._quality(review)

    def _quality(self, review: Literal["approved", "rejected"] | None) -> float:
        if self.task == "none":  # nothing to agree on: the review alone decides
            return quality_score(1.0, review, 0)
        agreed = self.consensus
        return quality_score(agreed.agreement, review, agreed.annotators)

    # ---- commands -------------------------------------------------------------------------------

    def label(self, annotator: str, annotation: AnnotationData) -> list[DomainEvent]:
        """SampleLabeled (the annotation was checked against the schema); nothing if it is unchanged."""
        if self.labels.get(annotator) == annotation and self.review is None:
            return []
        return [
            SampleLabeled(
                sample_id=self.sample_id,
                dataset_id=self.dataset_id,
                annotator=annotator,
                annotation=annotation,
            )
        ]

    def approve(self, reviewer: str, reason: str) -> list[DomainEvent]:
        """SampleApproved with the consensus label, or IllegalTransition saying what is missing."""
        self._check_reviewable("approve")
        agreed = self.consensus
        if self.task != "none" and agreed.annotation is None:
            raise IllegalTransition(
                f"sample {self.sample_id} has no consensus label: its {agreed.annotators} annotators "
                "disagree without a majority; add a label to break the tie, or reject it"
            )
        return [
            SampleApproved(
                sample_id=self.sample_id,
                dataset_id=self.dataset_id,
                reviewer=reviewer,
                reason=_checked_reason(reason, required=False),
                consensus=agreed.annotation,
                agreement=1.0 if self.task == "none" else agreed.agreement,
                quality=self._quality("approved"),
            )
        ]

    def reject(self, reviewer: str, reason: str) -> list[DomainEvent]:
        """SampleRejected; the reason is required (it is the audit trail of why)."""
        self._check_reviewable("reject")
        return [
            SampleRejected(
                sample_id=self.sample_id,
                dataset_id=self.dataset_id,
                reviewer=reviewer,
                reason=_checked_reason(reason, required=True),
            )
        ]

    def _check_reviewable(self, verb: str) -> None:
        state = self.state
        if state is SampleState.UNLABELED and self.task != "none":
            raise IllegalTransition(
                f"sample {self.sample_id} has no label yet, so there is nothing to {verb}; "
                "label it first (yard datasets label)"
            )
        if state in (SampleState.VERIFIED, SampleState.REJECTED):
            by = self.review.reviewer if self.review else "?"
            raise IllegalTransition(
                f"sample {self.sample_id} is already {state.value} (by {by}); "
                "a new label reopens it for review"
            )

    # ---- state ----------------------------------------------------------------------------------

    def apply(self, event: DomainEvent) -> Sample:
        """The sample after one more event (never fails)."""
        moved = replace(self, version=self.version + 1)
        if isinstance(event, SampleLabeled):
            return replace(moved, labels={**self.labels, event.annotator: event.annotation}, review=None)
        if isinstance(event, SampleApproved | SampleRejected):
            return replace(moved, review=event)
        return moved


def _checked_reason(reason: str, *, required: bool) -> str:
    text = reason.strip()
    if required and not text:
        raise InvalidArgument("reason", "say why the sample is rejected (it is kept in the audit log)")
    if len(text) > REASON_MAX_CHARS:
        raise InvalidArgument("reason", f"must be at most {REASON_MAX_CHARS} characters; got {len(text)}")
    return text
