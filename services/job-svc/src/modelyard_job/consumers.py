"""Kafka in: the trainers' reports become job transitions, the registry's evaluation requests become
evaluation jobs; all three logs feed the views, and all five (with dataset-svc's and deploy-svc's)
feed the audit view and the lineage graph.

All run on ProjectionRunner (ordered per source, gaps healed from the source's ReadEvents, offsets
committed after the effect). The reactions are idempotent by the aggregate itself: a redelivered or
stale report decides nothing, and an evaluation request whose job exists creates nothing, so
at-least-once delivery is enough for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_events.caller import Caller
from modelyard_events.consumer.projection import Decoded
from modelyard_events.consumer.runner import ProjectionRunner, SourceTopic
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.kafka_security import KafkaSecurity
from modelyard_events.registry import EventRegistry
from modelyard_events.schemas.jobs import JOB_EVENTS
from modelyard_events.schemas.registry import REGISTRY_EVENTS, ModelEvaluationRequested
from modelyard_events.schemas.training import (
    TRAINER_EVENTS,
    EpochCompleted,
    TrainingLogged,
    TrainingPhaseChanged,
    TrainingProgressed,
    TrainingReport,
)
from modelyard_events.signing import HeadVerifier
from modelyard_events.store.ports import EventSource
from modelyard_events.topics import events_topic
from modelyard_grpc import DependencyFailed, DependencyUnavailable
from modelyard_job.app.commands import JobCommands
from modelyard_job.projections.audit_views import AUDIT_EVENTS, DATASET_SOURCE, DEPLOY_SOURCE, AuditViews
from modelyard_job.projections.usage_views import USAGE_EVENTS, UsageViews
from modelyard_job.projections.views import JOB_SOURCE, REGISTRY_SOURCE, TRAINER_SOURCE, JobViews

VIEW_EVENTS = EventRegistry.combined(JOB_EVENTS, TRAINER_EVENTS, REGISTRY_EVENTS)
# Progress, epoch, phase and log reports never change a job (the views take them straight from the
# trainer's log), so the reaction does not even load the job for them: they are most of the traffic.
_NEVER_DECIDE = (TrainingProgressed, EpochCompleted, TrainingPhaseChanged, TrainingLogged)


@dataclass
class TrainingReportReaction:
    """Hands each trainer report to the TrainingJob aggregate (a Projection whose effect is an append)."""

    commands: JobCommands
    schema: str
    name: str = "training_report_reaction"

    async def create_tables(self, conn: AsyncConnection) -> None:
        """Only the runner's checkpoint table is needed."""

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """Decide the job transition the report implies and append it to job-svc's log."""
        if not isinstance(event, TrainingReport) or isinstance(event, _NEVER_DECIDE):
            return
        caller = Caller(envelope.actor, envelope.correlation_id, str(envelope.event_id))
        await self.commands.record_report(event, caller)

    async def apply_batch(self, events: Sequence[Decoded], conn: AsyncConnection) -> None:
        """The reports in order, without a savepoint each: a report decided twice decides nothing."""
        for event, envelope in events:
            await self.apply(event, envelope, conn)


@dataclass
class EvaluationRequestReaction:
    """Turns each ModelEvaluationRequested of the registry into an evaluation job (a Projection whose
    effect is an append to job-svc's log)."""

    commands: JobCommands
    schema: str
    name: str = "evaluation_request_reaction"

    async def create_tables(self, conn: AsyncConnection) -> None:
        """Only the runner's checkpoint table is needed."""

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """Create the evaluation job the registry asked for (nothing for its other events).

        dataset-svc unreachable, or refusing job-svc's token, is not the request's fault: raised as a
        ConnectionError, which the runner treats as transient (the request is read again from the
        registry's log at its next catch-up, never dead-lettered), so the evaluation waits, not lost.
        """
        if not isinstance(event, ModelEvaluationRequested):
            return
        caller = Caller(envelope.actor, envelope.correlation_id, str(envelope.event_id))
        try:
            await self.commands.create_evaluation(event, caller)
        except (DependencyUnavailable, DependencyFailed) as error:
            raise ConnectionError(f"evaluation job {event.job_id} waits: {error}") from error


