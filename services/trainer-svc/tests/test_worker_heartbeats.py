"""Heartbeats survive job-svc being away, and go out at once when a run starts or ends."""

from __future__ import annotations

import asyncio

import grpc
from grpc import aio

from modelyard.v1 import jobs_pb2
from modelyard_devstack.processes import eventually
from modelyard_trainer.worker.heartbeats import Heartbeats


class FlakyJobSvc:
    """Unavailable for the first `failures` heartbeats, then asks for the next one in 100 s."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[jobs_pb2.HeartbeatRequest] = []

    async def heartbeat(self, request: jobs_pb2.HeartbeatRequest) -> jobs_pb2.HeartbeatResponse:
        self.requests.append(request)
        if len(self.requests) <= self.failures:
            raise aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, aio.Metadata(), aio.Metadata(), details="down")
        return jobs_pb2.HeartbeatResponse(lease_ttl_s=300.0)


async def test_failed_heartbeats_are_retried_until_job_svc_answers_then_woken_ones_go_out_at_once() -> None:
    job_svc = FlakyJobSvc(failures=2)
    running: list[str] = []
    heartbeats = Heartbeats(
        job_svc.heartbeat, lambda: jobs_pb2.HeartbeatRequest(trainer_id="t", running_dispatch_ids=running)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(heartbeats.run(stop))
    try:

        async def calls(count: int) -> bool:
            return len(job_svc.requests) >= count

        await eventually(lambda: calls(3), timeout_s=10, what="a heartbeat after two failures")
        running.append("dsp-1")
        heartbeats.wake.set()
        await eventually(lambda: calls(4), timeout_s=10, what="the heartbeat of a started run")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)

    assert list(job_svc.requests[-1].running_dispatch_ids) == ["dsp-1"]
    assert not task.exception()
