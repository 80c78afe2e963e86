"""deploy-svc's views on a real PostgreSQL: events applied as the runner would, read by the reader."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_deploy.adapters.liveness import EdgeHeartbeat, EdgeLiveness
from modelyard_deploy.projections.known_versions import KnownVersions
from modelyard_deploy.projections.queries import DeployViewReader
from modelyard_deploy.projections.tables import changes_channel
from modelyard_deploy.projections.views import DeployViews
from modelyard_events.consumer.checkpoints import create_checkpoint_table
from modelyard_events.envelope import Actor, DomainEvent, EventEnvelope
from modelyard_events.notifications import ViewChanges
from modelyard_events.schemas.deploy import (
    DeploymentCancelled,
    DeploymentCreated,
    DeploymentProgressed,
    DeploymentRetried,
    EdgeModelSwitched,
    EdgeServerRegistered,
    HealthLimits,
    RolloutFinished,
    RolloutStarted,
    RolloutTargetsAdded,
    RolloutWaveStarted,
    edge_server_stream_id,
    wave_deployment_id,
)
from modelyard_events.schemas.registry import ModelDeprecated, ModelReleased, ModelVersionRegistered

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SHA = "ab" * 32
_positions = itertools.count(1)


class _Log:
    """The store's head, as the reader's caught_up asks for it."""

    async def head_position(self) -> int:
        return 0


def _envelope(event: DomainEvent, at: datetime = NOW) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        stream_type="test",
        stream_id="test",
        stream_version=1,
        position=next(_positions),
        type=event.type_name,
        schema_version=1,
        occurred_at=at,
        actor=Actor(subject="tester"),
        org_id=None,
        correlation_id="c",
        causation_id=None,
        data={},
        prev_hash="",
        hash="",
    )


class _Views:
    """Both projections and the reader in one fresh schema."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.schema = f"t_{uuid.uuid4().hex[:12]}"
        self.engine = engine
        self.deploy, self.registry = DeployViews(self.schema), KnownVersions(self.schema)
        self.liveness = EdgeLiveness(engine, self.schema)
        self.reader = DeployViewReader(engine, self.schema, self.schema, _Log(), lambda: NOW, 30.0)  # type: ignore[arg-type]

    async def create(self) -> None:
        async with self.engine.begin() as conn:
            await create_checkpoint_table(conn, self.schema)
            await self.deploy.create_tables(conn)
            await self.registry.create_tables(conn)
        await self.liveness.create_tables()

    async def apply(self, *events: DomainEvent, at: datetime = NOW) -> None:
        async with self.engine.begin() as conn:
            for event in events:
                projection = self.registry if type(event).__module__.endswith("registry") else self.deploy
                await projection.apply(event, _envelope(event, at), conn)


@pytest.fixture
async def views(views_engine: AsyncEngine) -> _Views:
    made = _Views(views_engine)
    await made.create()
    return made


def _registered(version_id: str, semver: str) -> ModelVersionRegistered:
    return ModelVersionRegistered.model_validate(
        {
            "version_id": version_id,
            "org_id": "acme",
            "ai_module": "reader",
            "semantic_version": semver,
            "bump": None,
            "bump_reason": "first",
            "name": "r",
            "training_job_id": "j1",
            "created_by": "dev",
            "artifact_uri": "blob://x",
            "artifact_sha256": SHA,
            "artifact_size_bytes": 10,
            "config": {
                "family": "f",
                "input_shape": [1],
                "preprocessing": "image",
                "config_uri": "blob://c",
                "input_schema_sha256": SHA,
                "config_sha256": SHA,
            },
            "training_metrics": {},
            "dataset_uri": "dataset://d",
            "min_edge_version": "1.2.0",
            "supported_platforms": ["linux/amd64"],
        }
    )


def _released(version_id: str, replaces: str | None = None) -> ModelReleased:
    return ModelReleased(
        version_id=version_id,
        org_id="acme",
        ai_module="reader",
        semantic_version="1.0.0",
        environment="production",
        released_by="carol",
        released_at=NOW,
        release_notes="",
        artifact_sha256=SHA,
        artifact_size_bytes=10,
        replaces_version_id=replaces,
    )


def _deployment(
    deployment_id: str, version_id: str, server: str = "edge-1", **extra: object
) -> DeploymentCreated:
    values: dict[str, object] = {
        "deployment_id": deployment_id,
        "org_id": "acme",
        "server_id": server,
        "version_id": version_id,
        "ai_module": "reader",
        "semantic_version": "1.0.0",
        "artifact_sha256": SHA,
        "artifact_size_bytes": 10,
        "scheduled_at": NOW,
        "deadline_at": NOW + timedelta(hours=1),
        "max_retries": 3,
        "backoff_base_s": 10.0,
        "health": HealthLimits(),
        "created_by": "carol",
    }
    return DeploymentCreated.model_validate({**values, **extra})


