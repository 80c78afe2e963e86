"""Kafka in: job-svc's events register versions and record evaluations; the registry's own log feeds its view.

Both run on ProjectionRunner (ordered per source, verified against the source's signed heads, gaps
healed from the source's ReadEvents, offsets committed after the effect). The job reaction's effect
is an append to the registry's log, idempotent by the ModelModule aggregate itself: a redelivered,
replayed or re-read JobCompleted finds its job already registered and decides nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_events.caller import Caller
from modelyard_events.consumer.runner import ProjectionRunner, SourceTopic
from modelyard_events.db import checked_schema
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.kafka_security import KafkaSecurity
from modelyard_events.schemas.jobs import (
    JOB_EVENTS,
    JobCancelled,
    JobCompleted,
    JobCreated,
    JobEvaluationCompleted,
    JobFailed,
)
from modelyard_events.schemas.registry import REGISTRY_EVENTS
from modelyard_events.signing import HeadVerifier
from modelyard_events.store.ports import EventSource
from modelyard_events.topics import events_topic
from modelyard_registry.app.commands import RegistryCommands
from modelyard_registry.projections.views import REGISTRY_SOURCE, RegistryViews

JOB_SOURCE = "job"


@dataclass
class JobEventsReaction:
    """JobCompleted → a draft version; an evaluation job's end → ModelEvaluated or back to draft."""

    commands: RegistryCommands
    schema: str
    name: str = "job_events_reaction"

    async def create_tables(self, conn: AsyncConnection) -> None:
        """Which job ids are evaluation runs of which module (JobFailed does not say)."""
        s = checked_schema(self.schema)
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {s}"))
        await conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {s}.evaluation_jobs (job_id text PRIMARY KEY, "
                "org_id text NOT NULL, ai_module text NOT NULL)"
            )
        )
        # Who created each job (four eyes), for JobCompleted events that do not say it themselves.
        await conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {s}.job_creators "
                "(job_id text PRIMARY KEY, created_by text NOT NULL)"
            )
        )

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """Decide what the job event means for the registry."""
        caller = Caller(envelope.actor, envelope.correlation_id, str(envelope.event_id))
        s = checked_schema(self.schema)
        if isinstance(event, JobCreated):
            await conn.execute(
                text(f"INSERT INTO {s}.job_creators VALUES (:j, :c) ON CONFLICT DO NOTHING"),
                {"j": event.job_id, "c": event.created_by},
            )
            if event.kind == "evaluation" and event.model_input is not None:
                await conn.execute(
                    text(f"INSERT INTO {s}.evaluation_jobs VALUES (:j, :o, :m) ON CONFLICT DO NOTHING"),
                    {"j": event.job_id, "o": event.org_id, "m": event.model_input.ai_module},
                )
        elif isinstance(event, JobCompleted):
            creator = (
                await conn.execute(
                    text(f"SELECT created_by FROM {s}.job_creators WHERE job_id = :j"), {"j": event.job_id}
                )
            ).scalar()
            await self.commands.register_completed(event, caller, str(creator or ""))
        elif isinstance(event, JobEvaluationCompleted):
            await self.commands.record_evaluation(event, caller)
        elif isinstance(event, JobFailed | JobCancelled):
            row = (
                await conn.execute(
                    text(f"SELECT org_id, ai_module FROM {s}.evaluation_jobs WHERE job_id = :j"),
                    {"j": event.job_id},
                )
            ).first()
            if row is not None:
                verb = "failed" if isinstance(event, JobFailed) else "was cancelled"
                reason = f"evaluation run {event.job_id} {verb}: {event.reason or 'no reason given'}"
                await self.commands.record_evaluation_failure(
                    str(row[0]), str(row[1]), event.job_id, reason, caller
                )


def registry_runners(
    engine: AsyncEngine,
    *,
    registry_log: tuple[EventSource, HeadVerifier],
    job_log: tuple[EventSource, HeadVerifier],
    views_schema: str,
    reactions_schema: str,
    commands: RegistryCommands,
    bootstrap_servers: str,
    topic_namespace: str,
    kafka_security: KafkaSecurity | None = None,
) -> tuple[ProjectionRunner, ProjectionRunner]:
    """(views over the registry's own log, reaction to job-svc's log), each source with its pinned keys."""
    own = SourceTopic(REGISTRY_SOURCE, events_topic("registry", topic_namespace), *registry_log)
    jobs = SourceTopic(JOB_SOURCE, events_topic("job", topic_namespace), *job_log)
    views = ProjectionRunner(
        engine,
        RegistryViews(views_schema),
        REGISTRY_EVENTS,
        [own],
        bootstrap_servers,
        group_id=f"registry-svc.{views_schema}",
        security=kafka_security,
    )
    reaction = ProjectionRunner(
        engine,
        JobEventsReaction(commands, reactions_schema),
        JOB_EVENTS,
        [jobs],
        bootstrap_servers,
        group_id=f"registry-svc.{reactions_schema}",
        security=kafka_security,
    )
    return views, reaction
