"""The one error mapping: every domain error to its status, unary and mid-stream, nothing leaked."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc import aio
from grpc_support import status_of
from typing_extensions import override

from modelyard.v1 import jobs_pb2, jobs_pb2_grpc
from modelyard_events.domain_errors import (
    IllegalTransition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
)
from modelyard_events.errors import ConcurrencyConflict, SourceUnavailable, StoreBusy
from modelyard_grpc import channel, field_violations, serving
from modelyard_grpc.errors import code_for

FAILURES: dict[str, tuple[Exception, grpc.StatusCode, str]] = {
    "invalid": (
        InvalidArgument("hyperparameters.lr", "must be positive"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "hyperparameters.lr: must be positive",
    ),
    "missing": (NotFound("job j-1 does not exist"), grpc.StatusCode.NOT_FOUND, "job j-1 does not exist"),
    "illegal": (
        IllegalTransition("job j-1 is completed; only queued or running jobs can be paused"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "job j-1 is completed; only queued or running jobs can be paused",
    ),
    "conflict": (
        ConcurrencyConflict("j-1", 3, 4),
        grpc.StatusCode.ABORTED,
        "stream 'j-1' is at version 4, not the expected 3: reload it and retry the command",
    ),
    "denied": (PermissionDenied("only super_admin approves"), grpc.StatusCode.PERMISSION_DENIED, ""),
    "quota": (QuotaExceeded("10 jobs a month on Enterprise"), grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
    "busy": (StoreBusy("the append lock was not granted"), grpc.StatusCode.UNAVAILABLE, ""),
    "source": (
        SourceUnavailable("ReadEvents failed: UNAVAILABLE: connection refused"),
        grpc.StatusCode.UNAVAILABLE,
        "ReadEvents failed: UNAVAILABLE: connection refused",
    ),
}


class FailingJobService(jobs_pb2_grpc.JobServiceServicer):
    """GetJob fails with FAILURES[job_id]; WatchJob sends one update first."""

    @override
    async def GetJob(
        self, request: jobs_pb2.JobRef, context: aio.ServicerContext[object, object]
    ) -> jobs_pb2.Job:
        if request.job_id == "abort":
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, "aborted by the servicer")
        if request.job_id == "bug":
            raise RuntimeError("connection string postgres://admin:hunter2@db")
        raise FAILURES[request.job_id][0]

    @override
    async def WatchJob(
        self, request: jobs_pb2.WatchJobRequest, context: object
    ) -> AsyncIterator[jobs_pb2.JobUpdate]:
        yield jobs_pb2.JobUpdate(job=jobs_pb2.Job(job_id=request.job_id))
        raise FAILURES[request.job_id][0]


@pytest.fixture(scope="module")
async def stub() -> AsyncIterator[jobs_pb2_grpc.JobServiceStub]:
    registration = [(jobs_pb2_grpc.add_JobServiceServicer_to_server, FailingJobService())]
    async with (
        serving(registration, service_names=["modelyard.v1.JobService"], grace_s=0) as server,
        channel(f"127.0.0.1:{server.port}") as ch,
    ):
        yield jobs_pb2_grpc.JobServiceStub(ch)


async def _get_job_error(stub: jobs_pb2_grpc.JobServiceStub, job_id: str) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as refused:
        await stub.GetJob(jobs_pb2.JobRef(job_id=job_id))
    return refused.value


@pytest.mark.parametrize("case", sorted(FAILURES))
async def test_each_domain_error_has_its_status_and_message(
    stub: jobs_pb2_grpc.JobServiceStub, case: str
) -> None:
    error, code, message = FAILURES[case]
    assert status_of(await _get_job_error(stub, case)) == (code, message or str(error))


@pytest.mark.parametrize("case", sorted(FAILURES))
async def test_an_error_in_the_middle_of_a_stream_ends_it_with_the_same_status(
    stub: jobs_pb2_grpc.JobServiceStub, case: str
) -> None:
    call = stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=case))
    first = await call.read()
    with pytest.raises(aio.AioRpcError) as refused:
        await call.read()
    assert first.job.job_id == case  # type: ignore[union-attr]
    assert refused.value.code() == FAILURES[case][1]


async def test_an_invalid_argument_names_the_field_in_the_rich_status(
    stub: jobs_pb2_grpc.JobServiceStub,
) -> None:
    error = await _get_job_error(stub, "invalid")
    assert field_violations(error) == [("hyperparameters.lr", "must be positive")]


async def test_other_errors_carry_no_field_violations(stub: jobs_pb2_grpc.JobServiceStub) -> None:
    assert field_violations(await _get_job_error(stub, "missing")) == []


async def test_an_unexpected_error_is_internal_and_leaks_nothing(
    stub: jobs_pb2_grpc.JobServiceStub, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="modelyard_grpc.errors"):
        code, details = status_of(await _get_job_error(stub, "bug"))
    assert code == grpc.StatusCode.INTERNAL
    assert "hunter2" not in details
    reference = details.split("reference ")[1].split(")")[0]
    [record] = [r for r in caplog.records if reference in r.getMessage()]
    assert record.exc_info is not None
    assert "hunter2" in str(record.exc_info[1])


async def test_a_servicers_own_abort_passes_through(stub: jobs_pb2_grpc.JobServiceStub) -> None:
    error = await _get_job_error(stub, "abort")
    assert status_of(error) == (grpc.StatusCode.OUT_OF_RANGE, "aborted by the servicer")


def test_a_subclass_of_a_domain_error_maps_like_its_base() -> None:
    class JobNotFound(NotFound):
        pass

    assert code_for(JobNotFound("job j-9")) == grpc.StatusCode.NOT_FOUND
    assert code_for(KeyError("x")) == grpc.StatusCode.INTERNAL
