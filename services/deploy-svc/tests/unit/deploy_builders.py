"""Builders and an in-memory DeployReads for deploy-svc's unit tests.

`StoreReads` answers the read port by folding the in-memory store's log on every call: the same facts
the PostgreSQL views hold, without a database, so the commands and the conductor are tested against
what they appended themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial

import modelyard_events.store.memory as memory_store
from modelyard_deploy.app.commands import DeployCommands
from modelyard_deploy.app.ports import DeploymentLine, KnownVersion, ServerFacts
from modelyard_deploy.domain.deployment import Deployment, DeploymentSpec
from modelyard_deploy.domain.edge_server import EdgeFacts, EdgeServer
from modelyard_deploy.domain.rollout import Rollout
from modelyard_events.caller import Caller
from modelyard_events.envelope import Actor, CommandContext, DomainEvent, EventEnvelope
from modelyard_events.schemas.deploy import (
    DEPLOYMENT_STREAM,
    EDGE_SERVER_STREAM,
    ROLLOUT_STREAM,
    HealthLimits,
    RunningModel,
)
from modelyard_events.store.memory import InMemoryEventStore

NOW = datetime.now(UTC).replace(microsecond=0)
_PREPARE_APPEND = vars(memory_store)["prepare_append"]
ORG = "acme"
MODULE = "digits"
SHA = "a" * 64
OPERATOR = Caller(Actor(subject="olga", roles=("super_admin",)))
AGENT = Caller(Actor(subject="edge-1", roles=("edge",)))


def known_version(version_id: str = "v2", **changes: object) -> KnownVersion:
    """A released version of MODULE in production, for any platform and agents from 1.0.0."""
    version = KnownVersion(
        version_id=version_id,
        org_id=ORG,
        ai_module=MODULE,
        semantic_version="2.0.0" if version_id == "v2" else "1.0.0",
        status="released",
        environments=("production",),
        artifact_sha256=SHA,
        artifact_size_bytes=1000,
        min_edge_version="1.0.0",
        supported_platforms=("linux/amd64", "linux/arm64"),
        released_to=("production",),
    )
    return replace(version, **changes)  # type: ignore[arg-type]


def server_facts(server_id: str = "edge-1", **changes: object) -> ServerFacts:
    """A production server on linux/amd64 with agent 1.2.0."""
    facts = ServerFacts(server_id, ORG, "production", "linux/amd64", "1.2.0")
    return replace(facts, **changes)  # type: ignore[arg-type]


def edge_facts(
    server_id: str = "edge-1", environment: str = "production", edge_version: str = "1.2.0"
) -> EdgeFacts:
    """What an agent registers with."""
    return EdgeFacts(server_id, environment, "linux/amd64", edge_version, hostname=f"{server_id}.local")


def deployment_spec(deployment_id: str = "d-1", **changes: object) -> DeploymentSpec:
    """A deployment of v2 to edge-1 scheduled at NOW, an hour to finish, 3 retries from 10 s."""
    spec = DeploymentSpec(
        deployment_id=deployment_id,
        org_id=ORG,
        server_id="edge-1",
        version_id="v2",
        ai_module=MODULE,
        semantic_version="2.0.0",
        artifact_sha256=SHA,
        artifact_size_bytes=1000,
        scheduled_at=NOW,
        deadline_at=NOW + timedelta(hours=1),
        max_retries=3,
        backoff_base_s=10.0,
        health=HealthLimits(),
        created_by="olga",
        previous_version_id="v1",
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


@dataclass
class Clock:
    """A clock the test moves."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class ClockedStore(InMemoryEventStore):
    """The in-memory store stamping events with the test's clock (the deployment's updated_at, the
    rollout's created_at), so the conductor's silence and deadline checks see one timeline."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    async def append(
        self,
        stream_type: str,
        stream_id: str,
        expected_version: int,
        events: Sequence[DomainEvent],
        context: CommandContext,
    ) -> list[EventEnvelope]:
        # The store prepares the rows before its first await, so the stamp is this call's clock.
        vars(memory_store)["prepare_append"] = partial(_PREPARE_APPEND, now=self.clock())
        try:
            return await super().append(stream_type, stream_id, expected_version, events, context)
        finally:
            vars(memory_store)["prepare_append"] = _PREPARE_APPEND


@dataclass
class StoreReads:
    """DeployReads over the in-memory store's log (plus the registry's versions the test sets)."""

    store: InMemoryEventStore
    versions: dict[str, KnownVersion] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    async def version(self, version_id: str) -> KnownVersion | None:
        return self.versions.get(version_id)

    async def server(self, org_id: str, server_id: str) -> ServerFacts | None:
        return next(
            (s for s in await self._servers() if (s.org_id, s.server_id) == (org_id, server_id)), None
        )

    async def servers_in_environment(self, org_id: str, environment: str) -> list[ServerFacts]:
        servers = await self._servers()
        return sorted(
            (s for s in servers if s.org_id == org_id and s.environment == environment),
            key=lambda s: s.server_id,
        )

    async def servers_serving(self, org_id: str, ai_module: str, version_id: str) -> list[ServerFacts]:
        busy = {
            d.server_id
            for d in await self._deployments()
            if d.org_id == org_id and d.version_id == version_id and d.outcome == "open"
        }
        return [
            s
            for s in await self._servers()
            if s.org_id == org_id and (s.running.get(ai_module) == version_id or s.server_id in busy)
        ]

    async def open_deployments(self) -> list[DeploymentLine]:
        return [_line(d) for d in await self._deployments() if d.outcome == "open"]

    async def rollout_deployments(self, rollout_id: str) -> list[DeploymentLine]:
        return [_line(d) for d in await self._deployments() if d.rollout_id == rollout_id]

    async def unfinished_rollout_ids(self) -> list[str]:
        return [r.rollout_id for r in await self._rollouts() if not r.finished]

    async def caught_up(self, wait_s: float = 0.0) -> bool:
        return True

    async def every_deployment(self) -> list[DeploymentLine]:
        """Every deployment, oldest first (for the tests' own look-ups)."""
        return [_line(d) for d in await self._deployments()]

    async def _streams(self, stream_type: str) -> dict[str, list]:  # type: ignore[type-arg]
        streams: dict[str, list] = {}  # type: ignore[type-arg]
        for envelope in await self.store.read_all(0, 10**9):
            if envelope.stream_type == stream_type:
                streams.setdefault(envelope.stream_id, []).append(envelope)
        return streams

    async def _servers(self) -> list[ServerFacts]:
        found = []
        for envelopes in (await self._streams(EDGE_SERVER_STREAM)).values():
            server = EdgeServer.from_events(envelopes)
            if server is not None:
                found.append(_facts(server))
        return found

    async def _deployments(self) -> list[Deployment]:
        return [Deployment.from_events(e) for e in (await self._streams(DEPLOYMENT_STREAM)).values()]

    async def _rollouts(self) -> list[Rollout]:
        return [Rollout.from_events(e) for e in (await self._streams(ROLLOUT_STREAM)).values()]


def _facts(server: EdgeServer) -> ServerFacts:
    return ServerFacts(
        server.server_id,
        server.org_id,
        server.environment,
        server.platform,
        server.edge_version,
        dict(server.running),
    )


def _line(d: Deployment) -> DeploymentLine:
    assert d.updated_at is not None
    return DeploymentLine(
        deployment_id=d.deployment_id,
        org_id=d.org_id,
        server_id=d.server_id,
        version_id=d.version_id,
        ai_module=d.ai_module,
        status=d.status,
        attempt=d.attempt,
        retry_at=d.retry_at,
        deadline_at=d.deadline_at,
        scheduled_at=d.scheduled_at,
        rollout_id=d.rollout_id,
        wave=d.wave,
        kind=d.kind,
        previous_version_id=d.previous_version_id,
        updated_at=d.updated_at,
    )


@dataclass
class World:
    """Commands over an in-memory store, its reads and a test clock."""

    store: InMemoryEventStore
    reads: StoreReads
    clock: Clock
    commands: DeployCommands


def world(*versions: KnownVersion) -> World:
    """A fresh store with the given versions known (default: v1 and v2 released)."""
    clock = Clock()
    store = ClockedStore(clock)
    reads = StoreReads(
        store, {v.version_id: v for v in versions or (known_version("v1"), known_version("v2"))}
    )
    return World(store, reads, clock, DeployCommands(store, reads, clock))


async def register_fleet(w: World, *server_ids: str, running: str | None = "v1") -> None:
    """Register servers in production, each running `running` of MODULE (None: nothing)."""
    models = [RunningModel(ai_module=MODULE, version_id=running, semantic_version="1.0.0")] if running else []
    for server_id in server_ids:
        await w.commands.register_edge(ORG, edge_facts(server_id), AGENT, running=models)
