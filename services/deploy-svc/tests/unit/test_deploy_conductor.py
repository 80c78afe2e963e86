"""The conductor on the in-memory store: waves, halts and rollbacks, deadlines, silence, backoff, sweeps."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from deploy_builders import AGENT, MODULE, OPERATOR, ORG, World, known_version, register_fleet, world

from modelyard_deploy.app.conductor import CONDUCTOR, Conductor
from modelyard_deploy.app.pass_lock import no_pass_lock
from modelyard_deploy.app.rollout_request import RolloutRequest
from modelyard_deploy.domain.deployment import Deployment
from modelyard_deploy.domain.deployment_reports import AgentReport
from modelyard_deploy.domain.rollout import Rollout
from modelyard_deploy.domain.rollout_deployments import wave_deployment

SILENCE_S = 120.0


class Fleet:
    """A world with a conductor, and agents' moves in one line each."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.heartbeats: dict[tuple[str, str], datetime] = {}
        self.conductor = Conductor(w.reads, w.commands, no_pass_lock, w.clock, SILENCE_S, self._heartbeats)

    async def _heartbeats(self) -> Mapping[tuple[str, str], datetime]:
        return self.heartbeats

    async def start(self, *servers: str, **changes: object) -> Rollout:
        fields: dict[str, object] = {"version_id": "v2", "server_ids": servers, "wave_sizes": [1]}
        fields.update(changes)
        return await self.w.commands.start_rollout(RolloutRequest(**fields), OPERATOR)  # type: ignore[arg-type]

    async def deployment(self, server_id: str, kind: str = "deploy") -> Deployment:
        lines = [line for line in await self.w.reads.every_deployment() if line.server_id == server_id]
        wanted = [line for line in lines if (line.wave is None) == (kind == "rollback")]
        assert wanted, f"no {kind} deployment for {server_id}"
        return await self.w.commands.load_deployment(wanted[-1].deployment_id)

    async def agent(self, server_id: str, status: str, kind: str = "deploy", **more: object) -> Deployment:
        d = await self.deployment(server_id, kind)
        report = AgentReport(d.attempt, status, status, **more)  # type: ignore[arg-type]
        after, _ = await self.w.commands.report_progress(ORG, server_id, d.deployment_id, report, AGENT)
        return after

    async def install(self, server_id: str, kind: str = "deploy") -> None:
        await self.agent(server_id, "installing", kind)
        await self.agent(server_id, "completed", kind)

    async def rollout(self, rollout_id: str) -> Rollout:
        return await self.w.commands.load_rollout(rollout_id)


@pytest.fixture
def fleet() -> Fleet:
    return Fleet(world())


class TestWaves:
    async def test_a_rollout_goes_wave_by_wave_to_completed(self, fleet: Fleet) -> None:
        await register_fleet(fleet.w, "edge-1", "edge-2", "edge-3")
        rollout = await fleet.start("edge-1", "edge-2", "edge-3")
        first = await fleet.conductor.run_pass()
        assert (first.waves_started, first.deployments_created) == (1, 1)
        assert (await fleet.deployment("edge-1")).previous_version_id == "v1"
        assert await fleet.conductor.run_pass() == replace(first, waves_started=0, deployments_created=0)
        await fleet.install("edge-1")
        second = await fleet.conductor.run_pass()
        assert (second.waves_started, second.deployments_created) == (1, 2)
        await fleet.install("edge-2")
        await fleet.install("edge-3")
        last = await fleet.conductor.run_pass()
        assert last.rollouts_finished == 1
        assert (await fleet.rollout(rollout.rollout_id)).state == "completed"

    async def test_a_wave_larger_than_one_batch_gets_every_deployment_in_one_pass(self, fleet: Fleet) -> None:
        servers = [f"edge-{i:03}" for i in range(70)]
        await register_fleet(fleet.w, *servers)
        await fleet.start(*servers, wave_sizes=[70])
        assert (await fleet.conductor.run_pass()).deployments_created == 70
        assert {line.server_id for line in await fleet.w.reads.every_deployment()} == set(servers)

    async def test_a_scheduled_rollout_waits_for_its_time(self, fleet: Fleet) -> None:
        await register_fleet(fleet.w, "edge-1")
        await fleet.start("edge-1", scheduled_at=fleet.w.clock.now + timedelta(minutes=5))
        assert (await fleet.conductor.run_pass()).waves_started == 0
        fleet.w.clock.advance(300)
        assert (await fleet.conductor.run_pass()).deployments_created == 1

    async def test_the_wave_deadline_counts_from_the_wave_start(self, fleet: Fleet) -> None:
        await register_fleet(fleet.w, "edge-1")
        await fleet.start("edge-1", deadline_s=900)
        await fleet.conductor.run_pass()
        d = await fleet.deployment("edge-1")
        assert d.deadline_at == d.scheduled_at + timedelta(seconds=900)


