"""An in-process deploy-svc for yard's tests: a grpc.aio DeployService that records every request and
answers with canned messages, and builders of edge servers, deployments and rollouts.

A watched rollout moves on by itself: `rollout_steps` holds the successive (rollout, deployments) a
rollout goes through; each GetRollout answers the next one (the last one again once there are no more),
and ListDeployments answers the deployments of the step GetRollout last gave.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from fake_loops import run_on
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio
from typing_extensions import override

from modelyard.v1 import deploy_pb2, deploy_pb2_grpc

HEARD_AT = Timestamp(seconds=1_767_225_600)  # 2026-01-01 00:00:00Z
SCHEDULED_AT = Timestamp(seconds=1_767_225_000)


def running(
    version_id: str = "mv-1", semver: str = "1.2.0", module: str = "digits"
) -> deploy_pb2.RunningModel:
    """A model `module` `semver` (`version_id`) on a server."""
    return deploy_pb2.RunningModel(ai_module=module, version_id=version_id, semantic_version=semver)


def edge_server(server_id: str = "edge-1", **fields: Any) -> deploy_pb2.EdgeServer:
    """An online server of acme in production running digits 1.2.0 as intended."""
    values: dict[str, Any] = {
        "server_id": server_id, "org_id": "acme", "environment": "production", "platform": "linux/amd64",
        "edge_version": "1.0.0", "hostname": f"{server_id}.local", "running": [running()],
        "intended": [running()], "online": True, "last_heartbeat_at": HEARD_AT,
        "free_disk_bytes": 12_500_000_000, "registered_at": SCHEDULED_AT,
    }  # fmt: skip
    values.update(fields)
    return deploy_pb2.EdgeServer(**values)


def deployment(
    server_id: str = "edge-1", status: int = deploy_pb2.DEPLOYMENT_STATUS_PENDING, **fields: Any
) -> deploy_pb2.Deployment:
    """A deployment of digits 1.3.0 (mv-2) to `server_id` in wave 1 of rollout ro-1."""
    values: dict[str, Any] = {
        "deployment_id": f"dep-{server_id}", "org_id": "acme", "server_id": server_id, "version_id": "mv-2",
        "ai_module": "digits", "semantic_version": "1.3.0", "status": status, "scheduled_at": SCHEDULED_AT,
        "max_retries": 3, "rollout_id": "ro-1", "wave": 1, "kind": "deploy", "previous_version_id": "mv-1",
        "created_by": "ada", "attempt": 1,
    }  # fmt: skip
    values.update(fields)
    return deploy_pb2.Deployment(**values)


def rollout(state: int = deploy_pb2.ROLLOUT_STATE_RUNNING, **fields: Any) -> deploy_pb2.Rollout:
    """Rollout ro-1 of digits 1.3.0 (mv-2) to three servers in waves of 1 and 2."""
    values: dict[str, Any] = {
        "rollout_id": "ro-1", "org_id": "acme", "version_id": "mv-2", "ai_module": "digits",
        "semantic_version": "1.3.0", "state": state, "kind": "deploy", "server_count": 3, "current_wave": 1,
        "waves": [
            deploy_pb2.WaveProgress(wave=1, size=1, started=True),
            deploy_pb2.WaveProgress(wave=2, size=2),
        ],
        "scheduled_at": SCHEDULED_AT, "started_by": "ada", "created_at": SCHEDULED_AT,
    }  # fmt: skip
    values.update(fields)
    return deploy_pb2.Rollout(**values)


@dataclass(frozen=True)
class Call:
    """One request the fake received, with the call's metadata."""

    method: str
    request: Any
    metadata: dict[str, str]


@dataclass
class FakeDeploySvc:
    """The canned answers of the fake DeployService, the statuses it refuses with, and every call made."""

    target: str = ""
    rollout: deploy_pb2.Rollout = field(default_factory=rollout)
    rollout_steps: list[tuple[deploy_pb2.Rollout, list[deploy_pb2.Deployment]]] = field(default_factory=list)
    rollout_pages: list[list[deploy_pb2.Rollout]] = field(default_factory=lambda: [[rollout()]])
    deployment: deploy_pb2.Deployment = field(default_factory=deployment)
    deployment_pages: list[list[deploy_pb2.Deployment]] = field(default_factory=lambda: [[deployment()]])
    server_pages: list[list[deploy_pb2.EdgeServer]] = field(default_factory=lambda: [[edge_server()]])
    server_detail: deploy_pb2.EdgeServerDetail = field(default_factory=deploy_pb2.EdgeServerDetail)
    mobile: deploy_pb2.MobileStatus = field(default_factory=deploy_pb2.MobileStatus)
    refusals: dict[str, grpc.Status] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    _step: int = -1

    def requests(self, method: str) -> list[Any]:
        """The requests `method` received, in order."""
        return [c.request for c in self.calls if c.method == method]

    async def record(self, method: str, request: Message, context: aio.ServicerContext[Any, Any]) -> None:
        """Note the call; refuse it with the status set for `method`, if any."""
        metadata = {key: str(value) for key, value in context.invocation_metadata() or ()}
        self.calls.append(Call(method, request, metadata))
        if method in self.refusals:
            await context.abort_with_status(self.refusals[method])

    def next_rollout(self) -> deploy_pb2.Rollout:
        """The next step's rollout (or `rollout` when there are no steps)."""
        if not self.rollout_steps:
            return self.rollout
        self._step = min(self._step + 1, len(self.rollout_steps) - 1)
        return self.rollout_steps[self._step][0]

    def deployment_page(self, request: Any) -> deploy_pb2.ListDeploymentsResponse:
        """The current step's deployments for a rollout's listing; else the canned pages."""
        if request.rollout_id and self.rollout_steps:
            return deploy_pb2.ListDeploymentsResponse(deployments=self.rollout_steps[max(self._step, 0)][1])
        return _page(self.deployment_pages, request, deploy_pb2.ListDeploymentsResponse, "deployments")


