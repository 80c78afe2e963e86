"""`yard datasets review`: approve or reject one sample after seeing its labels, or approve in bulk.

One sample: GetSample shows the labels and the consensus, then ReviewSample names the version that
was shown, so a label added in between makes the review fail (ABORTED) instead of approving what the
reviewer never saw. In bulk (`--dataset D --all-labeled --approve`), see dataset_bulk_review.
"""

from __future__ import annotations

from typing import Annotated

import grpc
import typer
from grpc import aio

from modelyard.v1 import datasets_pb2
from modelyard_cli.commands.dataset_bulk_review import approve_agreed
from modelyard_cli.commands.options import JsonFlag
from modelyard_cli.connection import DatasetSvc
from modelyard_cli.invocation import call_dataset_svc, output_for
from modelyard_cli.output import ERROR_EXIT_CODE, Output, message_dict
from modelyard_cli.render.samples import review_line, sample_details


def review(
    ctx: typer.Context,
    sample_id: Annotated[
        str | None,
        typer.Argument(
            metavar="SAMPLE_ID", help="The sample's id (leave out with --all-labeled).", show_default=False
        ),
    ] = None,
    approve: Annotated[bool, typer.Option("--approve", help="Verify the consensus label.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Keep the sample out of versions.")] = False,
    reason: Annotated[str, typer.Option(help="Why (required to reject); recorded for audit.")] = "",
    dataset: Annotated[str | None, typer.Option(help="With --all-labeled: the dataset.")] = None,
    all_labeled: Annotated[
        bool, typer.Option("--all-labeled", help="Approve every labeled sample of --dataset that agrees.")
    ] = False,
    min_agreement: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="With --all-labeled: the least agreement to approve.")
    ] = 0.0,
    concurrency: Annotated[int, typer.Option(min=1, help="With --all-labeled: reviews in flight.")] = 16,
    as_json: JsonFlag = False,
) -> None:
    """Review one sample (--approve, or --reject --reason), or approve all agreed labeled samples."""
    if approve == reject:
        raise typer.BadParameter("give one of --approve or --reject")
    out = output_for(ctx, as_json)
    if all_labeled or dataset:
        if not (all_labeled and dataset) or sample_id or reject:
            raise typer.BadParameter(
                "bulk review is `--dataset DATASET --all-labeled --approve`, without a sample"
            )
        _review_all(ctx, out, dataset, min_agreement, concurrency, reason)
        return
    if sample_id is None:
        raise typer.BadParameter("give a SAMPLE_ID, or --dataset DATASET --all-labeled")
    if reject and not reason.strip():
        raise typer.BadParameter("--reject needs --reason (it is recorded for the annotators and the audit)")
    decision = datasets_pb2.REVIEW_DECISION_APPROVE if approve else datasets_pb2.REVIEW_DECISION_REJECT
    _review_one(ctx, out, sample_id, decision, reason)


def _review_one(
    ctx: typer.Context, out: Output, sample_id: str, decision: datasets_pb2.ReviewDecision, reason: str
) -> None:
    shown: list[datasets_pb2.Sample] = []
    reviewed: datasets_pb2.Sample = call_dataset_svc(
        ctx,
        lambda svc: review_as_seen(svc, sample_id, decision, reason, out, shown),
        advice=lambda error: moved_on_advice(error, sample_id, shown),
    )
    if out.as_json:
        out.document(message_dict(reviewed))
    else:
        out.show(review_line(reviewed))


async def review_as_seen(
    svc: DatasetSvc,
    sample_id: str,
    decision: datasets_pb2.ReviewDecision,
    reason: str,
    out: Output,
    shown: list[datasets_pb2.Sample],
) -> datasets_pb2.Sample:
    """Show the sample as it is now, then review that version of it; `shown` gets what was shown."""
    sample: datasets_pb2.Sample = await svc.datasets.GetSample(datasets_pb2.SampleRef(sample_id=sample_id))
    shown.append(sample)
    if not out.as_json:
        out.show(sample_details(sample))
    request = datasets_pb2.ReviewSampleRequest(
        sample_id=sample_id, decision=decision, reason=reason, expected_version=sample.version
    )
    reviewed: datasets_pb2.Sample = await svc.datasets.ReviewSample(request)
    return reviewed


def moved_on_advice(error: aio.AioRpcError, sample_id: str, shown: list[datasets_pb2.Sample]) -> list[str]:
    """For ABORTED: someone changed the sample after it was shown; nothing was recorded."""
    if error.code() is not grpc.StatusCode.ABORTED or not shown:
        return []
    return [
        f"another reviewer or annotator changed {sample_id} after version {shown[-1].version} was shown; "
        f"your review was not recorded. Re-run `yard datasets review {sample_id} …` to see its new state."
    ]


def _review_all(
    ctx: typer.Context, out: Output, dataset_id: str, min_agreement: float, concurrency: int, reason: str
) -> None:
    reason = reason or f"bulk approval of labeled samples with agreement >= {min_agreement:.2f}"
    tally = call_dataset_svc(
        ctx,
        lambda svc: approve_agreed(svc, dataset_id, min_agreement, concurrency, reason, out.progress_console),
    )
    if out.as_json:
        out.document({"dataset_id": dataset_id, **tally.document()})
    else:
        out.lines(tally.lines(min_agreement))
    if tally.failures:
        raise typer.Exit(ERROR_EXIT_CODE)