class TestHaltAndRollback:
    async def test_a_failing_wave_halts_cancels_its_open_deployments_and_rolls_the_canary_back(
        self, fleet: Fleet
    ) -> None:
        await register_fleet(fleet.w, "edge-1", "edge-2", "edge-3")
        rollout = await fleet.start("edge-1", "edge-2", "edge-3", rollback_on_failure=True)
        await fleet.conductor.run_pass()
        await fleet.install("edge-1")
        await fleet.conductor.run_pass()
        await fleet.agent("edge-2", "failed", error="health gate: p95 3x slower", retryable=False)
        await fleet.agent("edge-3", "downloading", percent=40)
        halted = await fleet.conductor.run_pass()
        assert (halted.cancelled, halted.rollbacks_created) == (1, 1)
        assert (await fleet.deployment("edge-3")).status == "cancelled"
        undo = await fleet.deployment("edge-1", "rollback")
        assert (undo.version_id, undo.previous_version_id, undo.kind) == ("v1", "v2", "rollback")
        assert (await fleet.rollout(rollout.rollout_id)).state == "rolling_back"
        await fleet.install("edge-1", "rollback")
        await fleet.conductor.run_pass()
        done = await fleet.rollout(rollout.rollout_id)
        assert done.state == "rolled_back"
        server = await fleet.w.commands.load_edge_server(ORG, "edge-1")
        assert server is not None
        assert server.running == {MODULE: "v1"}

    async def test_a_server_without_a_previous_version_keeps_the_new_one_and_the_reason_says_so(
        self, fleet: Fleet
    ) -> None:
        await register_fleet(fleet.w, "edge-1", running=None)
        await register_fleet(fleet.w, "edge-2")
        rollout = await fleet.start("edge-1", "edge-2", rollback_on_failure=True)
        await fleet.conductor.run_pass()
        await fleet.install("edge-1")
        await fleet.conductor.run_pass()
        await fleet.agent("edge-2", "failed", error="bad signature", retryable=False)
        result = await fleet.conductor.run_pass()
        assert result.rollbacks_created == 0
        done = await fleet.rollout(rollout.rollout_id)
        assert done.state == "rolled_back"
        finished = [
            e for e in await fleet.w.store.read_stream(rollout.rollout_id) if e.type == "RolloutFinished"
        ]
        assert "edge-1" in finished[-1].data["reason"]
        assert "no previous version" in finished[-1].data["reason"]

    async def test_an_operator_rolls_back_a_completed_rollout(self, fleet: Fleet) -> None:
        await register_fleet(fleet.w, "edge-1")
        rollout = await fleet.start("edge-1")
        await fleet.conductor.run_pass()
        await fleet.install("edge-1")
        await fleet.conductor.run_pass()
        assert (await fleet.rollout(rollout.rollout_id)).state == "completed"
        await fleet.w.commands.rollback_rollout(rollout.rollout_id, "users complain", OPERATOR)
        assert (await fleet.conductor.run_pass()).rollbacks_created == 1
        await fleet.install("edge-1", "rollback")
        await fleet.conductor.run_pass()
        assert (await fleet.rollout(rollout.rollout_id)).state == "rolled_back"