def _server(server: str = "edge-1") -> EdgeServerRegistered:
    return EdgeServerRegistered(
        server_id=server,
        org_id="acme",
        environment="production",
        platform="linux/amd64",
        edge_version="1.3.0",
    )


async def test_a_release_moves_the_environment_and_a_deprecation_takes_it_away(views: _Views) -> None:
    await views.apply(_registered("v1", "1.0.0"), _registered("v2", "1.1.0"), _released("v1"))
    await views.apply(_released("v2", replaces="v1"))
    v1, v2 = await views.reader.version("v1"), await views.reader.version("v2")
    assert v1 is not None
    assert v2 is not None
    assert (v1.status, v1.environments) == ("released", ())
    assert (v2.status, v2.environments, v2.min_edge_version) == ("released", ("production",), "1.2.0")
    deprecated = ModelDeprecated(
        version_id="v2",
        org_id="acme",
        ai_module="reader",
        semantic_version="1.1.0",
        environments=["production"],
        deprecated_by="carol",
        reason="bad",
    )
    await views.apply(deprecated)
    v2 = await views.reader.version("v2")
    assert v2 is not None
    assert (v2.status, v2.environments) == ("deprecated", ())
    assert await views.reader.version("nope") is None


async def test_a_server_shows_what_it_runs_what_it_should_and_its_drift(views: _Views) -> None:
    await views.apply(_registered("v1", "1.0.0"), _registered("v2", "1.1.0"))
    switched = EdgeModelSwitched(
        server_id="edge-1", org_id="acme", ai_module="reader", version_id="v1", reported_at=NOW
    )
    await views.apply(
        _server(), switched, _deployment("d1", "v2", previous_version_id="v1", semantic_version="1.1.0")
    )
    await views.liveness.record(EdgeHeartbeat("acme", "edge-1", NOW - timedelta(seconds=5), 99, ""))
    page = await views.reader.servers_page(org_id="acme", drift_only=True)
    assert [s.server_id for s in page.rows] == ["edge-1"]
    server = page.rows[0]
    assert [(m.version_id, m.semantic_version) for m in server.running] == [("v1", "1.0.0")]
    assert [m.version_id for m in server.intended] == ["v2"]
    assert server.drift_reasons == ["reader: runs 1.0.0 (v1), intended 1.1.0 (v2)"]
    assert server.online
    assert server.free_disk_bytes == 99
    assert server.active_deployment is not None
    assert server.active_deployment.deployment_id == "d1"
    facts = await views.reader.servers_serving("acme", "reader", "v2")
    assert [f.server_id for f in facts] == ["edge-1"]
    await views.apply(
        DeploymentCancelled(deployment_id="d1", server_id="edge-1", previous_status="pending", reason="no")
    )
    assert (await views.reader.servers_page(org_id="acme", drift_only=True)).rows == []


async def test_assignments_are_the_due_and_unfinished_deployments_of_the_server(views: _Views) -> None:
    later = NOW + timedelta(minutes=5)
    await views.apply(
        _server(),
        _deployment("due", "v1"),
        _deployment("later", "v1", scheduled_at=later),
        _deployment("other", "v1", server="edge-2"),
    )
    due, next_at = await views.reader.assignments("acme", "edge-1", NOW)
    assert [d.deployment_id for d in due] == ["due"]
    assert next_at == later
    progressed = DeploymentProgressed(
        deployment_id="due",
        server_id="edge-1",
        attempt=1,
        status="failed",
        phase="downloading",
        progress_percent=40,
        error_message="hash mismatch",
        retry_at=NOW + timedelta(seconds=10),
    )
    await views.apply(progressed)
    assert [d.deployment_id for d in (await views.reader.assignments("acme", "edge-1", NOW))[0]] == []
    assert [d.deployment_id for d in await views.reader.open_deployments()] == ["due", "later", "other"]
    retried = DeploymentRetried(
        deployment_id="due", attempt=2, retry_count=1, automatic=True, deadline_at=NOW + timedelta(hours=2)
    )
    await views.apply(retried)
    row = await views.reader.deployment("due")
    assert row is not None
    assert (row.status, row.attempt, row.retry_count, row.error_message) == ("pending", 2, 1, "hash mismatch")
    cancel = DeploymentCancelled(
        deployment_id="later", server_id="edge-1", previous_status="pending", reason="x"
    )
    await views.apply(cancel)
    assert await views.reader.cancelled_among("acme", "edge-1", ["due", "later"]) == ["later"]
    page = await views.reader.deployments_page(org_id="acme", statuses=["pending"], page_size=1)
    assert [d.deployment_id for d in page.rows] == ["other"]
    assert page.next_page_token == "1"


