"""Heartbeats to job-svc: liveness, capacity and the dispatches running here (which renews their leases)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import torch
from grpc import aio

from modelyard.v1 import jobs_pb2, jobs_pb2_grpc

log = logging.getLogger(__name__)

_CALL_TIMEOUT_S = 5.0
_MAX_BACKOFF_S = 5.0
_FALLBACK_INTERVAL_S = 10.0  # when job-svc answers a TTL of 0


def gpu_names(device: str | None) -> list[str]:
    """Names of the CUDA devices this trainer may use; empty on CPU-only trainers or with device `cpu`."""
    if device == "cpu" or not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]


SendHeartbeat = Callable[[jobs_pb2.HeartbeatRequest], Awaitable[jobs_pb2.HeartbeatResponse]]


def heartbeat_rpc(job_svc: aio.Channel) -> SendHeartbeat:
    """`TrainerService.Heartbeat` on job-svc's channel, each call bounded by a timeout."""
    stub = jobs_pb2_grpc.TrainerServiceStub(job_svc)

    async def send(request: jobs_pb2.HeartbeatRequest) -> jobs_pb2.HeartbeatResponse:
        response: jobs_pb2.HeartbeatResponse = await stub.Heartbeat(request, timeout=_CALL_TIMEOUT_S)
        return response

    return send


class Heartbeats:
    """Calls `TrainerService.Heartbeat` every lease_ttl_s / 3, and at once when `wake` is set.

    A failed heartbeat (job-svc not up yet, restarting) is logged and retried with
    backoff; it never ends the worker.
    """

    def __init__(self, send: SendHeartbeat, request: Callable[[], jobs_pb2.HeartbeatRequest]) -> None:
        self._send, self._request = send, request
        self.wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Heartbeat until `stop` is set."""
        backoff, beating = 0.1, False
        while not stop.is_set():
            self.wake.clear()
            try:
                response = await self._send(self._request())
            except aio.AioRpcError as error:
                log.warning(
                    "heartbeat failed (%s: %s); retrying in %.1f s",
                    error.code().name,
                    error.details(),
                    backoff,
                )
                wait, backoff, beating = backoff, min(backoff * 2, _MAX_BACKOFF_S), False
            else:
                if not beating:
                    log.info("heartbeating to job-svc every %.1f s", response.lease_ttl_s / 3)
                wait = response.lease_ttl_s / 3 if response.lease_ttl_s > 0 else _FALLBACK_INTERVAL_S
                backoff, beating = 0.1, True
            await self._sleep(wait, stop)

    async def _sleep(self, seconds: float, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
