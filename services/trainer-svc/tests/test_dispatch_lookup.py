"""trainer-svc's question to job-svc, whose a dispatch is: answers and failures as the servicer needs them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from grpc import aio

from modelyard.v1 import jobs_pb2, jobs_pb2_grpc
from modelyard_events.domain_errors import InvalidArgument, InvalidFields, NotFound, PermissionDenied
from modelyard_events.schemas.jobs import DispatchRecord
from modelyard_grpc import DependencyUnavailable, channel, serving
from modelyard_trainer.dispatches import GrpcDispatchLookup

KNOWN = {
    "dsp-1": jobs_pb2.Dispatch(
        job_id="job-1",
        dispatch_id="dsp-1",
        attempt=2,
        trainer_id="t-1",
        org_id="org-1",
        event_id="ev-1",
        correlation_id="corr-1",
    ),
    "dsp-2": jobs_pb2.Dispatch(  # a job of no organization
        job_id="job-1",
        dispatch_id="dsp-2",
        attempt=3,
        trainer_id="t-2",
        event_id="ev-2",
        correlation_id="corr-1",
    ),
}


class JobSvcAnswers(jobs_pb2_grpc.TrainerServiceServicer):
    """job-svc's GetDispatch as the lookup sees it: the known dispatches, or a set refusal."""

    def __init__(self, refusal: Exception | None = None) -> None:
        self.refusal = refusal

    async def GetDispatch(self, request: jobs_pb2.DispatchRef, context: object) -> jobs_pb2.Dispatch:  # noqa: N802
        if self.refusal is not None:
            raise self.refusal
        if request.job_id != "job-1" or request.dispatch_id not in KNOWN:
            raise NotFound(f"job {request.job_id} has no dispatch {request.dispatch_id}")
        return KNOWN[request.dispatch_id]


class OlderJobSvc(jobs_pb2_grpc.TrainerServiceServicer):
    """A job-svc from before GetDispatch: the RPC is UNIMPLEMENTED, as gRPC answers a method it lacks."""

    async def GetDispatch(self, request: jobs_pb2.DispatchRef, context: Any) -> jobs_pb2.Dispatch:  # noqa: N802
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        raise AssertionError("abort raises")


@asynccontextmanager
async def lookup_of(answers: jobs_pb2_grpc.TrainerServiceServicer) -> AsyncIterator[GrpcDispatchLookup]:
    async with (
        serving(
            [(jobs_pb2_grpc.add_TrainerServiceServicer_to_server, answers)],
            service_names=("modelyard.v1.TrainerService",),
            grace_s=0,
        ) as server,
        channel(f"127.0.0.1:{server.port}") as ch,
    ):
        yield GrpcDispatchLookup(ch, timeout_s=5)


async def test_a_known_dispatch_comes_back_with_or_without_an_organization_and_an_unknown_one_is_none() -> (
    None
):
    async with lookup_of(JobSvcAnswers()) as lookup:
        known = await lookup.dispatch("job-1", "dsp-1")
        of_no_org = await lookup.dispatch("job-1", "dsp-2")
        unknown = await lookup.dispatch("job-1", "dsp-3")

    assert known == DispatchRecord("job-1", "dsp-1", 2, "t-1", "org-1", "ev-1", "corr-1")
    assert of_no_org == DispatchRecord("job-1", "dsp-2", 3, "t-2", None, "ev-2", "corr-1")
    assert unknown is None


async def test_ids_job_svc_refuses_are_the_reports_invalid_argument() -> None:
    refusal = InvalidFields({"job_id": "contains a NUL character: remove it"})
    async with lookup_of(JobSvcAnswers(refusal)) as lookup:
        with pytest.raises(InvalidArgument, match="NUL") as caught:
            await lookup.dispatch("job\x001", "dsp-1")

    assert caught.value.field == "reports[0].data_json"


@pytest.mark.parametrize(
    ("job_svc", "fix"),
    [
        (JobSvcAnswers(PermissionDenied("auditors only")), "renew trainer-svc's MODELYARD_TOKEN_FILE"),
        (
            OlderJobSvc(),
            "cannot confirm dispatch dsp-1 of job job-1: upgrade job-svc first",
        ),
    ],
    ids=["token-refused", "job-svc-without-GetDispatch"],
)
async def test_an_operators_fix_is_logged_and_the_worker_retries(
    job_svc: jobs_pb2_grpc.TrainerServiceServicer, fix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with lookup_of(job_svc) as lookup:
        with caplog.at_level(logging.ERROR), pytest.raises(DependencyUnavailable):
            await lookup.dispatch("job-1", "dsp-1")

    assert fix in caplog.text


async def test_an_unreachable_job_svc_is_retryable() -> None:
    async with aio.insecure_channel("127.0.0.1:9") as ch:
        with pytest.raises(
            DependencyUnavailable, match="job-svc could not confirm dispatch dsp-1 of job job-1"
        ):
            await GrpcDispatchLookup(ch, timeout_s=2).dispatch("job-1", "dsp-1")
