"""`yard datasets describe | archive | unarchive | delete | delete-sample`: the dataset lifecycle.

Archive makes a dataset read-only (no upload, label, review or publish) until it is unarchived.
A deletion is refused while a published version a job or a model used holds the samples (the
refusal names that version and its users); otherwise the files are removed and the bytes given back
to the organization's plan. Every change records who made it and why (`--reason`); deletions ask for
confirmation unless `--yes`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.v1 import datasets_pb2
from modelyard_cli.commands.options import DatasetId, JsonFlag
from modelyard_cli.invocation import call_dataset_svc, output_for
from modelyard_cli.output import fail, message_dict

Reason = Annotated[
    str, typer.Option("--reason", help="Why; recorded in the events (audit).", show_default=False)
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
_STATUS = {
    datasets_pb2.DATASET_STATUS_DRAFT: "draft",
    datasets_pb2.DATASET_STATUS_ACTIVE: "active",
    datasets_pb2.DATASET_STATUS_ARCHIVED: "archived",
}


def describe(
    ctx: typer.Context,
    dataset_id: DatasetId,
    description: Annotated[str, typer.Argument(help="The new description.", show_default=False)],
    as_json: JsonFlag = False,
) -> None:
    """Replace a dataset's description (UpdateDataset)."""
    request = datasets_pb2.UpdateDatasetRequest(dataset_id=dataset_id, description=description)
    _show(ctx, as_json, call_dataset_svc(ctx, lambda svc: svc.datasets.UpdateDataset(request)))


def archive(
    ctx: typer.Context, dataset_id: DatasetId, reason: Reason = "", as_json: JsonFlag = False
) -> None:
    """Archive a dataset: read-only (no upload, label, review or publish) until unarchived."""
    request = datasets_pb2.DatasetLifecycleRequest(dataset_id=dataset_id, reason=_required(reason))
    _show(ctx, as_json, call_dataset_svc(ctx, lambda svc: svc.datasets.ArchiveDataset(request)))


def unarchive(
    ctx: typer.Context, dataset_id: DatasetId, reason: Reason = "", as_json: JsonFlag = False
) -> None:
    """Make an archived dataset writable again."""
    request = datasets_pb2.DatasetLifecycleRequest(dataset_id=dataset_id, reason=_required(reason))
    _show(ctx, as_json, call_dataset_svc(ctx, lambda svc: svc.datasets.UnarchiveDataset(request)))


def delete(
    ctx: typer.Context,
    dataset_id: DatasetId,
    reason: Reason = "",
    yes: Yes = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete a whole dataset: its files removed, its bytes given back (refused if a job or model used it)."""
    request = datasets_pb2.DeleteDatasetRequest(dataset_id=dataset_id, reason=_required(reason))
    _confirm(f"Delete dataset {dataset_id} and every sample file in it?", yes)
    _deleted(ctx, as_json, call_dataset_svc(ctx, lambda svc: svc.datasets.DeleteDataset(request)))


def delete_sample(
    ctx: typer.Context,
    sample_id: Annotated[str, typer.Argument(metavar="SAMPLE", help="The sample's id.", show_default=False)],
    reason: Reason = "",
    yes: Yes = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete one sample: its file removed, its bytes given back (refused if a used version holds it)."""
    request = datasets_pb2.DeleteSampleRequest(sample_id=sample_id, reason=_required(reason))
    _confirm(f"Delete sample {sample_id} and its file?", yes)
    _deleted(ctx, as_json, call_dataset_svc(ctx, lambda svc: svc.datasets.DeleteSample(request)))


def _required(reason: str) -> str:
    if not reason.strip():
        fail("error: --reason is required: say why (it is recorded in the events)")
    return reason


def _confirm(question: str, yes: bool) -> None:
    if not yes and not typer.confirm(question, err=True):
        fail("nothing was deleted", exit_code=1)


def _show(ctx: typer.Context, as_json: bool, dataset: datasets_pb2.Dataset) -> None:
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(dataset))
        return
    status = _STATUS.get(dataset.status, "unknown")
    described = f"  {dataset.description}" if dataset.description else ""
    out.show(f"{dataset.dataset_id}  {dataset.name}  {status}{described}")


def _deleted(ctx: typer.Context, as_json: bool, done: datasets_pb2.DeletionResponse) -> None:
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(done))
        return
    out.show(
        f"deleted {done.samples_deleted} sample(s) of {done.dataset_id}; {done.bytes_freed} bytes given back "
        f"(the organization now stores {done.org_bytes_used} bytes)"
    )