async def test_a_rollout_counts_each_wave_from_its_deployments(views: _Views) -> None:
    started = RolloutStarted(
        rollout_id="r1",
        org_id="acme",
        version_id="v1",
        ai_module="reader",
        semantic_version="1.0.0",
        artifact_sha256=SHA,
        artifact_size_bytes=10,
        server_count=3,
        wave_sizes=[1, 2],
        failure_threshold=0.0,
        rollback_on_failure=True,
        scheduled_at=NOW,
        deadline_s=3600,
        max_retries=3,
        backoff_base_s=10.0,
        health=HealthLimits(),
        started_by="carol",
    )
    targets = RolloutTargetsAdded(rollout_id="r1", first_index=0, server_ids=["a", "b", "c"])
    wave0 = RolloutWaveStarted(rollout_id="r1", wave=0, first_index=0, count=1, started_at=NOW)
    d0 = wave_deployment_id("r1", 0, "a")
    await views.apply(started, targets, wave0, _deployment(d0, "v1", server="a", rollout_id="r1", wave=0))
    rollout = await views.reader.rollout("r1")
    assert rollout is not None
    assert rollout.state == "running"
    assert [(w.size, w.in_progress, w.started) for w in rollout.waves] == [(1, 1, True), (2, 0, False)]
    done = DeploymentProgressed(
        deployment_id=d0, server_id="a", attempt=1, status="completed", phase="done", progress_percent=100
    )
    await views.apply(
        done, RolloutFinished(rollout_id="r1", outcome="completed", completed_servers=1, failed_servers=0)
    )
    rollout = await views.reader.rollout("r1")
    assert rollout is not None
    assert rollout.waves[0].completed == 1
    assert rollout.state == "completed"
    assert await views.reader.unfinished_rollout_ids() == []
    assert [r.rollout_id for r in (await views.reader.rollouts_page(org_id="acme")).rows] == ["r1"]


async def test_a_change_is_announced_to_the_servers_subscribers(views: _Views, deploy_postgres: str) -> None:
    changes = ViewChanges(deploy_postgres, changes_channel(views.schema))
    stop = asyncio.Event()
    task = asyncio.create_task(changes.run(stop))
    try:
        with changes.subscription(edge_server_stream_id("acme", "edge-1")) as notices:
            await asyncio.wait_for(changes.listening.wait(), 10)
            while not notices.empty():
                notices.get_nowait()  # the resync of the first connection
            await views.apply(_server(), _server("edge-2"))
            key, kind = await asyncio.wait_for(notices.get(), 10)
            assert (key, kind) == ("acme/edge-1", "server")
    finally:
        stop.set()
        await task


async def test_heartbeats_noted_are_written_together_and_a_late_one_never_wins(views: _Views) -> None:
    old, new = NOW - timedelta(seconds=20), NOW - timedelta(seconds=2)
    views.liveness.note(EdgeHeartbeat("acme", "edge-1", new, 10, "d1"))
    views.liveness.note(EdgeHeartbeat("acme", "edge-1", old, 20, ""))  # arrived late: dropped
    views.liveness.note(EdgeHeartbeat("acme", "edge-2", old, 30, ""))
    views.liveness.note(EdgeHeartbeat("globex", "edge-1", old, 40, ""))
    # noted beats count before they are written (the conductor judges silence on them)
    assert (await views.liveness.last_heartbeat_times())[("acme", "edge-1")] == new
    assert set(await views.liveness.last_heartbeats("acme")) == {("acme", "edge-1"), ("acme", "edge-2")}
    await views.liveness.flush()
    views.liveness.note(EdgeHeartbeat("acme", "edge-2", old - timedelta(seconds=1), 50, ""))
    await views.liveness.flush()  # older than the stored row: the row stays
    stored = await views.liveness.last_heartbeats()
    assert {key: (b.last_at, b.free_disk_bytes, b.active_deployment_id) for key, b in stored.items()} == {
        ("acme", "edge-1"): (new, 10, "d1"),
        ("acme", "edge-2"): (old, 30, ""),
        ("globex", "edge-1"): (old, 40, ""),
    }


async def test_the_mobile_fleet_lists_servers_up_to_its_limit_and_counts_the_rest(views: _Views) -> None:
    await views.apply(*(_server(f"edge-{n}") for n in (3, 1, 2)))
    servers, left_out = await views.reader.fleet("acme", limit=2)
    assert ([s.server_id for s in servers], left_out) == (["edge-1", "edge-2"], 1)
    servers, left_out = await views.reader.fleet("acme")
    assert ([s.server_id for s in servers], left_out) == (["edge-1", "edge-2", "edge-3"], 0)
    assert await views.reader.fleet("globex") == ([], 0)
