"""The composition root of registry-svc: store, blob store, runners, gRPC and the download endpoint."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from modelyard.v1 import events_pb2, events_pb2_grpc, registry_pb2, registry_pb2_grpc
from modelyard_artifacts.http_server import download_app, serve_downloads
from modelyard_artifacts.manifest import ManifestSigner
from modelyard_artifacts.signed_urls import UrlSigner, UrlVerifier
from modelyard_blobs import open_blob_store
from modelyard_events.db import create_engine
from modelyard_events.projection_replay import target_of
from modelyard_events.relay import Relay
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.topics import events_topic
from modelyard_grpc import AuthInterceptor, EventLogServicer, GrpcEventSource, serving
from modelyard_grpc.projection_audit import ProjectionAuditServicer
from modelyard_registry.app.artifact_intake import ArtifactIntake
from modelyard_registry.app.as_of import model_version_as_of
from modelyard_registry.app.commands import RegistryCommands, RegistryDefaults, utc_now
from modelyard_registry.config import RegistrySettings
from modelyard_registry.consumers import JOB_SOURCE, registry_runners
from modelyard_registry.downloads import bearer_subject
from modelyard_registry.grpc_api import RegistryServicer
from modelyard_registry.policy import REGISTRY_POLICY
from modelyard_registry.projections.queries import RegistryViewReader
from modelyard_registry.projections.views import REGISTRY_SOURCE, RegistryViews

log = logging.getLogger(__name__)
SERVICES = [
    registry_pb2.DESCRIPTOR.services_by_name["RegistryService"],
    events_pb2.DESCRIPTOR.services_by_name["EventLog"],
    events_pb2.DESCRIPTOR.services_by_name["ProjectionAudit"],
]
SERVICE_NAMES = tuple(service.full_name for service in SERVICES)  # health and reflection


@dataclass(frozen=True)
class RegistryPorts:
    """Where a running registry-svc listens."""

    grpc_port: int
    http_port: int


@asynccontextmanager
async def running_registry_service(
    settings: RegistrySettings, stop: asyncio.Event
) -> AsyncIterator[RegistryPorts]:
    """Start every part of registry-svc; yield its ports; on exit stop them all cleanly."""
    key = settings.artifact_key()
    engine = create_engine(settings.database_url, pool_size=10)
    store = PostgresEventStore(engine, settings.store_schema, signer=settings.head_signer())
    await store.create_schema()
    await store.sign_tail()
    blobs = open_blob_store(settings.blob_settings())
    reader = RegistryViewReader(engine, settings.views_schema)
    commands = RegistryCommands(
        store,
        ArtifactIntake(blobs, settings.artifact_roots, settings.max_artifact_bytes),
        reader.locate,
        ManifestSigner(key),
        settings.registry_gates,
        settings.plan_of,
        utc_now,
        RegistryDefaults(settings.min_edge_version, tuple(settings.supported_platforms)),
    )
    # registry-svc reads job-svc's log with an auditor token of its own (ReadEvents, to heal gaps).
    job_channel = settings.grpc_channel(settings.job_svc_target, settings.own_token())
    job_log = GrpcEventSource(events_pb2_grpc.EventLogStub(job_channel))
    views, reaction = registry_runners(
        engine,
        registry_log=(store, settings.keys_for(REGISTRY_SOURCE)),
        job_log=(job_log, settings.keys_for(JOB_SOURCE)),
        views_schema=settings.views_schema,
        reactions_schema=settings.reactions_schema,
        commands=commands,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic_namespace=settings.topic_namespace,
        kafka_security=settings.kafka_security,
    )
    relay = Relay(
        store,
        settings.database_url,
        settings.kafka_bootstrap_servers,
        events_topic("registry", settings.topic_namespace),
        security=settings.kafka_security,
    )
    url_keys = [key.public_text(), *settings.registry_previous_public_keys]
    verifier = settings.token_verifier()
    servicer = RegistryServicer(
        commands,
        reader,
        store,
        UrlSigner(key),
        settings.registry_public_url,
        settings.download_url_ttl_s,
        utc_now,
    )
    servicers = [
        (registry_pb2_grpc.add_RegistryServiceServicer_to_server, servicer),
        (events_pb2_grpc.add_EventLogServicer_to_server, EventLogServicer(store)),
        # The views replay for auditors; the job-events reaction does not (its effect is an append).
        (
            events_pb2_grpc.add_ProjectionAuditServicer_to_server,
            ProjectionAuditServicer(
                engine,
                [target_of(views, RegistryViews)],
                {"model_version": model_version_as_of(store, reader.locate)},
            ),
        ),
    ]
    auth = AuthInterceptor(verifier, REGISTRY_POLICY, plan_of=lambda org: settings.plan_of(org).key)
    await views.create_tables()
    await reaction.create_tables()
    tasks = [
        asyncio.create_task(relay.run(stop), name="relay"),
        asyncio.create_task(views.run(stop), name="views"),
        asyncio.create_task(reaction.run(stop), name="job-events-reaction"),
    ]
    app = download_app(blobs, UrlVerifier.from_texts(url_keys), bearer_subject(verifier))
    try:
        async with (
            serve_downloads(app, settings.registry_http_bind, settings.registry_http_port) as http_port,
            serving(
                servicers,
                service_names=SERVICE_NAMES,
                port=settings.registry_grpc_port,
                bind=settings.grpc_bind,
                interceptors=[auth],
                credentials=settings.server_credentials(),
                grace_s=settings.grpc_grace_s,
            ) as server,
        ):
            log.info(
                "registry-svc serving gRPC on %s:%d, downloads on %s:%d; gates %s",
                settings.grpc_bind,
                server.port,
                settings.registry_http_bind,
                http_port,
                settings.gates_json(),
            )
            yield RegistryPorts(server.port, http_port)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await job_channel.close()
        await store.close()
        await engine.dispose()