@dataclass(frozen=True)
class JobRunners:
    """job-svc's consumers: the views, the trainer report reaction, the registry request reaction."""

    views: ProjectionRunner
    reports: ProjectionRunner
    evaluations: ProjectionRunner
    audit: ProjectionRunner | None = None  # the audit view and lineage, when the five logs are given
    usage: ProjectionRunner | None = None  # each organization's usage, when dataset-svc's log is given


def job_runners(
    engine: AsyncEngine,
    *,
    job_log: tuple[EventSource, HeadVerifier],
    trainer_log: tuple[EventSource, HeadVerifier],
    registry_log: tuple[EventSource, HeadVerifier],
    views_schema: str,
    reactions_schema: str,
    commands: JobCommands,
    bootstrap_servers: str,
    topic_namespace: str,
    kafka_security: KafkaSecurity | None = None,
    dataset_log: tuple[EventSource, HeadVerifier] | None = None,
    deploy_log: tuple[EventSource, HeadVerifier] | None = None,
) -> JobRunners:
    """The views over the three logs, the report reaction over the trainers' log and the evaluation
    request reaction over the registry's.

    Each log comes with the public keys pinned for its source. With dataset-svc's and deploy-svc's
    logs too, a fourth runner projects all five into the audit view and the lineage graph (its own
    consumer group: a slow audit insert never delays the views the dispatcher waits on). With
    dataset-svc's log, a fifth projects the job, dataset and registry logs into each organization's
    usage (its own consumer group too).
    """
    jobs = SourceTopic(JOB_SOURCE, events_topic("job", topic_namespace), *job_log)
    trainers = SourceTopic(TRAINER_SOURCE, events_topic("trainer", topic_namespace), *trainer_log)
    registry = SourceTopic(REGISTRY_SOURCE, events_topic("registry", topic_namespace), *registry_log)
    views = ProjectionRunner(
        engine,
        JobViews(views_schema),
        VIEW_EVENTS,
        [jobs, trainers, registry],
        bootstrap_servers,
        group_id=f"job-svc.{views_schema}",
        security=kafka_security,
    )
    reaction = ProjectionRunner(
        engine,
        TrainingReportReaction(commands, reactions_schema),
        TRAINER_EVENTS,
        [trainers],
        bootstrap_servers,
        group_id=f"job-svc.{reactions_schema}",
        security=kafka_security,
    )
    evaluations = ProjectionRunner(
        engine,
        EvaluationRequestReaction(commands, reactions_schema),
        REGISTRY_EVENTS,
        [registry],
        bootstrap_servers,
        group_id=f"job-svc.{reactions_schema}.registry",
        security=kafka_security,
    )
    audit = usage = None
    if dataset_log is not None:
        datasets = SourceTopic(DATASET_SOURCE, events_topic("dataset", topic_namespace), *dataset_log)
        usage = ProjectionRunner(
            engine,
            UsageViews(views_schema),
            USAGE_EVENTS,
            [datasets, jobs, registry],
            bootstrap_servers,
            group_id=f"job-svc.{views_schema}.usage",
            security=kafka_security,
        )
    if dataset_log is not None and deploy_log is not None:
        datasets = SourceTopic(DATASET_SOURCE, events_topic("dataset", topic_namespace), *dataset_log)
        deploys = SourceTopic(DEPLOY_SOURCE, events_topic("deploy", topic_namespace), *deploy_log)
        audit = ProjectionRunner(
            engine,
            AuditViews(views_schema),
            AUDIT_EVENTS,
            [datasets, jobs, trainers, registry, deploys],
            bootstrap_servers,
            group_id=f"job-svc.{views_schema}.audit",
            security=kafka_security,
        )
    return JobRunners(views, reaction, evaluations, audit, usage)
