"""`yard datasets upload`: stream files into a dataset, one UploadSamples call per batch of files.

Each call sends `start` (dataset, upload id), then per file a `file` header (base name, size) and its
bytes in chunks of at most CHUNK_BYTES. The server stores a batch whole or not at all, so when it
refuses one, the batches before it stay stored and the ones after it are not sent. The upload ids are
`<prefix>-<batch number>`: re-running with the same `--upload-id-prefix` repeats the same idempotent
calls.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from grpc import aio

from modelyard.v1 import datasets_pb2
from modelyard_cli.commands.options import DatasetId, JsonFlag
from modelyard_cli.commands.upload_progress import UploadMeter
from modelyard_cli.connection import DATASET_SVC, DatasetSvc
from modelyard_cli.invocation import call_dataset_svc, cli_state, output_for
from modelyard_cli.output import ERROR_EXIT_CODE, Output, fail, message_dict
from modelyard_cli.render.datasets import upload_summary
from modelyard_cli.rpc_errors import describe_rpc_error
from modelyard_cli.upload_plan import (
    FileProvenance,
    UploadFile,
    UploadPlan,
    UploadPlanError,
    plan_upload,
    with_provenance,
)

CHUNK_BYTES = 1024 * 1024


class UnreadableFile(Exception):
    """A planned file could not be read while it was being sent."""


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    """The batches the server stored, in order, and what stopped the upload (if anything did)."""

    stored: list[datasets_pb2.UploadSamplesResponse]
    refusal: aio.AioRpcError | None = None
    unreadable: UnreadableFile | None = None


def upload(
    ctx: typer.Context,
    dataset_id: DatasetId,
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATH...", help="Files or folders (walked recursively).", show_default=False),
    ],
    batch_files: Annotated[
        int, typer.Option(min=1, help="Files per UploadSamples call (each stored whole).")
    ] = 500,
    upload_id_prefix: Annotated[
        str | None, typer.Option(help="Upload ids are <prefix>-<batch>; reuse one to repeat an upload.")
    ] = None,
    provenance: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.csv",
            help="Provenance sheet: filename,source_camera_id,captured_at,metadata (a JSON object), "
            "one row per file; checked before anything is sent.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Upload files as samples, in batches, with a progress bar; exit code 2 when a batch is refused."""
    try:
        plan = plan_upload(paths)
        if provenance is not None:
            plan = with_provenance(plan, provenance)
    except UploadPlanError as error:
        fail(f"error: {error}")
    out = output_for(ctx, as_json)
    if plan.skipped_links:
        out.hint(f"skipped {len(plan.skipped_links)} symlink(s) pointing outside their folder")
    prefix = upload_id_prefix or f"up-{uuid.uuid4().hex[:12]}"
    outcome = _send_with_progress(ctx, out, dataset_id, plan, batch_files, prefix)
    _report(ctx, out, outcome, prefix, len(plan.batches(batch_files)))


def _send_with_progress(
    ctx: typer.Context, out: Output, dataset_id: str, plan: UploadPlan, batch_files: int, prefix: str
) -> UploadOutcome:
    batches = plan.batches(batch_files)
    with UploadMeter(out.progress_console, plan.total_bytes, len(plan.files), len(batches)) as meter:
        return call_dataset_svc(ctx, lambda svc: send_batches(svc, dataset_id, batches, prefix, meter))


async def send_batches(
    svc: DatasetSvc, dataset_id: str, batches: list[list[UploadFile]], prefix: str, meter: UploadMeter
) -> UploadOutcome:
    """Send the batches in order, each as one UploadSamples call; stop at the first refused one."""
    stored: list[datasets_pb2.UploadSamplesResponse] = []
    for index, batch in enumerate(batches, start=1):
        unreadable: list[UnreadableFile] = []
        requests = upload_requests(dataset_id, f"{prefix}-{index}", batch, meter, unreadable)
        try:
            response: datasets_pb2.UploadSamplesResponse = await svc.datasets.UploadSamples(requests)
        except aio.AioRpcError as error:
            return UploadOutcome(stored, refusal=error)
        except asyncio.CancelledError:
            if not unreadable:
                raise
            return UploadOutcome(stored, unreadable=unreadable[0])  # grpc cancelled the call: nothing stored
        stored.append(response)
        meter.batch_stored(index, response)
    return UploadOutcome(stored)


async def upload_requests(
    dataset_id: str,
    upload_id: str,
    files: list[UploadFile],
    meter: UploadMeter,
    unreadable: list[UnreadableFile],
) -> AsyncIterator[datasets_pb2.UploadSamplesRequest]:
    """One call's messages: `start`, then per file its `file` header and its `chunk`s.

    A file that cannot be read is added to `unreadable` and ends the messages with the error, which
    makes grpc cancel the call. The server may see a cancelled stream end like a finished one; the
    announced file count and each file's declared size make it refuse such a cut-off upload.
    """
    start = datasets_pb2.UploadStart(dataset_id=dataset_id, upload_id=upload_id, files=len(files))
    yield datasets_pb2.UploadSamplesRequest(start=start)
    for upload_file in files:
        header = datasets_pb2.UploadFile(filename=upload_file.filename, size_bytes=upload_file.size_bytes)
        if upload_file.provenance is not None:
            _with_provenance(header, upload_file.provenance)
        yield datasets_pb2.UploadSamplesRequest(file=header)
        try:
            async for chunk in file_chunks(upload_file.path):
                yield datasets_pb2.UploadSamplesRequest(chunk=chunk)
                meter.sent(len(chunk))
        except UnreadableFile as error:
            unreadable.append(error)
            raise
        meter.file_sent()


def _with_provenance(header: datasets_pb2.UploadFile, provenance: FileProvenance) -> None:
    if provenance.source_camera_id:
        header.source_camera_id = provenance.source_camera_id
    if provenance.captured_at is not None:
        header.captured_at.FromDatetime(provenance.captured_at)
    header.metadata.update(provenance.metadata)


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    """The file's bytes in pieces of at most CHUNK_BYTES, read off the event loop."""
    try:
        with path.open("rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk
    except OSError as error:
        raise UnreadableFile(f"cannot read {path} while sending it: {error.strerror or error}") from error


def _report(ctx: typer.Context, out: Output, outcome: UploadOutcome, prefix: str, batches: int) -> None:
    if out.as_json:
        out.document({"upload_id_prefix": prefix, "batches": [message_dict(r) for r in outcome.stored]})
    else:
        out.lines(upload_summary(outcome.stored))
    stopped = len(outcome.stored) + 1
    earlier = (
        f"{len(outcome.stored)} earlier batch(es) of this upload were already stored; fix the files named "
        "above and upload again (stored files come back as duplicates)"
    )
    if outcome.refusal is not None:
        target = cli_state(ctx).connection.dataset_target
        fail(
            f"batch {stopped}/{batches} (upload id {prefix}-{stopped}) was refused; nothing of it was stored",
            *describe_rpc_error(outcome.refusal, target, DATASET_SVC),
            earlier,
            exit_code=ERROR_EXIT_CODE,
        )
    if outcome.unreadable is not None:
        fail(
            f"batch {stopped}/{batches} was cancelled; nothing of it was stored",
            f"error: {outcome.unreadable}",
            earlier,
            exit_code=ERROR_EXIT_CODE,
        )
