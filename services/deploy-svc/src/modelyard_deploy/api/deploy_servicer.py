"""DeployService: translate protobuf ⇄ commands and reads, nothing else.

Replies to commands are built from the aggregate the command just decided (a deployment) or from
the views once they have applied the command (a rollout, whose per-wave counts come from its
deployments), so an operator never sees the state from before the command. A rollout due now is
answered once its first wave's deployments exist (the conductor is woken for it; at most
FIRST_WAVE_WAIT_S), so the reply and an immediate ListDeployments show them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from grpc import aio
from typing_extensions import override

from modelyard.v1 import deploy_pb2, deploy_pb2_grpc, events_pb2
from modelyard_deploy.adapters.job_client import JobStatusClient
from modelyard_deploy.api.convert import (
    deployment_row,
    deployment_to_proto,
    edge_line,
    rollout_row,
    rollout_to_proto,
    server_to_proto,
    statuses_from_proto,
    timestamp,
)
from modelyard_deploy.api.rollout_requests import rollout_request
from modelyard_deploy.app.commands import DeployCommands
from modelyard_deploy.domain.rollout import Rollout
from modelyard_deploy.projections.queries import DeployViewReader
from modelyard_events.domain_errors import InvalidArgument, NotFound
from modelyard_events.schemas.bounds import checked_identifier
from modelyard_events.store.ports import EventSource
from modelyard_grpc import (
    DependencyUnavailable,
    caller_of,
    current_principal,
    read_events,
    require_org_access,
)

Context = aio.ServicerContext[Any, Any]
FIRST_WAVE_WAIT_S = 5.0
_POLL_S = 0.05


class DeployServicer(deploy_pb2_grpc.DeployServiceServicer):
    """modelyard.v1.DeployService over DeployCommands, the views and job-svc's jobs."""

    def __init__(
        self,
        commands: DeployCommands,
        reader: DeployViewReader,
        log: EventSource,
        jobs: JobStatusClient,
        clock: Callable[[], datetime],
        wake_conductor: Callable[[], None] = lambda: None,
    ) -> None:
        self._commands, self._reader, self._log, self._jobs, self._clock = commands, reader, log, jobs, clock
        self._wake_conductor = wake_conductor

    # ---- rollouts ----

    @override
    async def StartRollout(
        self, request: deploy_pb2.StartRolloutRequest, context: Context
    ) -> deploy_pb2.Rollout:
        rollout = await self._commands.start_rollout(rollout_request(request), caller_of(context))
        if rollout.scheduled_at <= self._clock() and await self._first_wave_created(rollout):
            rollout = await self._commands.load_rollout(rollout.rollout_id)
        return await self._rollout_reply(rollout)

    @override
    async def GetRollout(self, request: deploy_pb2.RolloutRef, context: Context) -> deploy_pb2.Rollout:
        rollout_id = _required(request.rollout_id, "rollout_id")
        row = await self._reader.rollout(rollout_id)
        if row is None:  # started a moment ago, not in the views yet: its own stream says where it is
            try:
                row = rollout_row(await self._commands.load_rollout(rollout_id))
            except NotFound:
                raise NotFound(
                    f"rollout {rollout_id!r} does not exist; list them with yard deploy status"
                ) from None
        require_org_access(current_principal(), row.org_id)
        return rollout_to_proto(row)

    @override
    async def ListRollouts(
        self, request: deploy_pb2.ListRolloutsRequest, context: Context
    ) -> deploy_pb2.ListRolloutsResponse:
        page = await self._reader.rollouts_page(
            org_id=checked_identifier(request.org_id, "org_id") or "",
            version_id=checked_identifier(request.version_id, "version_id") or "",
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return deploy_pb2.ListRolloutsResponse(
            rollouts=[rollout_to_proto(r) for r in page.rows], next_page_token=page.next_page_token
        )

    @override
    async def CancelRollout(self, request: deploy_pb2.RolloutCommand, context: Context) -> deploy_pb2.Rollout:
        rollout = await self._commands.cancel_rollout(
            _required(request.rollout_id, "rollout_id"), request.reason, caller_of(context)
        )
        return await self._rollout_reply(rollout)

    @override
    async def RollbackRollout(
        self, request: deploy_pb2.RolloutCommand, context: Context
    ) -> deploy_pb2.Rollout:
        rollout = await self._commands.rollback_rollout(
            _required(request.rollout_id, "rollout_id"), request.reason, caller_of(context)
        )
        return await self._rollout_reply(rollout)

    # ---- deployments ----

    @override
    async def GetDeployment(
        self, request: deploy_pb2.DeploymentRef, context: Context
    ) -> deploy_pb2.Deployment:
        row = await self._reader.deployment(_required(request.deployment_id, "deployment_id"))
        if row is None:
            raise NotFound(f"deployment {request.deployment_id[:80]!r} does not exist")
        require_org_access(current_principal(), row.org_id)
        return deployment_to_proto(row)

    @override
    async def ListDeployments(
        self, request: deploy_pb2.ListDeploymentsRequest, context: Context
    ) -> deploy_pb2.ListDeploymentsResponse:
        page = await self._reader.deployments_page(
            org_id=checked_identifier(request.org_id, "org_id") or "",
            version_id=checked_identifier(request.version_id, "version_id") or "",
            server_id=checked_identifier(request.server_id, "server_id") or "",
            rollout_id=checked_identifier(request.rollout_id, "rollout_id") or "",
            statuses=statuses_from_proto(list(request.statuses)),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return deploy_pb2.ListDeploymentsResponse(
            deployments=[deployment_to_proto(d) for d in page.rows], next_page_token=page.next_page_token
        )

    @override
    async def CancelDeployment(
        self, request: deploy_pb2.DeploymentCommand, context: Context
    ) -> deploy_pb2.Deployment:
        deployment = await self._commands.cancel_deployment(
            _required(request.deployment_id, "deployment_id"),
            request.reason or "cancelled by an operator",
            caller_of(context),
        )
        return deployment_to_proto(deployment_row(deployment))

    @override
    async def RetryDeployment(
        self, request: deploy_pb2.DeploymentCommand, context: Context
    ) -> deploy_pb2.Deployment:
        deployment = await self._commands.retry_deployment(
            _required(request.deployment_id, "deployment_id"), request.reason, caller_of(context)
        )
        return deployment_to_proto(deployment_row(deployment))

    # ---- the fleet ----

    @override
    async def ListEdgeServers(
        self, request: deploy_pb2.ListEdgeServersRequest, context: Context
    ) -> deploy_pb2.ListEdgeServersResponse:
        page = await self._reader.servers_page(
            org_id=checked_identifier(request.org_id, "org_id") or "",
            environment=request.environment[:64],
            drift_only=request.drift_only,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return deploy_pb2.ListEdgeServersResponse(
            servers=[server_to_proto(s) for s in page.rows], next_page_token=page.next_page_token
        )

    @override
    async def GetEdgeServer(
        self, request: deploy_pb2.EdgeServerRef, context: Context
    ) -> deploy_pb2.EdgeServerDetail:
        org_id = _org_of(request.org_id)
        server_id = _required(request.server_id, "server_id")
        found = await self._reader.server_detail(org_id, server_id)
        if found is None:
            raise NotFound(f"edge server {server_id[:80]!r} is not registered in organization {org_id}")
        server, history = found
        return deploy_pb2.EdgeServerDetail(
            server=server_to_proto(server), history=[deployment_to_proto(d) for d in history]
        )

    @override
    async def GetMobileStatus(
        self, request: deploy_pb2.MobileStatusRequest, context: Context
    ) -> deploy_pb2.MobileStatus:
        org_id = _org_of(request.org_id)
        servers, left_out = await self._reader.fleet(org_id)
        status = deploy_pb2.MobileStatus(
            edges=[edge_line(s) for s in servers], edges_left_out=left_out, as_of=timestamp(self._clock())
        )
        try:
            jobs = await self._jobs.jobs(org_id)
        except DependencyUnavailable as error:
            status.jobs_error = str(error)
            return status
        for job in jobs:
            line = status.jobs.add(job_id=job.job_id, name=job.name, state=job.state, progress=job.progress)
            if job.updated_at is not None:
                line.updated_at.CopyFrom(timestamp(job.updated_at))
        return status

    @override
    async def ReadEvents(
        self, request: events_pb2.ReadEventsRequest, context: Context
    ) -> events_pb2.ReadEventsResponse:
        return await read_events(self._log, request)

    async def _first_wave_created(self, rollout: Rollout) -> bool:
        """Wake the conductor and wait (bounded) until the views show the first wave's deployments."""
        self._wake_conductor()
        deadline = asyncio.get_running_loop().time() + FIRST_WAVE_WAIT_S
        while asyncio.get_running_loop().time() < deadline:
            if len(await self._reader.rollout_deployments(rollout.rollout_id)) >= rollout.wave_sizes[0]:
                return True
            await asyncio.sleep(_POLL_S)
        return False

    async def _rollout_reply(self, rollout: Rollout) -> deploy_pb2.Rollout:
        """The rollout as the views have it once caught up; the aggregate's own state otherwise."""
        row = await self._reader.rollout(rollout.rollout_id) if await self._reader.caught_up(2.0) else None
        if row is None or row.state != rollout.state:
            row = rollout_row(rollout)
        return rollout_to_proto(row)


def _required(value: str, field: str) -> str:
    checked = checked_identifier(value, field)
    if not checked:
        raise InvalidArgument(field, f"name the {field.removesuffix('_id')} (its id)")
    return checked


def _org_of(requested: str) -> str:
    """The request's organization (the policy filled in an org_admin's own); auditors must name one."""
    org_id = checked_identifier(requested, "org_id") or current_principal().org_id
    if not org_id:
        raise InvalidArgument("org_id", "name the organization")
    return org_id
