"""Kafka in: job-svc's and the registry's logs tell dataset-svc which published versions were used.

A job created on a version (training or evaluation), an evaluation the registry asked for on one and
a model version registered from one each add a row to `dataset_version_uses` (projections/uses.py),
which deletions consult. It runs on ProjectionRunner like every consumer: each message's hash is
recomputed and a run is applied only through a head signed with the source's pinned key (a forged
JobCreated on the topic is dead-lettered and marks nothing as used), gaps are healed from the
source's ReadEvents, offsets are committed after the row.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_dataset.projections.uses import VersionUses
from modelyard_events.consumer.runner import ProjectionRunner, SourceTopic
from modelyard_events.kafka_security import KafkaSecurity
from modelyard_events.registry import EventRegistry
from modelyard_events.schemas.jobs import JOB_EVENTS
from modelyard_events.schemas.registry import REGISTRY_EVENTS
from modelyard_events.signing import HeadVerifier
from modelyard_events.store.ports import EventSource
from modelyard_events.topics import events_topic

JOB_SOURCE, REGISTRY_SOURCE = "job", "registry"
USE_EVENTS = EventRegistry.combined(JOB_EVENTS, REGISTRY_EVENTS)


def version_uses_runner(
    engine: AsyncEngine,
    *,
    job_log: tuple[EventSource, HeadVerifier],
    registry_log: tuple[EventSource, HeadVerifier],
    views_schema: str,
    bootstrap_servers: str | None,
    topic_namespace: str,
    kafka_security: KafkaSecurity | None = None,
) -> ProjectionRunner:
    """The runner of the uses table over job-svc's and the registry's topics."""
    projection = VersionUses(views_schema)
    return ProjectionRunner(
        engine,
        projection,
        USE_EVENTS,
        [
            SourceTopic(JOB_SOURCE, events_topic("job", topic_namespace), *job_log),
            SourceTopic(REGISTRY_SOURCE, events_topic("registry", topic_namespace), *registry_log),
        ],
        bootstrap_servers,
        group_id=f"dataset-svc.{views_schema}.{projection.name}",
        security=kafka_security,
    )
