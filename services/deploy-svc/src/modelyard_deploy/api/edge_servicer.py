"""EdgeService: what an edge agent calls, as its own server (the policy confines the server id).

The organization is always the token's: an edge token names the server's organization, and a
token without one is refused (INVALID_ARGUMENT), whoever holds it.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from grpc import aio
from typing_extensions import override

from modelyard.v1 import deploy_pb2, deploy_pb2_grpc
from modelyard_deploy.adapters.liveness import EdgeHeartbeat, EdgeLiveness
from modelyard_deploy.api.assignments import assignments
from modelyard_deploy.api.convert import (
    STATUS_FROM_PROTO,
    deployment_row,
    deployment_to_proto,
    health_report_from_proto,
    running_from_proto,
    server_to_proto,
)
from modelyard_deploy.app.commands import DeployCommands
from modelyard_deploy.domain.deployment_reports import AGENT_STATUSES, AgentReport
from modelyard_deploy.domain.edge_server import EdgeFacts, EdgeServer
from modelyard_deploy.projections.queries import DeployViewReader
from modelyard_deploy.projections.rows import ModelOnServer, ServerRow
from modelyard_events.domain_errors import InvalidArgument, InvalidFields, NotFound
from modelyard_events.notifications import ViewChanges
from modelyard_events.schemas.bounds import checked_identifier
from modelyard_events.schemas.deploy import RunningModel
from modelyard_grpc import caller_of, current_principal

Context = aio.ServicerContext[Any, Any]
DEFAULT_ENVIRONMENT = "production"
_SEMVER = re.compile(r"^\d{1,9}\.\d{1,9}\.\d{1,9}([-+][0-9A-Za-z.+-]{1,40})?$")
# A heartbeat saying what the last one said is not compared with the views again before this long:
# the views only change what a server runs through its own reports, and a check a minute catches
# anything else (a view rebuilt, another replica's record) without a query per heartbeat.
RECHECK_S = 60.0
_MAX_REMEMBERED = 200_000


@dataclass(frozen=True)
class _Said:
    """What a server's heartbeat said, and when this replica last checked it against the views."""

    running: dict[str, str]
    platform: str
    edge_version: str
    checked_at: float

    def same_as(self, earlier: _Said | None) -> bool:
        return (
            earlier is not None
            and self.checked_at - earlier.checked_at < RECHECK_S
            and (self.running, self.platform, self.edge_version)
            == (earlier.running, earlier.platform, earlier.edge_version)
        )


