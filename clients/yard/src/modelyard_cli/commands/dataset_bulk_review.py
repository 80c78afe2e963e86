"""`yard datasets review --dataset D --all-labeled --approve`: approve every labeled sample whose
annotators agree.

The labeled samples are listed first, all pages, and reviewed afterwards: approving moves a sample
out of the LABELED state, so reviewing while paging could shift later pages under the reader. Each
approval names the version that was listed, so a sample relabeled in the meantime is refused
(ABORTED) and counted as such rather than approved unseen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc import aio
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from modelyard.v1 import datasets_pb2
from modelyard_cli.commands.sample_pages import all_samples
from modelyard_cli.connection import DatasetSvc

SHOWN_FAILURES = 5


@dataclass(frozen=True, slots=True)
class Candidate:
    """What a bulk review keeps of a listed sample."""

    sample_id: str
    version: int
    agreement: float
    has_consensus: bool


@dataclass(slots=True)
class BulkReviewTally:
    """What happened to each labeled sample: approved, skipped (and why), aborted, failed."""

    approved: int = 0
    without_consensus: int = 0
    below_agreement: int = 0
    aborted: int = 0
    failures: list[str] = field(default_factory=list)

    def lines(self, min_agreement: float) -> list[str]:
        """The summary for people."""
        lines = [
            f"approved {self.approved}",
            f"skipped {self.without_consensus + self.below_agreement} "
            f"({self.without_consensus} without consensus, {self.below_agreement} below agreement "
            f"{min_agreement:.2f})",
        ]
        if self.aborted:
            lines.append(f"aborted {self.aborted} (changed by someone else meanwhile; re-run to review them)")
        if self.failures:
            lines.append(f"failed {len(self.failures)}:")
            lines += [f"  {failure}" for failure in self.failures[:SHOWN_FAILURES]]
        return lines

    def document(self) -> dict[str, Any]:
        """The summary as a JSON object."""
        return {
            "approved": self.approved, "skipped_without_consensus": self.without_consensus,
            "skipped_below_agreement": self.below_agreement, "aborted": self.aborted,
            "failed": len(self.failures), "failures": self.failures,
        }  # fmt: skip


async def approve_agreed(
    svc: DatasetSvc, dataset_id: str, min_agreement: float, concurrency: int, reason: str, console: Console
) -> BulkReviewTally:
    """Approve, `concurrency` at a time, each labeled sample whose consensus has agreement ≥ `min_agreement`.

    The tally counts every listed sample once.
    """
    request = datasets_pb2.ListSamplesRequest(
        dataset_id=dataset_id, states=[datasets_pb2.SAMPLE_STATE_LABELED]
    )
    listed = [_candidate(sample) async for sample in all_samples(svc, request)]
    tally = BulkReviewTally()
    chosen = []
    for candidate in listed:
        if not candidate.has_consensus:
            tally.without_consensus += 1
        elif candidate.agreement < min_agreement:
            tally.below_agreement += 1
        else:
            chosen.append(candidate)
    slots = asyncio.Semaphore(concurrency)
    with _review_meter(console, len(chosen)) as reviewed:

        async def review_one(candidate: Candidate) -> None:
            async with slots:
                await _approve(svc, candidate, reason, tally)
            reviewed()

        await asyncio.gather(*(review_one(candidate) for candidate in chosen))
    return tally


def _candidate(sample: datasets_pb2.Sample) -> Candidate:
    return Candidate(sample.sample_id, sample.version, sample.agreement, sample.HasField("consensus"))


async def _approve(svc: DatasetSvc, candidate: Candidate, reason: str, tally: BulkReviewTally) -> None:
    request = datasets_pb2.ReviewSampleRequest(
        sample_id=candidate.sample_id, decision=datasets_pb2.REVIEW_DECISION_APPROVE, reason=reason,
        expected_version=candidate.version,
    )  # fmt: skip
    try:
        await svc.datasets.ReviewSample(request)
    except aio.AioRpcError as error:
        if error.code() is grpc.StatusCode.ABORTED:
            tally.aborted += 1
        else:
            tally.failures.append(f"{candidate.sample_id}: {error.code().name}: {error.details()}")
        return
    tally.approved += 1


@contextmanager
def _review_meter(console: Console, total: int) -> Iterator[Callable[[], None]]:
    """A transient bar over the approvals, drawn only on a terminal; yields "one more done"."""
    progress = Progress(
        TextColumn("reviewing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )  # fmt: skip
    task = progress.add_task("review", total=total)
    with progress:
        yield lambda: progress.advance(task)
