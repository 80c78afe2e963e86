"""A sample's row in the views, folded from its events in memory (pure: no database here).

The views load the rows a run of sample events touches, fold every event into them here, and write
each changed row once; the state before and after tells which dataset count moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from modelyard_dataset.domain.consensus import consensus, quality_score
from modelyard_events.db import rows_json
from modelyard_events.schemas.datasets import AnnotationData, SampleApproved, SampleLabeled, SampleRejected

SampleEvent = SampleLabeled | SampleApproved | SampleRejected


@dataclass(frozen=True)
class SampleRow:
    """The mutable columns of one `samples` row."""

    sample_id: str
    dataset_id: str
    task: str
    state: str
    labels: dict[str, AnnotationData] = field(default_factory=dict)
    consensus: AnnotationData | None = None
    agreement: float = 0.0
    quality: float = 0.0
    reviewed_by: str = ""
    review_reason: str = ""
    version: int = 0

    @classmethod
    def from_db(cls, row: Any) -> SampleRow:
        """A row as selected (labels and consensus are jsonb)."""
        return cls(
            sample_id=row.sample_id,
            dataset_id=row.dataset_id,
            task=row.task,
            state=row.state,
            labels={k: AnnotationData.model_validate(v) for k, v in row.labels.items()},
            consensus=AnnotationData.model_validate(row.consensus) if row.consensus is not None else None,
            agreement=row.agreement,
            quality=row.quality,
            reviewed_by=row.reviewed_by,
            review_reason=row.review_reason,
            version=row.version,
        )

    def as_record(self) -> dict[str, Any]:
        """The row as a JSON record for json_to_recordset."""
        return {
            "sample_id": self.sample_id,
            "state": self.state,
            "labels": {k: v.model_dump(mode="json") for k, v in self.labels.items()},
            "consensus": self.consensus.model_dump(mode="json") if self.consensus else None,
            "agreement": self.agreement,
            "quality": self.quality,
            "reviewed_by": self.reviewed_by,
            "review_reason": self.review_reason,
            "version": self.version,
        }


def fold(row: SampleRow, event: SampleEvent, stream_version: int) -> SampleRow:
    """The row after one more of its sample's events."""
    if isinstance(event, SampleLabeled):
        labels = {**row.labels, event.annotator: event.annotation}
        agreed = consensus(row.task, labels)
        agreement = agreed.agreement if row.task != "none" else 1.0
        return replace(
            row,
            state="labeled",
            labels=labels,
            consensus=agreed.annotation,
            agreement=agreement,
            quality=quality_score(agreement, None, agreed.annotators),
            reviewed_by="",
            review_reason="",
            version=stream_version,
        )
    if isinstance(event, SampleApproved):
        return replace(
            row,
            state="verified",
            consensus=event.consensus or row.consensus,
            agreement=event.agreement,
            quality=event.quality,
            reviewed_by=event.reviewer,
            review_reason=event.reason,
            version=stream_version,
        )
    return replace(
        row,
        state="rejected",
        quality=0.0,
        reviewed_by=event.reviewer,
        review_reason=event.reason,
        version=stream_version,
    )


def records_json(rows: list[SampleRow]) -> str:
    """Rows as the JSON array one UPDATE … FROM json_to_recordset reads."""
    return rows_json([row.as_record() for row in rows])
