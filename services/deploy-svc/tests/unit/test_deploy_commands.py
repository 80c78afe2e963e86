"""DeployCommands on the in-memory store: rollouts refused or started, agents' reports, operators' moves."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from deploy_builders import (
    AGENT,
    MODULE,
    NOW,
    OPERATOR,
    ORG,
    SHA,
    ClockedStore,
    World,
    deployment_spec,
    edge_facts,
    known_version,
    register_fleet,
    world,
)

from modelyard_deploy.app.commands import DeployCommands
from modelyard_deploy.app.conductor import CONDUCTOR
from modelyard_deploy.app.rollout_request import RolloutRequest
from modelyard_deploy.domain.deployment_reports import AgentReport
from modelyard_deploy.domain.rollout_deployments import wave_deployment
from modelyard_events.domain_errors import IllegalTransition, InvalidArgument, NotFound
from modelyard_events.envelope import EventEnvelope
from modelyard_events.schemas.deploy import EdgeModelSwitched, RunningModel
from modelyard_events.schemas.registry import ModelReleased


class InterleavingStore(ClockedStore):
    """Every read yields to the loop, so two commands both read before either appends."""

    async def read_stream(
        self, stream_id: str, after_version: int = 0, *, limit: int | None = None
    ) -> list[EventEnvelope]:
        events = await super().read_stream(stream_id, after_version, limit=limit)
        await asyncio.sleep(0)
        return events


def request(*server_ids: str, **changes: object) -> RolloutRequest:
    return RolloutRequest(version_id="v2", server_ids=server_ids, **changes)  # type: ignore[arg-type]


async def deployment_of(w: World, server_id: str = "edge-1") -> str:
    await w.commands.create_deployment(deployment_spec(server_id=server_id), OPERATOR)
    return "d-1"


class TestStartingARollout:
    async def test_a_released_version_starts_to_the_listed_servers_in_order(self) -> None:
        w = world()
        await register_fleet(w, "edge-1", "edge-2", "edge-3")
        rollout = await w.commands.start_rollout(request("edge-3", "edge-1", wave_sizes=[1, 1]), OPERATOR)
        assert rollout.targets == ("edge-3", "edge-1")
        assert (rollout.wave_sizes, rollout.state, rollout.org_id, rollout.started_by) == (
            (1, 1),
            "scheduled",
            ORG,
            "olga",
        )

    async def test_all_servers_of_the_versions_environment(self) -> None:
        w = world()
        await register_fleet(w, "edge-2", "edge-1")
        await w.commands.register_edge(ORG, edge_facts("lab-1", environment="staging"), AGENT)
        rollout = await w.commands.start_rollout(RolloutRequest(version_id="v2", all_servers=True), OPERATOR)
        assert (rollout.targets, rollout.environment) == (("edge-1", "edge-2"), "production")

    @pytest.mark.parametrize(
        ("status", "says"), [("draft", "draft"), ("approved", "not released"), ("deprecated", "deprecated")]
    )
    async def test_a_version_that_is_not_released_is_refused(self, status: str, says: str) -> None:
        w = world(known_version("v2", status=status))
        await register_fleet(w, "edge-1")
        with pytest.raises(IllegalTransition, match=says):
            await w.commands.start_rollout(request("edge-1"), OPERATOR)

    async def test_an_unknown_version_or_one_of_another_organization_is_not_found(self) -> None:
        w = world(known_version("v2", org_id="globex"))
        await register_fleet(w, "edge-1")
        with pytest.raises(NotFound, match="v2"):
            await w.commands.start_rollout(request("edge-1", org_id=ORG), OPERATOR)
        with pytest.raises(NotFound, match="v9"):
            await w.commands.start_rollout(RolloutRequest(version_id="v9", server_ids=["edge-1"]), OPERATOR)

    async def test_unknown_servers_are_named_all_at_once(self) -> None:
        w = world()
        await register_fleet(w, "edge-1")
        with pytest.raises(NotFound, match="edge-7, edge-8"):
            await w.commands.start_rollout(request("edge-1", "edge-7", "edge-8"), OPERATOR)

    async def test_a_server_of_another_organization_is_unknown(self) -> None:
        w = world()
        await w.commands.register_edge("globex", edge_facts("edge-9"), AGENT)
        with pytest.raises(NotFound, match="edge-9"):
            await w.commands.start_rollout(request("edge-9", org_id=ORG), OPERATOR)

    async def test_every_refused_server_is_listed_with_its_reason(self) -> None:
        w = world(known_version("v1"), known_version("v2", min_edge_version="2.0.0"))
        await register_fleet(w, "edge-1")
        await w.commands.register_edge(ORG, edge_facts("edge-2", edge_version="2.1.0"), AGENT)
        await w.commands.register_edge(
            ORG, edge_facts("edge-3", environment="staging", edge_version="2.0.0"), AGENT
        )
        with pytest.raises(IllegalTransition) as refused:
            await w.commands.start_rollout(request("edge-1", "edge-2", "edge-3"), OPERATOR)
        assert "2 of 3 servers" in refused.value.message
        assert "edge-1: edge version 1.2.0 is below" in refused.value.message
        assert "edge-3: environment staging" in refused.value.message

    async def test_naming_servers_and_all_servers_together_is_invalid(self) -> None:
        w = world()
        await register_fleet(w, "edge-1")
        with pytest.raises(InvalidArgument, match="not both"):
            await w.commands.start_rollout(request("edge-1", all_servers=True), OPERATOR)

    async def test_the_same_rollout_id_twice_returns_the_first_rollout(self) -> None:
        w = world()
        await register_fleet(w, "edge-1", "edge-2")
        first = await w.commands.start_rollout(request("edge-1", rollout_id="r-req-1"), OPERATOR)
        again = await w.commands.start_rollout(request("edge-1", "edge-2", rollout_id="r-req-1"), OPERATOR)
        assert again.targets == first.targets == ("edge-1",)


class TestEdgeServers:
    async def test_registering_with_what_it_runs_records_both_in_one_append(self) -> None:
        w = world()
        await register_fleet(w, "edge-1")
        server = await w.commands.load_edge_server(ORG, "edge-1")
        assert server is not None
        assert (server.running, server.stream_version) == ({MODULE: "v1"}, 2)

    async def test_registering_again_unchanged_appends_nothing(self) -> None:
        w = world()
        await register_fleet(w, "edge-1")
        before = await w.store.head_position()
        await register_fleet(w, "edge-1")
        assert await w.store.head_position() == before

    async def test_an_unregistered_server_cannot_report_what_it_runs(self) -> None:
        with pytest.raises(NotFound, match="not registered"):
            await world().commands.report_running(ORG, "edge-1", [], AGENT)


class TestAgentProgress:
    async def test_completed_also_records_that_the_server_now_serves_the_version(self) -> None:
        w = world()
        await register_fleet(w, "edge-1")
        deployment_id = await deployment_of(w)
        await w.commands.report_progress(
            ORG, "edge-1", deployment_id, AgentReport(1, "installing", "loading"), AGENT
        )
        done, cancelled = await w.commands.report_progress(
            ORG, "edge-1", deployment_id, AgentReport(1, "completed"), AGENT
        )
        assert (done.status, cancelled) == ("completed", False)
        server = await w.commands.load_edge_server(ORG, "edge-1")
        assert server is not None
        assert server.running == {MODULE: "v2"}
        switched = [e for e in await w.store.read_all() if e.type == EdgeModelSwitched.type_name]
        assert switched[-1].data["deployment_id"] == deployment_id

    async def test_another_servers_deployment_is_not_found_and_not_revealed(self) -> None:
        w = world()
        await register_fleet(w, "edge-1", "edge-2")
        deployment_id = await deployment_of(w, "edge-1")
        with pytest.raises(NotFound) as hidden:
            await w.commands.report_progress(
                ORG, "edge-2", deployment_id, AgentReport(1, "downloading"), AGENT
            )
        with pytest.raises(NotFound) as missing:
            await w.commands.report_progress(ORG, "edge-2", "nope", AgentReport(1, "downloading"), AGENT)
        assert hidden.value.message.replace(deployment_id, "X") == missing.value.message.replace(
            "'nope'", "'X'"
        )
        with pytest.raises(NotFound):
            await w.commands.report_progress(
                "globex", "edge-1", deployment_id, AgentReport(1, "downloading"), AGENT
            )

    async def test_a_report_to_a_cancelled_deployment_tells_the_agent(self) -> None:
        w = world()
        deployment_id = await deployment_of(w)
        await w.commands.cancel_deployment(deployment_id, "changed my mind", OPERATOR)
        d, cancelled = await w.commands.report_progress(
            ORG, "edge-1", deployment_id, AgentReport(1, "downloading"), AGENT
        )
        assert (d.status, cancelled) == ("cancelled", True)

    async def test_two_racing_reports_both_land_on_fresh_state(self) -> None:
        w = world()
        store = InterleavingStore(w.clock)
        w = World(store, w.reads, w.clock, DeployCommands(store, w.reads, w.clock))
        await w.commands.create_deployment(deployment_spec(), OPERATOR)
        _first, _second = await asyncio.gather(
            w.commands.report_progress(
                ORG, "edge-1", "d-1", AgentReport(1, "downloading", "downloading", 10), AGENT
            ),
            w.commands.report_progress(
                ORG, "edge-1", "d-1", AgentReport(1, "downloading", "downloading", 50), AGENT
            ),
        )
        d = await w.commands.load_deployment("d-1")
        assert d.progress_percent in (10, 50)
        assert d.stream_version == 3


class TestOperatorsMoves:
    async def test_an_operator_retries_a_final_failure_with_a_fresh_deadline(self) -> None:
        w = world()
        deployment_id = await deployment_of(w)
        await w.commands.report_progress(
            ORG,
            "edge-1",
            deployment_id,
            AgentReport(1, "failed", error="bad signature", retryable=False),
            AGENT,
        )
        w.clock.advance(7200)
        d = await w.commands.retry_deployment(deployment_id, "key rotated", OPERATOR)
        assert (d.status, d.attempt, d.deadline_at) == ("pending", 2, w.clock.now + timedelta(hours=1))

    async def test_cancel_of_a_completed_deployment_says_roll_back(self) -> None:
        w = world()
        deployment_id = await deployment_of(w)
        await w.commands.report_progress(ORG, "edge-1", deployment_id, AgentReport(1, "installing"), AGENT)
        await w.commands.report_progress(ORG, "edge-1", deployment_id, AgentReport(1, "completed"), AGENT)
        with pytest.raises(IllegalTransition, match="roll it back"):
            await w.commands.cancel_deployment(deployment_id, "oops", OPERATOR)

    async def test_cancelling_a_rollout_cancels_its_open_deployments(self) -> None:
        w = world()
        await register_fleet(w, "edge-1")
        rollout = await w.commands.start_rollout(request("edge-1"), OPERATOR)
        started = await w.commands.advance_rollout(rollout.rollout_id, {}, CONDUCTOR)
        spec = wave_deployment(started, 0, "edge-1", "v1")
        await w.commands.create_deployment(spec, CONDUCTOR)
        cancelled = await w.commands.cancel_rollout(rollout.rollout_id, "wrong model", OPERATOR)
        assert cancelled.state == "cancelled"
        assert (await w.commands.load_deployment(spec.deployment_id)).status == "cancelled"

    async def test_a_rollback_request_on_a_scheduled_rollout_is_refused(self) -> None:
        w = world()
        await register_fleet(w, "edge-1")
        rollout = await w.commands.start_rollout(
            request("edge-1", scheduled_at=NOW + timedelta(hours=2)), OPERATOR
        )
        with pytest.raises(IllegalTransition, match="cancel it instead"):
            await w.commands.rollback_rollout(rollout.rollout_id, "undo", OPERATOR)


def released(version_id: str = "v1", replaces: str | None = "v2", rollback: bool = True) -> ModelReleased:
    return ModelReleased(
        version_id=version_id,
        org_id=ORG,
        ai_module=MODULE,
        semantic_version="1.0.0",
        environment="production",
        released_by="rita",
        released_at=NOW,
        release_notes="v2 misclassifies sevens",
        artifact_sha256=SHA,
        artifact_size_bytes=1000,
        replaces_version_id=replaces,
        rollback=rollback,
    )


class TestReleaseRollbacks:
    async def test_a_release_rollback_rolls_the_servers_serving_the_replaced_version(self) -> None:
        w = world()
        await register_fleet(w, "edge-1", "edge-2", running="v2")
        await register_fleet(w, "edge-3", running="v1")
        rollout = await w.commands.start_release_rollback(released(), "evt-1", OPERATOR)
        assert rollout is not None
        assert (rollout.kind, rollout.version_id, rollout.release_rollback_of) == ("rollback", "v1", "v2")
        assert rollout.targets == ("edge-1", "edge-2")
        assert rollout.started_by == "rita"
        # Every server goes back at once and none halts the others (an offline one must not).
        assert (rollout.wave_sizes, rollout.failure_threshold) == ((2,), 1.0)

    async def test_a_redelivered_release_rollback_decides_nothing_twice(self) -> None:
        w = world()
        await register_fleet(w, "edge-1", running="v2")
        first = await w.commands.start_release_rollback(released(), "evt-1", OPERATOR)
        head = await w.store.head_position()
        again = await w.commands.start_release_rollback(released(), "evt-1", OPERATOR)
        assert first is not None
        assert again is not None
        assert again.rollout_id == first.rollout_id
        assert await w.store.head_position() == head

    async def test_with_views_behind_the_log_it_raises_a_transient_error_and_writes_nothing(self) -> None:
        # The runner retries a TimeoutError after a backoff; choosing servers from stale views could
        # miss one whose deployment of the replaced version completed a moment ago, for good.
        w = world()
        await register_fleet(w, "edge-1", running="v2")

        async def behind(wait_s: float = 0.0) -> bool:
            return False

        w.reads.caught_up = behind  # type: ignore[method-assign]
        head = await w.store.head_position()
        with pytest.raises(TimeoutError, match="views are more than 10 s behind"):
            await w.commands.start_release_rollback(released(), "evt-1", OPERATOR)
        assert await w.store.head_position() == head

    async def test_nothing_happens_when_no_server_serves_the_replaced_version_or_it_is_no_rollback(
        self,
    ) -> None:
        w = world()
        await register_fleet(w, "edge-1", running="v1")
        assert await w.commands.start_release_rollback(released(), "evt-1", OPERATOR) is None
        assert await w.commands.start_release_rollback(released(rollback=False), "evt-2", OPERATOR) is None


async def test_running_models_are_validated_before_anything_is_written() -> None:
    w = world()
    await register_fleet(w, "edge-1")
    twice = [RunningModel(ai_module=MODULE, version_id="v1"), RunningModel(ai_module=MODULE, version_id="v2")]
    head = await w.store.head_position()
    with pytest.raises(InvalidArgument):
        await w.commands.report_running(ORG, "edge-1", twice, AGENT)
    assert await w.store.head_position() == head
