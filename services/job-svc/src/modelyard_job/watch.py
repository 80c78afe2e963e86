"""WatchJob: the job now, then one update per change the views announce, until it finishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from modelyard.v1 import jobs_pb2
from modelyard_job.convert import epoch_to_proto, job_to_proto, state_to_proto
from modelyard_job.job_reads import JobReads
from modelyard_job.notifications import Notice, ViewChanges
from modelyard_job.projections.rows import FINISHED_STATES, JobRow

_IDLE_RECHECK_S = 15.0  # a notice lost with a dropped LISTEN connection is noticed this late at worst


async def watch_job(reads: JobReads, changes: ViewChanges, job_id: str) -> AsyncIterator[jobs_pb2.JobUpdate]:
    """Updates of one job: its state first, then epochs, progress and state changes as they happen.

    Subscribes before the first read, so no change between the read and the subscription is lost;
    notices that pile up are coalesced into one read.
    """
    with changes.subscription(job_id) as notices:
        row = await reads.visible_row(job_id)
        yield jobs_pb2.JobUpdate(job=await _message(reads, row), state_changed=state_to_proto(row.state))
        epochs_sent = (row.attempt, row.epochs_done)
        while row.state not in FINISHED_STATES:
            kinds = await _next_kinds(notices)
            previous, row = row, await reads.visible_row(job_id)
            async for update in _updates(reads, previous, row, epochs_sent, kinds):
                yield update
            epochs_sent = (
                row.attempt,
                max(row.epochs_done, epochs_sent[1] if row.attempt == epochs_sent[0] else 0),
            )


async def _message(reads: JobReads, row: JobRow) -> jobs_pb2.Job:
    async with reads.engine.connect() as conn:
        last = await reads.reader.epoch(conn, row.job_id, row.attempt, row.epochs_done)
    return job_to_proto(row, last)


async def _next_kinds(notices: asyncio.Queue[Notice]) -> set[str]:
    try:
        first = await asyncio.wait_for(notices.get(), _IDLE_RECHECK_S)
    except TimeoutError:
        return {"resync"}
    kinds = {first[1]}
    while not notices.empty():
        kinds.add(notices.get_nowait()[1])
    return kinds


async def _updates(
    reads: JobReads, previous: JobRow, row: JobRow, epochs_sent: tuple[int, int], kinds: set[str]
) -> AsyncIterator[jobs_pb2.JobUpdate]:
    job = await _message(reads, row)
    first_new = epochs_sent[1] + 1 if row.attempt == epochs_sent[0] else 1
    async with reads.engine.connect() as conn:
        for number in range(first_new, row.epochs_done + 1):
            epoch = await reads.reader.epoch(conn, row.job_id, row.attempt, number)
            if epoch is not None:
                job.last_epoch.CopyFrom(epoch_to_proto(epoch))
                yield jobs_pb2.JobUpdate(job=job, epoch_completed=epoch_to_proto(epoch))
    if row.state != previous.state or row.attempt != previous.attempt:
        yield jobs_pb2.JobUpdate(job=job, state_changed=state_to_proto(row.state))
    elif kinds & {"progress", "resync"} and row.state == "running":
        progress = jobs_pb2.JobProgress(
            epoch=row.epoch,
            step=row.step,
            steps_total=row.steps_per_epoch,
            loss=row.loss or 0.0,
            samples_per_s=row.samples_per_s or 0.0,
        )
        if row.eta_s is not None:
            progress.eta_s = row.eta_s
        yield jobs_pb2.JobUpdate(job=job, progress=progress)