class EdgeServicer(deploy_pb2_grpc.EdgeServiceServicer):
    """modelyard.v1.EdgeService over DeployCommands, the views, liveness and change notices."""

    def __init__(
        self,
        commands: DeployCommands,
        reader: DeployViewReader,
        liveness: EdgeLiveness,
        changes: ViewChanges,
        clock: Callable[[], datetime],
        heartbeat_interval_s: float,
    ) -> None:
        self._commands, self._reader, self._liveness = commands, reader, liveness
        self._changes, self._clock, self._interval_s = changes, clock, heartbeat_interval_s
        self._said: dict[tuple[str, str], _Said] = {}  # (org, server) → its last heartbeat, checked

    @override
    async def Register(
        self, request: deploy_pb2.RegisterEdgeRequest, context: Context
    ) -> deploy_pb2.RegisterEdgeResponse:
        org_id = _org_id()
        facts = EdgeFacts(
            server_id=request.server_id,
            environment=request.environment or DEFAULT_ENVIRONMENT,
            platform=request.platform,
            edge_version=_edge_version(request.edge_version),
            hostname=request.hostname,
        )
        running = running_from_proto(request.running)
        server = await self._commands.register_edge(org_id, facts, caller_of(context), running)
        now = self._clock()
        await self._liveness.record(EdgeHeartbeat(org_id, server.server_id, now, 0, ""))
        return deploy_pb2.RegisterEdgeResponse(
            server=server_to_proto(_server_row(server, running, now)), heartbeat_interval_s=self._interval_s
        )

    @override
    async def Heartbeat(
        self, request: deploy_pb2.EdgeHeartbeat, context: Context
    ) -> deploy_pb2.EdgeHeartbeatResponse:
        org_id, server_id = _org_id(), request.server_id
        active = checked_identifier(request.active_deployment_id, "active_deployment_id") or ""
        running = running_from_proto(request.running)
        said = _Said(
            {m.ai_module: m.version_id for m in running},
            request.platform,
            request.edge_version,
            time.monotonic(),
        )
        key = (org_id, server_id)
        if not said.same_as(self._said.get(key)):
            await self._reconcile(org_id, server_id, running, said, context)
            if len(self._said) >= _MAX_REMEMBERED:
                self._said.clear()
            self._said[key] = said
        self._liveness.note(
            EdgeHeartbeat(org_id, server_id, self._clock(), max(request.free_disk_bytes, 0), active)
        )
        cancelled = await self._reader.cancelled_among(org_id, server_id, [active] if active else [])
        return deploy_pb2.EdgeHeartbeatResponse(
            heartbeat_interval_s=self._interval_s, cancelled_deployment_ids=cancelled
        )

    async def _reconcile(
        self, org_id: str, server_id: str, running: list[RunningModel], said: _Said, context: Context
    ) -> None:
        """Record what the heartbeat says where it differs from what deploy-svc knows: the models it
        serves (EdgeModelSwitched), its platform or edge version (registered again: an agent upgraded
        or moved to other hardware keeps heartbeating); NotFound for a server never registered."""
        facts, known = await self._facts(org_id, server_id)
        if said.running != known:
            await self._commands.report_running(org_id, server_id, running, caller_of(context))
        changed = {
            name: value
            for name, value in (("platform", said.platform), ("edge_version", said.edge_version))
            if value and value != getattr(facts, name)
        }
        if changed:
            if "edge_version" in changed:
                _edge_version(changed["edge_version"])
            updated = dataclasses.replace(facts, **changed)
            await self._commands.register_edge(org_id, updated, caller_of(context))

    async def _facts(self, org_id: str, server_id: str) -> tuple[EdgeFacts, dict[str, str]]:
        """The server's facts and what it runs: from the views (one query), or from its stream when the
        views do not show it yet; NotFound when it never registered."""
        found = await self._reader.edge_facts(org_id, server_id)
        if found is not None:
            return found
        server = await self._commands.load_edge_server(org_id, server_id)
        if server is None:
            raise NotFound(f"edge server {server_id} is not registered; call Register first")
        return server.facts, dict(server.running)

    @override
    async def StreamAssignments(
        self, request: deploy_pb2.AssignmentsRequest, context: Context
    ) -> AsyncIterator[deploy_pb2.Assignment]:
        org_id = _org_id()
        server_id = request.server_id
        await self._facts(org_id, server_id)  # NotFound for a server that never registered
        async for assignment in assignments(self._reader, self._changes, org_id, server_id, self._clock):
            yield assignment

    @override
    async def ReportProgress(
        self, request: deploy_pb2.ProgressReport, context: Context
    ) -> deploy_pb2.ProgressAck:
        org_id = _org_id()
        status = STATUS_FROM_PROTO.get(request.status)
        if status not in AGENT_STATUSES:
            raise InvalidArgument("status", "an agent reports DOWNLOADING, INSTALLING, COMPLETED or FAILED")
        agent = AgentReport(
            attempt=request.attempt,
            status=status,  # type: ignore[arg-type]  # one of AGENT_STATUSES, checked above
            phase=request.phase,
            percent=request.progress_percent,
            error=request.error_message,
            retryable=request.retryable,
            health=health_report_from_proto(request.health) if request.HasField("health") else None,
        )
        deployment_id = checked_identifier(request.deployment_id, "deployment_id") or ""
        deployment, cancelled = await self._commands.report_progress(
            org_id, request.server_id, deployment_id, agent, caller_of(context)
        )
        return deploy_pb2.ProgressAck(
            cancelled=cancelled, deployment=deployment_to_proto(deployment_row(deployment))
        )


def _org_id() -> str:
    org_id = current_principal().org_id
    if not org_id:
        raise InvalidArgument(
            "org_id", "an edge agent's token must name its server's organization (mint it with --org)"
        )
    return org_id


def _edge_version(value: str) -> str:
    if not _SEMVER.fullmatch(value):
        raise InvalidFields({"edge_version": f"a semantic version like 1.4.2; got {value[:40]!r}"})
    return value


def _server_row(server: EdgeServer, running: list[RunningModel], now: datetime) -> ServerRow:
    """The server as just registered (the views may not have applied it yet)."""
    numbers = {m.version_id: m.semantic_version for m in running}
    return ServerRow(
        org_id=server.org_id,
        server_id=server.server_id,
        environment=server.environment,
        platform=server.platform,
        edge_version=server.edge_version,
        hostname=server.hostname,
        registered_at=server.registered_at,
        running=[ModelOnServer(m, v, numbers.get(v, "")) for m, v in sorted(server.running.items())],
        last_heartbeat_at=now,
        online=True,
    )
