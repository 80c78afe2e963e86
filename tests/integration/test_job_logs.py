"""GetJobLogs / FollowJobLogs refusals: forged lines (refused by trainer-svc, and kept out of the
job's logs by job-svc when a hostile trainer-svc pod writes them anyway), bad pages, another
organization's job.

The lines of a real run, paged and followed, are checked in test_training_jobs.py (the digits job).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
import pytest
from sqlalchemy import text

from modelyard.v1 import jobs_pb2, jobs_pb2_grpc, trainer_pb2, trainer_pb2_grpc
from modelyard_devstack.platform import Platform
from modelyard_devstack.processes import eventually
from modelyard_events.canonical import canonical_json
from modelyard_events.db import create_engine
from modelyard_events.envelope import Actor, CommandContext
from modelyard_events.schemas.training import RUN_STREAM, TRAINER_EVENTS
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_grpc import channel
from tests.integration.job_client import JobClient

pytestmark = pytest.mark.integration


async def _code_of(
    services: Platform, token: str, request: jobs_pb2.JobLogsRequest
) -> tuple[grpc.StatusCode, str]:
    async with channel(services.job_target, token) as ch:
        try:
            await jobs_pb2_grpc.QueryServiceStub(ch).GetJobLogs(request)
        except grpc.aio.AioRpcError as error:
            return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


async def test_lines_a_trainer_writes_about_a_job_it_was_not_dispatched_are_not_the_jobs(
    services: Platform, jobs: JobClient, fresh_org: str, digits_uri: str
) -> None:
    job = await jobs.create(fresh_org, digits_uri)
    dispatch_id = f"dsp-forged-{uuid.uuid4().hex[:8]}"
    line = {
        "at": datetime.now(UTC).isoformat(),
        "level": "ERROR",
        "logger": "x",
        "message": "your model is unsafe",
    }
    report = {
        "job_id": job.job_id,
        "attempt": 1,
        "dispatch_id": dispatch_id,
        "trainer_id": "t-mallory",
        "lines": [line],
        "dropped": 0,
    }
    forged = trainer_pb2.ReportEvent(type="TrainingLogged", data_json=canonical_json(report))
    # A trainer with a valid token cannot open a stream for a dispatch job-svc never made: trainer-svc
    # asks job-svc (GetDispatch) first.
    async with channel(services.trainer_target, services.token(("trainer",), subject="t-mallory")) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await trainer_pb2_grpc.TrainerReportsStub(ch).AppendReports(
                trainer_pb2.AppendReportsRequest(
                    dispatch_id=dispatch_id,
                    expected_version=0,
                    reports=[forged],
                    org_id=fresh_org,
                    correlation_id="forged-lines",
                )
            )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"job-svc made no dispatch {dispatch_id} of job {job.job_id}" in (refused.value.details() or "")
    # A hostile trainer-svc pod (its store, its signing key) writes the line anyway: job-svc still
    # keeps it out of the job's logs, since it never dispatched the job to t-mallory.
    engine = create_engine(services.infra.database_url)
    trainer_log = PostgresEventStore(engine, "trainer", signer=services.signers["trainer"])
    try:
        logged = TRAINER_EVENTS.class_of("TrainingLogged").model_validate(report)
        actor = Actor(subject="t-mallory", roles=("trainer",))
        await trainer_log.append(RUN_STREAM, dispatch_id, 0, [logged], CommandContext(actor=actor))

        async def kept() -> bool:  # the views hold the line (so the read below is not just early)
            async with engine.connect() as conn:
                found = await conn.execute(
                    text("SELECT 1 FROM job_views.job_logs WHERE dispatch_id = :d"), {"d": dispatch_id}
                )
                return found.first() is not None

        await eventually(kept, timeout_s=60, what="the forged line in the views")
    finally:
        await trainer_log.close()
        await engine.dispose()

    page = await jobs.queries.GetJobLogs(jobs_pb2.JobLogsRequest(job_id=job.job_id))

    assert list(page.lines) == []  # job-svc never dispatched this job to t-mallory


async def test_bad_pages_are_invalid_arguments_naming_the_field(
    services: Platform, jobs: JobClient, fresh_org: str, digits_uri: str
) -> None:
    job = await jobs.create(fresh_org, digits_uri)
    token = services.token()

    for request, field in [
        (jobs_pb2.JobLogsRequest(job_id=job.job_id, page_size=5000), "page_size"),
        (jobs_pb2.JobLogsRequest(job_id=job.job_id, page_size=-1), "page_size"),
        (jobs_pb2.JobLogsRequest(job_id=job.job_id, after_cursor=-5), "after_cursor"),
        (jobs_pb2.JobLogsRequest(job_id=job.job_id, attempt=-1), "attempt"),
        (jobs_pb2.JobLogsRequest(), "job_id"),
    ]:
        code, details = await _code_of(services, token, request)
        assert (code, field in details) == (grpc.StatusCode.INVALID_ARGUMENT, True), details
    code, _ = await _code_of(services, token, jobs_pb2.JobLogsRequest(job_id="job-nope"))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_only_the_jobs_organization_and_auditors_read_its_logs(
    services: Platform, jobs: JobClient, fresh_org: str, digits_uri: str
) -> None:
    job = await jobs.create(fresh_org, digits_uri)
    request = jobs_pb2.JobLogsRequest(job_id=job.job_id)

    own = await _code_of(services, services.token(("org_admin",), org_id=fresh_org), request)
    other = await _code_of(services, services.token(("org_admin",), org_id="acme"), request)
    auditor = await _code_of(services, services.token(("auditor",), subject="aud-1"), request)

    assert (own[0], other[0], auditor[0]) == (
        grpc.StatusCode.OK,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.OK,
    )
    async with channel(services.job_target, services.token(("org_admin",), org_id="acme")) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in jobs_pb2_grpc.QueryServiceStub(ch).FollowJobLogs(request):
                pass
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
