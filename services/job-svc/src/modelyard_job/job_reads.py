"""Reading jobs for the gRPC layer: the views, checked against the caller's organization."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard.v1 import jobs_pb2
from modelyard_events.domain_errors import InvalidArgument, NotFound
from modelyard_events.store.ports import EventStore
from modelyard_grpc import current_principal, require_org_access
from modelyard_grpc.values import timestamp
from modelyard_job.convert import job_to_proto, state_to_proto, struct_from_dict
from modelyard_job.domain import TrainingJob
from modelyard_job.projections.queries import JobViewReader, PageKey
from modelyard_job.projections.rows import JobRow

MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE = 500, 50
_CATCH_UP_WAIT_S = 3.0


class JobReads:
    """Job rows and messages as the caller may see them."""

    def __init__(self, engine: AsyncEngine, reader: JobViewReader, log: EventStore) -> None:
        self.engine, self.reader, self._log = engine, reader, log

    async def visible_row(self, job_id: str) -> JobRow:
        """The job's row; NotFound when missing, PermissionDenied outside the caller's organization.

        A job that is in the log but not yet in the views (read right after CreateJob) is waited
        for, briefly, so a client never sees its own new job missing.
        """
        row = await self._row(required_job_id(job_id))
        deadline = time.monotonic() + _CATCH_UP_WAIT_S
        while row is None and time.monotonic() < deadline and await self._in_log(job_id):
            await asyncio.sleep(0.01)  # the views apply within milliseconds; bounded by the deadline
            row = await self._row(job_id)
        if row is None:
            raise NotFound(f"job {job_id} does not exist")
        require_org_access(current_principal(), row.org_id)
        return row

    async def _row(self, job_id: str) -> JobRow | None:
        async with self.engine.connect() as conn:
            return await self.reader.job(conn, job_id)

    async def _in_log(self, job_id: str) -> bool:
        return bool(await self._log.read_stream(job_id))

    async def message(self, job_id: str) -> jobs_pb2.Job:
        """The Job message of a visible job, with its last epoch."""
        row = await self.visible_row(job_id)
        async with self.engine.connect() as conn:
            last = await self.reader.epoch(conn, job_id, row.attempt, row.epochs_done)
        return job_to_proto(row, last)

    async def messages(self, conn: AsyncConnection, rows: list[JobRow]) -> list[jobs_pb2.Job]:
        """Job messages of view rows, each with its last epoch (as GetJob shows it)."""
        last = await self.reader.last_epochs(conn, rows)
        return [job_to_proto(row, last.get(row.job_id)) for row in rows]

    async def after_command(self, job: TrainingJob) -> jobs_pb2.Job:
        """The job after a command: the views' details, with what the aggregate just decided on top.

        The views catch up a few milliseconds later; the caller must not see its own change missing.
        """
        async with self.engine.connect() as conn:
            row = await self.reader.job(conn, job.job_id)
        message = job_to_proto(row) if row is not None else _fresh(job)
        message.state = state_to_proto(job.state.value)  # type: ignore[assignment]
        message.attempt, message.priority, message.version = job.attempt, job.priority, job.version
        if job.state.value != "queued":
            message.ClearField("queue_position")
        return message


def _fresh(job: TrainingJob) -> jobs_pb2.Job:
    message = jobs_pb2.Job(
        job_id=job.job_id,
        org_id=job.org_id,
        name=job.name,
        ai_module=job.ai_module,
        family=job.family,
        dataset_uri=job.dataset_uri,
        hyperparameters=struct_from_dict(job.hyperparameters),
        epochs_total=int(job.hyperparameters.get("epochs", 0)),
        created_by=job.created_by,
        created_at=timestamp(datetime.now().astimezone()),
        updated_at=timestamp(datetime.now().astimezone()),
        kind=job.kind,
        description=job.description,
    )
    if job.model_input is not None and job.kind == "training":
        message.base_version_id = job.model_input.version_id
    elif job.model_input is not None:
        message.model_version_id = job.model_input.version_id
    return message


def required_job_id(job_id: str) -> str:
    """`job_id`, or InvalidArgument when the request left it empty."""
    if not job_id:
        raise InvalidArgument("job_id", "must name a job (e.g. job-3f2a…); list jobs with ListJobs")
    return job_id


def encode_page_token(row: JobRow) -> str:
    """An opaque token naming the last row of a page."""
    return base64.urlsafe_b64encode(json.dumps([row.created_at.isoformat(), row.job_id]).encode()).decode()


def decode_page_token(token: str) -> PageKey | None:
    """The page key of a token (None for the first page); InvalidArgument for a token we did not make."""
    if not token:
        return None
    try:
        created_at, job_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(created_at), str(job_id)
    except (ValueError, TypeError) as error:
        raise InvalidArgument("page_token", "is not a token from a previous ListJobs response") from error


def checked_page_size(size: int) -> int:
    """0 → the default; 1..500 as given; anything else is InvalidArgument."""
    if size == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"must be between 1 and {MAX_PAGE_SIZE} (0 = {DEFAULT_PAGE_SIZE})")
    return size