class TestNothingStaysInProgress:
    async def test_past_its_deadline_a_deployment_fails_for_good_with_the_reason(self, fleet: Fleet) -> None:
        await register_fleet(fleet.w, "edge-1")
        await fleet.start("edge-1", deadline_s=600)
        await fleet.conductor.run_pass()
        await fleet.agent("edge-1", "downloading", percent=5)
        fleet.heartbeats[(ORG, "edge-1")] = fleet.w.clock.advance(601)
        assert (await fleet.conductor.run_pass()).failed == 1
        d = await fleet.deployment("edge-1")
        assert (d.status, d.retry_at) == ("failed", None)
        assert "deadline passed at" in d.error_message
        assert "while downloading" in d.error_message

    async def test_a_silent_agent_fails_its_deployment_which_is_retried_after_the_backoff(
        self, fleet: Fleet
    ) -> None:
        await register_fleet(fleet.w, "edge-1")
        await fleet.start("edge-1", backoff_base_s=30)
        await fleet.conductor.run_pass()
        await fleet.agent("edge-1", "downloading", percent=5)
        fleet.heartbeats[(ORG, "edge-1")] = fleet.w.clock.now
        fleet.w.clock.advance(SILENCE_S - 1)
        assert (await fleet.conductor.run_pass()).failed == 0
        fleet.w.clock.advance(2)
        assert (await fleet.conductor.run_pass()).failed == 1
        d = await fleet.deployment("edge-1")
        assert d.error_message == "agent silent for 121 s while downloading"
        assert d.retry_at is not None
        fleet.w.clock.now = d.retry_at
        assert (await fleet.conductor.run_pass()).retried == 1
        again = await fleet.deployment("edge-1")
        assert (again.status, again.attempt) == ("pending", 2)

    async def test_a_pending_deployment_of_an_offline_server_just_waits(self, fleet: Fleet) -> None:
        await register_fleet(fleet.w, "edge-1")
        await fleet.start("edge-1")
        await fleet.conductor.run_pass()
        fleet.w.clock.advance(SILENCE_S * 10)
        assert (await fleet.conductor.run_pass()).failed == 0

    async def test_an_open_deployment_of_a_deprecated_version_is_cancelled(self, fleet: Fleet) -> None:
        await register_fleet(fleet.w, "edge-1")
        await fleet.start("edge-1")
        await fleet.conductor.run_pass()
        fleet.w.reads.versions["v2"] = known_version("v2", status="deprecated")
        assert (await fleet.conductor.run_pass()).cancelled == 1
        d = await fleet.deployment("edge-1")
        assert d.status == "cancelled"

    async def test_a_deployment_created_after_its_rollout_was_cancelled_is_swept_up(
        self, fleet: Fleet
    ) -> None:
        await register_fleet(fleet.w, "edge-1")
        rollout = await fleet.start("edge-1")
        started = await fleet.w.commands.advance_rollout(rollout.rollout_id, {}, CONDUCTOR)
        await fleet.w.commands.cancel_rollout(rollout.rollout_id, "stop", OPERATOR)
        late = wave_deployment(started, 0, "edge-1", "v1")  # a pass that loaded the rollout before the cancel
        await fleet.w.commands.create_deployment(late, CONDUCTOR)
        assert (await fleet.conductor.run_pass()).cancelled == 1
        assert (await fleet.w.commands.load_deployment(late.deployment_id)).status == "cancelled"


class TestOnePassAtATime:
    async def test_without_the_lock_a_pass_does_nothing(self, fleet: Fleet) -> None:
        @contextlib.asynccontextmanager
        async def held_elsewhere() -> AsyncIterator[bool]:
            yield False

        await register_fleet(fleet.w, "edge-1")
        await fleet.start("edge-1")
        conductor = Conductor(
            fleet.w.reads, fleet.w.commands, held_elsewhere, fleet.w.clock, 60, fleet._heartbeats
        )
        assert not (await conductor.run_pass()).ran
        assert (await fleet.w.reads.open_deployments()) == []

    async def test_with_views_behind_the_log_a_pass_does_nothing(self, fleet: Fleet) -> None:
        async def behind(wait_s: float = 0.0) -> bool:
            return False

        fleet.w.reads.caught_up = behind  # type: ignore[method-assign]
        conductor = Conductor(
            fleet.w.reads,
            fleet.w.commands,
            no_pass_lock,
            fleet.w.clock,
            60,
            fleet._heartbeats,
            caught_up_timeout_s=0.01,
        )
        assert not (await conductor.run_pass()).ran