Response = TypeVar("Response")


def _page(pages: list[list[Any]], request: Any, response: Callable[..., Response], items: str) -> Response:
    page = int(request.page_token or 0)
    more = page + 1 < len(pages)
    return response(**{items: pages[page], "next_page_token": str(page + 1) if more else ""})


class FakeDeployService(deploy_pb2_grpc.DeployServiceServicer):
    """DeployService answering from a FakeDeploySvc."""

    def __init__(self, fake: FakeDeploySvc) -> None:
        self.fake = fake

    @override
    async def StartRollout(self, request: Any, context: Any) -> deploy_pb2.Rollout:
        await self.fake.record("StartRollout", request, context)
        return self.fake.rollout

    @override
    async def GetRollout(self, request: Any, context: Any) -> deploy_pb2.Rollout:
        await self.fake.record("GetRollout", request, context)
        return self.fake.next_rollout()

    @override
    async def ListRollouts(self, request: Any, context: Any) -> deploy_pb2.ListRolloutsResponse:
        await self.fake.record("ListRollouts", request, context)
        return _page(self.fake.rollout_pages, request, deploy_pb2.ListRolloutsResponse, "rollouts")

    @override
    async def CancelRollout(self, request: Any, context: Any) -> deploy_pb2.Rollout:
        await self.fake.record("CancelRollout", request, context)
        return self.fake.rollout

    @override
    async def RollbackRollout(self, request: Any, context: Any) -> deploy_pb2.Rollout:
        await self.fake.record("RollbackRollout", request, context)
        return self.fake.rollout

    @override
    async def GetDeployment(self, request: Any, context: Any) -> deploy_pb2.Deployment:
        await self.fake.record("GetDeployment", request, context)
        return self.fake.deployment

    @override
    async def ListDeployments(self, request: Any, context: Any) -> deploy_pb2.ListDeploymentsResponse:
        await self.fake.record("ListDeployments", request, context)
        return self.fake.deployment_page(request)

    @override
    async def CancelDeployment(self, request: Any, context: Any) -> deploy_pb2.Deployment:
        await self.fake.record("CancelDeployment", request, context)
        return self.fake.deployment

    @override
    async def RetryDeployment(self, request: Any, context: Any) -> deploy_pb2.Deployment:
        await self.fake.record("RetryDeployment", request, context)
        return self.fake.deployment

    @override
    async def ListEdgeServers(self, request: Any, context: Any) -> deploy_pb2.ListEdgeServersResponse:
        await self.fake.record("ListEdgeServers", request, context)
        return _page(self.fake.server_pages, request, deploy_pb2.ListEdgeServersResponse, "servers")

    @override
    async def GetEdgeServer(self, request: Any, context: Any) -> deploy_pb2.EdgeServerDetail:
        await self.fake.record("GetEdgeServer", request, context)
        return self.fake.server_detail

    @override
    async def GetMobileStatus(self, request: Any, context: Any) -> deploy_pb2.MobileStatus:
        await self.fake.record("GetMobileStatus", request, context)
        return self.fake.mobile


@contextmanager
def serving(fake: FakeDeploySvc, loop: asyncio.AbstractEventLoop) -> Iterator[FakeDeploySvc]:
    """`fake` served by a grpc.aio server on a free port of 127.0.0.1, on `loop` (another thread's)."""
    server = run_on(loop, _started_server(fake))
    try:
        yield fake
    finally:
        run_on(loop, server.stop(grace=None))


async def _started_server(fake: FakeDeploySvc) -> aio.Server:
    server = aio.server()
    deploy_pb2_grpc.add_DeployServiceServicer_to_server(FakeDeployService(fake), server)
    fake.target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    return server
