"""The composition root of dataset-svc: store, blob store, relay, views and gRPC, built once, run together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from modelyard.v1 import datasets_pb2, datasets_pb2_grpc, events_pb2, events_pb2_grpc
from modelyard_blobs.factory import open_blob_store
from modelyard_blobs.staging import Staging
from modelyard_dataset.app.as_of import dataset_as_of
from modelyard_dataset.app.commands import DatasetCommands
from modelyard_dataset.app.lifecycle import DatasetLifecycle
from modelyard_dataset.app.receiving import UploadReceiver
from modelyard_dataset.config import DatasetSettings
from modelyard_dataset.consumers import JOB_SOURCE, REGISTRY_SOURCE, version_uses_runner
from modelyard_dataset.freshness import ViewsFreshness
from modelyard_dataset.grpc_api import DatasetServicer
from modelyard_dataset.policy import DATASET_POLICY
from modelyard_dataset.projections.queries import DatasetViewReader
from modelyard_dataset.projections.uses import DeletionReads, VersionUses
from modelyard_dataset.projections.views import DatasetViews
from modelyard_events.consumer import ProjectionRunner, SourceTopic
from modelyard_events.db import create_engine
from modelyard_events.projection_replay import target_of
from modelyard_events.relay import Relay
from modelyard_events.schemas.datasets import DATASET_EVENTS
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.topics import events_topic
from modelyard_grpc import AuthInterceptor, EventLogServicer, GrpcEventSource, serving
from modelyard_grpc.projection_audit import ProjectionAuditServicer

log = logging.getLogger(__name__)
_ABANDONED_AFTER_S = 24 * 3600
SERVICES = [
    datasets_pb2.DESCRIPTOR.services_by_name["DatasetService"],
    events_pb2.DESCRIPTOR.services_by_name["EventLog"],
    events_pb2.DESCRIPTOR.services_by_name["ProjectionAudit"],
]
SERVICE_NAMES = tuple(service.full_name for service in SERVICES)  # health and reflection


@asynccontextmanager
async def running_dataset_service(settings: DatasetSettings, stop: asyncio.Event) -> AsyncIterator[int]:
    """Start every part of dataset-svc; yield the bound gRPC port; on exit stop them all cleanly."""
    engine = create_engine(settings.database_url, pool_size=10)
    store = PostgresEventStore(engine, settings.store_schema, signer=settings.head_signer())
    await store.create_schema()
    await store.sign_tail()
    blobs = open_blob_store(settings.blob_settings())
    commands = DatasetCommands(store, blobs, settings.plan_of, settings.readiness_policy)
    staging = Staging(settings.staging)
    if removed := staging.remove_abandoned(older_than_s=_ABANDONED_AFTER_S):
        log.info("removed %d staged files abandoned by an earlier process", removed)
    receiver = UploadReceiver(staging, settings.max_file_bytes)
    topic = events_topic("dataset", settings.topic_namespace)
    views = ProjectionRunner(
        engine,
        DatasetViews(settings.views_schema),
        DATASET_EVENTS,
        [SourceTopic("dataset", topic, store, settings.keys_for("dataset"))],
        settings.kafka_bootstrap_servers,
        group_id=f"dataset-svc.{settings.views_schema}",
        security=settings.kafka_security,
    )
    # Which versions jobs and models used (deletions consult it): job-svc's and the registry's logs,
    # read with this service's own token when a gap must be healed through their ReadEvents.
    job_channel = settings.grpc_channel(settings.job_svc_target, settings.own_token())
    registry_channel = settings.grpc_channel(settings.registry_svc_target, settings.own_token())
    uses = version_uses_runner(
        engine,
        job_log=(GrpcEventSource(events_pb2_grpc.EventLogStub(job_channel)), settings.keys_for(JOB_SOURCE)),
        registry_log=(
            GrpcEventSource(events_pb2_grpc.EventLogStub(registry_channel)),
            settings.keys_for(REGISTRY_SOURCE),
        ),
        views_schema=settings.views_schema,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic_namespace=settings.topic_namespace,
        kafka_security=settings.kafka_security,
    )
    lifecycle = DatasetLifecycle(store, blobs, commands.load, DeletionReads(engine, settings.views_schema))
    relay = Relay(
        store,
        settings.database_url,
        settings.kafka_bootstrap_servers,
        topic,
        security=settings.kafka_security,
    )
    reader = DatasetViewReader(settings.views_schema)
    projection = views.projection
    freshness = ViewsFreshness(engine, store, projection.schema, projection.name, "dataset", timeout_s=5.0)
    servicers = [
        (
            datasets_pb2_grpc.add_DatasetServiceServicer_to_server,
            DatasetServicer(commands, receiver, blobs, (engine, reader), store, freshness, lifecycle),
        ),
        (events_pb2_grpc.add_EventLogServicer_to_server, EventLogServicer(store)),
        (
            events_pb2_grpc.add_ProjectionAuditServicer_to_server,
            ProjectionAuditServicer(
                engine,
                [target_of(views, DatasetViews), target_of(uses, VersionUses)],
                {"dataset": dataset_as_of(store)},
            ),
        ),
    ]
    auth = AuthInterceptor(
        settings.token_verifier(), DATASET_POLICY, plan_of=lambda org: settings.plan_of(org).key
    )
    await views.create_tables()
    await uses.create_tables()  # after the views: they share a schema (CREATE … IF NOT EXISTS races)
    tasks = [
        asyncio.create_task(relay.run(stop), name="relay"),
        asyncio.create_task(views.run(stop), name="views"),
        asyncio.create_task(uses.run(stop), name="version-uses"),
    ]
    try:
        async with serving(
            servicers,
            service_names=SERVICE_NAMES,
            port=settings.dataset_grpc_port,
            bind=settings.grpc_bind,
            interceptors=[auth],
            credentials=settings.server_credentials(),
            grace_s=settings.grpc_grace_s,
        ) as server:
            log.info(
                "dataset-svc serving on %s:%d, blobs in %s", settings.grpc_bind, server.port, blobs.describe()
            )
            yield server.port
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await job_channel.close()
        await registry_channel.close()
        await store.close()
        await engine.dispose()
