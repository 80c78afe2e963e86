"""trainer-svc's question to job-svc, whose a dispatch is: answers and failures as the servicer needs them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from grpc import aio

from modelyard.v1 import jobs_pb2, jobs_pb2_grpc
from modelyard_events.domain_errors import NotFound, PermissionDenied
from modelyard_grpc import DependencyFailed, DependencyUnavailable, channel, serving
from modelyard_trainer.dispatches import Dispatch, GrpcDispatchLookup

KNOWN = jobs_pb2.Dispatch(job_id="job-1", dispatch_id="dsp-1", attempt=2, trainer_id="t-1", org_id="org-1")


class JobSvcAnswers(jobs_pb2_grpc.TrainerServiceServicer):
    """job-svc's GetDispatch as the lookup sees it: one known dispatch, or a set refusal."""

    def __init__(self, refusal: Exception | None = None) -> None:
        self.refusal = refusal

    async def GetDispatch(self, request: jobs_pb2.DispatchRef, context: object) -> jobs_pb2.Dispatch:  # noqa: N802
        if self.refusal is not None:
            raise self.refusal
        if (request.job_id, request.dispatch_id) != (KNOWN.job_id, KNOWN.dispatch_id):
            raise NotFound(f"job {request.job_id} has no dispatch {request.dispatch_id}")
        return KNOWN


@asynccontextmanager
async def lookup_of(answers: JobSvcAnswers) -> AsyncIterator[GrpcDispatchLookup]:
    async with (
        serving(
            [(jobs_pb2_grpc.add_TrainerServiceServicer_to_server, answers)],
            service_names=("modelyard.v1.TrainerService",),
            grace_s=0,
        ) as server,
        channel(f"127.0.0.1:{server.port}") as ch,
    ):
        yield GrpcDispatchLookup(ch, timeout_s=5)


async def test_a_known_dispatch_comes_back_and_an_unknown_one_is_none() -> None:
    async with lookup_of(JobSvcAnswers()) as lookup:
        known = await lookup.dispatch("job-1", "dsp-1")
        unknown = await lookup.dispatch("job-1", "dsp-2")

    assert known == Dispatch("job-1", "dsp-1", 2, "t-1", "org-1")
    assert unknown is None


async def test_a_refused_token_is_an_operators_fix_naming_trainer_svcs_token() -> None:
    async with lookup_of(JobSvcAnswers(PermissionDenied("auditors only"))) as lookup:
        with pytest.raises(DependencyFailed, match="job-svc refused trainer-svc's token"):
            await lookup.dispatch("job-1", "dsp-1")


async def test_an_unreachable_job_svc_is_retryable() -> None:
    async with aio.insecure_channel("127.0.0.1:9") as ch:
        with pytest.raises(
            DependencyUnavailable, match="job-svc could not confirm dispatch dsp-1 of job job-1"
        ):
            await GrpcDispatchLookup(ch, timeout_s=2).dispatch("job-1", "dsp-1")
