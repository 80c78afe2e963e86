"""deploy-svc on the real platform, without a model: an edge registers, heartbeats and is seen by the
fleet views and the mobile status; its assignment stream opens; another server's stream is refused."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from modelyard.v1 import deploy_pb2, deploy_pb2_grpc
from modelyard_devstack.platform import Platform
from modelyard_devstack.processes import eventually
from modelyard_grpc import channel

pytestmark = pytest.mark.integration


async def test_a_registered_edge_is_listed_online_with_what_it_runs(
    services: Platform, fresh_org: str
) -> None:
    edge_token = services.token(("edge",), org_id=fresh_org, subject="smoke-edge-1")
    running = [deploy_pb2.RunningModel(ai_module="reader", version_id="v-local", semantic_version="0.9.0")]
    async with channel(services.deploy_target, edge_token) as ch:
        edge = deploy_pb2_grpc.EdgeServiceStub(ch)
        registered = await edge.Register(
            deploy_pb2.RegisterEdgeRequest(
                server_id="smoke-edge-1", platform="linux/amd64", edge_version="1.0.0", running=running
            )
        )
        assert registered.server.environment == "production"
        assert registered.heartbeat_interval_s > 0
        beat = await edge.Heartbeat(
            deploy_pb2.EdgeHeartbeat(server_id="smoke-edge-1", running=running, free_disk_bytes=5_000_000)
        )
        assert list(beat.cancelled_deployment_ids) == []

    admin = services.token(("org_admin",), org_id=fresh_org, subject="ada")
    async with channel(services.deploy_target, admin) as ch:
        deploy = deploy_pb2_grpc.DeployServiceStub(ch)

        async def listed() -> bool:
            page = await deploy.ListEdgeServers(deploy_pb2.ListEdgeServersRequest(org_id=fresh_org))
            servers = page.servers
            # heartbeats are written together every 0.25 s: the free disk shows once that one is
            return (
                [s.server_id for s in servers] == ["smoke-edge-1"]
                and bool(servers[0].running)
                and (servers[0].free_disk_bytes == 5_000_000)
            )

        await eventually(listed, 30, "the edge server in the fleet view, with its heartbeat")
        detail = await deploy.GetEdgeServer(deploy_pb2.EdgeServerRef(server_id="smoke-edge-1"))
        assert detail.server.online
        assert detail.server.free_disk_bytes == 5_000_000
        assert [(m.ai_module, m.version_id) for m in detail.server.running] == [("reader", "v-local")]
        assert not detail.server.drift
        status = await deploy.GetMobileStatus(deploy_pb2.MobileStatusRequest())
        assert status.jobs_error == ""
        assert [e.server_id for e in status.edges] == ["smoke-edge-1"]


async def test_an_edge_streams_only_its_own_assignments(services: Platform, fresh_org: str) -> None:
    token = services.token(("edge",), org_id=fresh_org, subject="smoke-edge-2")
    async with channel(services.deploy_target, token) as ch:
        edge = deploy_pb2_grpc.EdgeServiceStub(ch)
        await edge.Register(
            deploy_pb2.RegisterEdgeRequest(
                server_id="smoke-edge-2", platform="linux/amd64", edge_version="1.0.0"
            )
        )
        stream = edge.StreamAssignments(deploy_pb2.AssignmentsRequest(server_id="smoke-edge-2"))
        with pytest.raises(asyncio.TimeoutError):  # open, and nothing is due
            await asyncio.wait_for(stream.read(), 1.5)
        stream.cancel()
        other = edge.StreamAssignments(deploy_pb2.AssignmentsRequest(server_id="smoke-edge-3"))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await other.read()
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
