"""deploy-svc in this process on the real PostgreSQL and broker, fed by a stand-in registry log.

The stand-in is a real event store signed with a registry key, relayed to the registry's topic and
served over EventLog.ReadEvents, so deploy-svc learns of released versions exactly as from
registry-svc, without training a model. Agents are played by gRPC calls: a rollout to two servers
goes canary first, each server streams its assignment and reports it done, and the fleet view
follows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from modelyard.v1 import deploy_pb2, deploy_pb2_grpc, events_pb2_grpc
from modelyard_deploy.bootstrap import running_deploy_service
from modelyard_deploy.config import DeploySettings
from modelyard_devstack import Infra
from modelyard_devstack.processes import eventually
from modelyard_events.db import create_engine
from modelyard_events.envelope import Actor, CommandContext, DomainEvent
from modelyard_events.relay import Relay
from modelyard_events.schemas.registry import ModelReleased, ModelVersionRegistered
from modelyard_events.signing import HeadSigner
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.topics import events_topic
from modelyard_grpc import EventLogServicer, TokenIssuer, channel, mint_token, serving

pytestmark = pytest.mark.integration
SHA = "cd" * 32
ORG = "acme"
COMPLETED = deploy_pb2.DEPLOYMENT_STATUS_COMPLETED


@dataclass
class _Deploy:
    target: str
    issuer: TokenIssuer
    registry: PostgresEventStore

    def token(self, roles: tuple[str, ...] = ("super_admin",), subject: str = "carol") -> str:
        return mint_token(self.issuer, subject, ORG, list(roles), 600)

    async def registry_says(self, *events: DomainEvent, stream: str) -> None:
        context = CommandContext(actor=Actor(subject="registry-svc"), org_id=ORG)
        await self.registry.append("model_module", stream, 0, list(events), context)


@pytest.fixture
async def deploy(stack: Infra, tmp_path: Path) -> AsyncIterator[_Deploy]:
    suffix = uuid.uuid4().hex[:8]
    namespace = f"flow-{suffix}"
    issuer, deploy_key, registry_key = TokenIssuer.generate(), HeadSigner.generate(), HeadSigner.generate()
    token_file = tmp_path / "deploy-svc.token"
    token_file.write_text(mint_token(issuer, "deploy-svc", None, ["auditor"], 3600))
    engine = create_engine(stack.database_url)
    registry = PostgresEventStore(engine, f"reg_{suffix}", signer=registry_key)
    await registry.create_schema()
    stop = asyncio.Event()
    relay = Relay(
        registry, stack.database_url, stack.kafka_bootstrap_servers, events_topic("registry", namespace)
    )
    relay_task = asyncio.create_task(relay.run(stop))
    registrations = [(events_pb2_grpc.add_EventLogServicer_to_server, EventLogServicer(registry))]
    async with serving(registrations, service_names=("modelyard.v1.EventLog",)) as registry_server:
        settings = DeploySettings(
            database_url=stack.database_url,
            kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
            token_public_keys=json.dumps([issuer.public_text()]),
            token_file=token_file,
            event_signing_key=deploy_key.private_text(),
            event_public_keys=json.dumps(
                {"deploy": [deploy_key.public_text()], "registry": [registry_key.public_text()]}
            ),
            registry_svc_target=f"127.0.0.1:{registry_server.port}",
            job_svc_target="127.0.0.1:1",  # no job-svc: the mobile status says so
            deploy_grpc_port=0,
            store_schema=f"deploy_{suffix}",
            views_schema=f"deploy_views_{suffix}",
            reactions_schema=f"deploy_reactions_{suffix}",
            live_schema=f"deploy_live_{suffix}",
            topic_namespace=namespace,
            edge_heartbeat_interval_s=1.0,
            deploy_sweep_every_s=0.2,
        )
        async with running_deploy_service(settings, stop) as port:
            yield _Deploy(f"127.0.0.1:{port}", issuer, registry)
    stop.set()
    await relay_task
    await registry.close()
    await engine.dispose()


def _registered(version_id: str, semver: str = "1.0.0") -> ModelVersionRegistered:
    return ModelVersionRegistered.model_validate(
        {
            "version_id": version_id,
            "org_id": ORG,
            "ai_module": "reader",
            "semantic_version": semver,
            "bump": None,
            "bump_reason": "first",
            "name": "reader",
            "training_job_id": "job-1",
            "created_by": "dev",
            "artifact_uri": "blob://artifact",
            "artifact_sha256": SHA,
            "artifact_size_bytes": 1234,
            "config": {
                "family": "image_classifier",
                "input_shape": [1, 8, 8],
                "preprocessing": "image",
                "config_uri": "blob://config",
                "input_schema_sha256": SHA,
                "config_sha256": SHA,
            },
            "training_metrics": {},
            "dataset_uri": "dataset://digits/1",
            "min_edge_version": "1.0.0",
            "supported_platforms": ["linux/amd64"],
        }
    )


def _released(
    version_id: str, semver: str = "1.0.0", replaces: str | None = None, rollback: bool = False
) -> ModelReleased:
    return ModelReleased(
        version_id=version_id,
        org_id=ORG,
        ai_module="reader",
        semantic_version=semver,
        replaces_version_id=replaces,
        rollback=rollback,
        environment="production",
        released_by="carol",
        released_at=datetime.now(UTC),
        release_notes="",
        artifact_sha256=SHA,
        artifact_size_bytes=1234,
    )


async def _register(deploy: _Deploy, server_id: str) -> None:
    async with channel(deploy.target, deploy.token(("edge",), server_id)) as ch:
        await deploy_pb2_grpc.EdgeServiceStub(ch).Register(
            deploy_pb2.RegisterEdgeRequest(server_id=server_id, platform="linux/amd64", edge_version="1.1.0")
        )


async def _agent_installs(deploy: _Deploy, server_id: str, version_id: str = "") -> deploy_pb2.Assignment:
    """Play an agent: take the first assignment (of `version_id`, when given), report it downloading,
    installing, completed."""
    async with channel(deploy.target, deploy.token(("edge",), server_id)) as ch:
        edge = deploy_pb2_grpc.EdgeServiceStub(ch)
        stream = edge.StreamAssignments(deploy_pb2.AssignmentsRequest(server_id=server_id))
        assignment: deploy_pb2.Assignment = await asyncio.wait_for(stream.read(), 30)
        while version_id and assignment.version_id != version_id:  # one it finished, while the views lag
            assignment = await asyncio.wait_for(stream.read(), 30)
        stream.cancel()
        steps = (
            (deploy_pb2.DEPLOYMENT_STATUS_DOWNLOADING, "downloading", 50),
            (deploy_pb2.DEPLOYMENT_STATUS_INSTALLING, "verifying", 100),
            (COMPLETED, "switching", 100),
        )
        for status, phase, percent in steps:
            await edge.ReportProgress(
                deploy_pb2.ProgressReport(
                    server_id=server_id,
                    deployment_id=assignment.deployment_id,
                    attempt=assignment.attempt,
                    status=status,
                    phase=phase,
                    progress_percent=percent,
                )
            )
        return assignment


async def test_a_released_version_reaches_two_servers_canary_first(deploy: _Deploy) -> None:
    await deploy.registry_says(_registered("v1"), _released("v1"), stream="acme/reader")
    for server_id in ("edge-a", "edge-b"):
        async with channel(deploy.target, deploy.token(("edge",), server_id)) as ch:
            await deploy_pb2_grpc.EdgeServiceStub(ch).Register(
                deploy_pb2.RegisterEdgeRequest(
                    server_id=server_id, platform="linux/amd64", edge_version="1.1.0"
                )
            )
    async with channel(deploy.target, deploy.token()) as ch:
        operator = deploy_pb2_grpc.DeployServiceStub(ch)

        started: list[deploy_pb2.Rollout] = []

        async def known() -> bool:
            try:
                started.append(
                    await operator.StartRollout(
                        deploy_pb2.StartRolloutRequest(version_id="v1", server_ids=["edge-a", "edge-b"])
                    )
                )
            except grpc.aio.AioRpcError:  # the views have not seen the release or the servers yet
                return False
            return True

        await eventually(known, 30, "deploy-svc knowing the released version and both servers")
        rollouts = started
        assert [w.size for w in rollouts[0].waves] == [1, 1]
        canary = await _agent_installs(deploy, "edge-a")
        assert (canary.version_id, canary.artifact_sha256, canary.attempt) == ("v1", SHA, 1)
        second = await _agent_installs(deploy, "edge-b")
        assert second.version_id == "v1"

        async def finished() -> bool:
            rollout: deploy_pb2.Rollout = await operator.GetRollout(
                deploy_pb2.RolloutRef(rollout_id=rollouts[0].rollout_id)
            )
            return rollout.state == deploy_pb2.ROLLOUT_STATE_COMPLETED

        await eventually(finished, 30, "the rollout completed")
        rollout = await operator.GetRollout(deploy_pb2.RolloutRef(rollout_id=rollouts[0].rollout_id))
        assert [(w.completed, w.passed) for w in rollout.waves] == [(1, True), (1, True)]

        async def converged() -> bool:
            servers = (await operator.ListEdgeServers(deploy_pb2.ListEdgeServersRequest(org_id=ORG))).servers
            return all([m.version_id for m in s.running] == ["v1"] and not s.drift for s in servers)

        await eventually(converged, 30, "both servers running v1 without drift")
        history = await operator.ListDeployments(deploy_pb2.ListDeploymentsRequest(org_id=ORG))
        assert {d.status for d in history.deployments} == {COMPLETED}
        status = await operator.GetMobileStatus(deploy_pb2.MobileStatusRequest(org_id=ORG))
        assert status.jobs_error
        assert sorted(e.server_id for e in status.edges) == ["edge-a", "edge-b"]


async def test_the_registrys_release_rollback_rolls_the_servers_back(deploy: _Deploy) -> None:
    await deploy.registry_says(
        _registered("v1"),
        _registered("v2", "1.1.0"),
        _released("v1"),
        _released("v2", "1.1.0", replaces="v1"),
        stream="acme/reader",
    )
    await _register(deploy, "edge-c")
    async with channel(deploy.target, deploy.token()) as ch:
        operator = deploy_pb2_grpc.DeployServiceStub(ch)

        async def started() -> bool:
            try:
                await operator.StartRollout(
                    deploy_pb2.StartRolloutRequest(version_id="v2", server_ids=["edge-c"])
                )
            except grpc.aio.AioRpcError:  # the views have not seen the release or the server yet
                return False
            return True

        await eventually(started, 30, "a rollout of v2")
        assert (await _agent_installs(deploy, "edge-c")).version_id == "v2"
        rollback = _released("v1", replaces="v2", rollback=True)
        await deploy.registry_says(rollback, stream="acme/reader-rollback")
        back = await _agent_installs(deploy, "edge-c", "v1")
        assert (back.version_id, back.kind) == ("v1", "rollback")

        async def rolled_back() -> bool:
            rollouts = (await operator.ListRollouts(deploy_pb2.ListRolloutsRequest(org_id=ORG))).rollouts
            return any(
                r.kind == "rollback" and r.state == deploy_pb2.ROLLOUT_STATE_COMPLETED for r in rollouts
            )

        await eventually(rolled_back, 30, "the release rollback's rollout completed")


async def test_a_canary_failing_for_good_halts_the_rollout_before_the_next_wave(deploy: _Deploy) -> None:
    await deploy.registry_says(_registered("v1"), _released("v1"), stream="acme/reader")
    for server_id in ("edge-d", "edge-e"):
        await _register(deploy, server_id)
    async with channel(deploy.target, deploy.token()) as ch:
        operator = deploy_pb2_grpc.DeployServiceStub(ch)
        started: list[deploy_pb2.Rollout] = []

        async def start() -> bool:
            request = deploy_pb2.StartRolloutRequest(version_id="v1", server_ids=["edge-d", "edge-e"])
            try:
                started.append(await operator.StartRollout(request))
            except grpc.aio.AioRpcError:  # the views have not seen the release or the servers yet
                return False
            return True

        await eventually(start, 30, "a rollout of v1")
        async with channel(deploy.target, deploy.token(("edge",), "edge-d")) as edge_ch:
            edge = deploy_pb2_grpc.EdgeServiceStub(edge_ch)
            stream = edge.StreamAssignments(deploy_pb2.AssignmentsRequest(server_id="edge-d"))
            canary: deploy_pb2.Assignment = await asyncio.wait_for(stream.read(), 30)
            stream.cancel()
            ack = await edge.ReportProgress(
                deploy_pb2.ProgressReport(
                    server_id="edge-d",
                    deployment_id=canary.deployment_id,
                    attempt=canary.attempt,
                    status=deploy_pb2.DEPLOYMENT_STATUS_FAILED,
                    phase="verifying",
                    error_message="the manifest's signature is not the registry's",
                    retryable=False,
                )
            )
        assert ack.deployment.status == deploy_pb2.DEPLOYMENT_STATUS_FAILED
        assert not ack.deployment.HasField("next_retry_at")

        async def halted() -> bool:
            rollout: deploy_pb2.Rollout = await operator.GetRollout(
                deploy_pb2.RolloutRef(rollout_id=started[0].rollout_id)
            )
            return rollout.state == deploy_pb2.ROLLOUT_STATE_HALTED

        await eventually(halted, 30, "the rollout halted after its canary")
        rollout = await operator.GetRollout(deploy_pb2.RolloutRef(rollout_id=started[0].rollout_id))
        assert rollout.halt_reason  # says why, for the operator
        assert [(w.failed, w.started) for w in rollout.waves] == [(1, True), (0, False)]
        second = await operator.ListDeployments(
            deploy_pb2.ListDeploymentsRequest(org_id=ORG, server_id="edge-e")
        )
        assert list(second.deployments) == []
        failed = await operator.GetDeployment(deploy_pb2.DeploymentRef(deployment_id=canary.deployment_id))
        assert failed.error_message == "the manifest's signature is not the registry's"


async def test_a_deployment_cancelled_while_its_agent_is_away_is_never_handed_out(deploy: _Deploy) -> None:
    await deploy.registry_says(_registered("v1"), _released("v1"), stream="acme/reader")
    await _register(deploy, "edge-f")
    async with channel(deploy.target, deploy.token()) as ch:
        operator = deploy_pb2_grpc.DeployServiceStub(ch)
        started: list[deploy_pb2.Rollout] = []

        async def start() -> bool:
            request = deploy_pb2.StartRolloutRequest(version_id="v1", server_ids=["edge-f"])
            try:
                started.append(await operator.StartRollout(request))
            except grpc.aio.AioRpcError:
                return False
            return True

        await eventually(start, 30, "a rollout of v1")
        # A rollout due now is answered once its first wave exists: no waiting for the conductor.
        page = await operator.ListDeployments(
            deploy_pb2.ListDeploymentsRequest(rollout_id=started[0].rollout_id)
        )
        found = list(page.deployments)
        assert [(d.server_id, d.status) for d in found] == [("edge-f", deploy_pb2.DEPLOYMENT_STATUS_PENDING)]
        assert started[0].state == deploy_pb2.ROLLOUT_STATE_RUNNING
        cancelled = await operator.CancelDeployment(
            deploy_pb2.DeploymentCommand(deployment_id=found[0].deployment_id, reason="not today")
        )
        assert cancelled.status == deploy_pb2.DEPLOYMENT_STATUS_CANCELLED

        async def visible() -> bool:
            row = await operator.GetDeployment(deploy_pb2.DeploymentRef(deployment_id=found[0].deployment_id))
            return bool(row.status == deploy_pb2.DEPLOYMENT_STATUS_CANCELLED)

        await eventually(visible, 30, "the cancel in the views")
    async with channel(deploy.target, deploy.token(("edge",), "edge-f")) as edge_ch:
        edge = deploy_pb2_grpc.EdgeServiceStub(edge_ch)
        beat = await edge.Heartbeat(
            deploy_pb2.EdgeHeartbeat(server_id="edge-f", active_deployment_id=found[0].deployment_id)
        )
        assert list(beat.cancelled_deployment_ids) == [found[0].deployment_id]
        stream = edge.StreamAssignments(deploy_pb2.AssignmentsRequest(server_id="edge-f"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.read(), 1.0)
        stream.cancel()


async def test_a_heartbeat_from_an_upgraded_agent_updates_the_servers_facts(deploy: _Deploy) -> None:
    await _register(deploy, "edge-h")  # linux/amd64, edge 1.1.0
    async with channel(deploy.target, deploy.token(("edge",), "edge-h")) as edge_ch:
        edge = deploy_pb2_grpc.EdgeServiceStub(edge_ch)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await edge.Heartbeat(deploy_pb2.EdgeHeartbeat(server_id="edge-h", edge_version="two"))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "edge_version" in (refused.value.details() or "")
        await edge.Heartbeat(
            deploy_pb2.EdgeHeartbeat(server_id="edge-h", platform="linux/arm64", edge_version="1.2.0")
        )
    async with channel(deploy.target, deploy.token()) as ch:
        operator = deploy_pb2_grpc.DeployServiceStub(ch)

        async def upgraded() -> bool:
            try:
                found = await operator.GetEdgeServer(deploy_pb2.EdgeServerRef(server_id="edge-h", org_id=ORG))
            except grpc.aio.AioRpcError:  # not in the views yet
                return False
            return (found.server.platform, found.server.edge_version) == ("linux/arm64", "1.2.0")

        await eventually(upgraded, 30, "the agent's new platform and edge version in the views")
