"""Kafka in: deploy-svc's own log feeds its views; the registry's log feeds its known versions and
carries the registry's release rollbacks to the fleet.

All run on ProjectionRunner (ordered per source, verified against the source's signed heads, gaps
healed from the source's ReadEvents, offsets committed after the effect). The reaction's effect is
a rollout whose id derives from the registry event's id, so a redelivered, replayed or re-read
ModelReleased starts nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_deploy.app.commands import DeployCommands
from modelyard_deploy.projections.known_versions import REGISTRY_SOURCE, KnownVersions
from modelyard_deploy.projections.views import DEPLOY_SOURCE, DeployViews
from modelyard_events.caller import Caller
from modelyard_events.consumer.runner import ProjectionRunner, SourceTopic
from modelyard_events.db import checked_schema
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.kafka_security import KafkaSecurity
from modelyard_events.schemas.deploy import DEPLOY_EVENTS
from modelyard_events.schemas.registry import REGISTRY_EVENTS, ModelReleased
from modelyard_events.signing import HeadVerifier
from modelyard_events.store.ports import EventSource
from modelyard_events.topics import events_topic


@dataclass
class ReleaseRollbackReaction:
    """A registry ModelReleased with rollback=True → a rollback rollout of the fleet to that version."""

    commands: DeployCommands
    schema: str
    name: str = "release_rollback_reaction"

    async def create_tables(self, conn: AsyncConnection) -> None:
        """Only the schema: the runner's checkpoint is all the state this reaction keeps."""
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {checked_schema(self.schema)}"))

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """Start the fleet's rollback for a release rollback; ignore everything else."""
        if isinstance(event, ModelReleased) and event.rollback:
            caller = Caller(envelope.actor, envelope.correlation_id, str(envelope.event_id))
            await self.commands.start_release_rollback(event, str(envelope.event_id), caller)


@dataclass(frozen=True)
class DeployRunners:
    """Every runner of deploy-svc; create their tables one after the other (they share schemas)."""

    views: ProjectionRunner
    known_versions: ProjectionRunner
    release_rollbacks: ProjectionRunner

    def all(self) -> list[ProjectionRunner]:
        """In the order their tables are created."""
        return [self.views, self.known_versions, self.release_rollbacks]


def deploy_runners(
    engine: AsyncEngine,
    *,
    deploy_log: tuple[EventSource, HeadVerifier],
    registry_log: tuple[EventSource, HeadVerifier],
    views_schema: str,
    reactions_schema: str,
    commands: DeployCommands,
    bootstrap_servers: str,
    topic_namespace: str,
    kafka_security: KafkaSecurity | None = None,
) -> DeployRunners:
    """The views over deploy-svc's own log, the known versions and the reaction over the registry's."""
    own = SourceTopic(DEPLOY_SOURCE, events_topic("deploy", topic_namespace), *deploy_log)
    registry = SourceTopic(REGISTRY_SOURCE, events_topic("registry", topic_namespace), *registry_log)

    def runner(
        projection: DeployViews | KnownVersions | ReleaseRollbackReaction, source: SourceTopic
    ) -> ProjectionRunner:
        return ProjectionRunner(
            engine,
            projection,
            DEPLOY_EVENTS if source is own else REGISTRY_EVENTS,
            [source],
            bootstrap_servers,
            group_id=f"deploy-svc.{projection.schema}.{projection.name}",
            security=kafka_security,
        )

    return DeployRunners(
        views=runner(DeployViews(views_schema), own),
        known_versions=runner(KnownVersions(views_schema), registry),
        release_rollbacks=runner(ReleaseRollbackReaction(commands, reactions_schema), registry),
    )
