"""The composition root of deploy-svc: store, relay, views, the registry's versions, the conductor, gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard.v1 import deploy_pb2, deploy_pb2_grpc, events_pb2, events_pb2_grpc
from modelyard_deploy.adapters.job_client import JobStatusClient
from modelyard_deploy.adapters.liveness import EdgeLiveness
from modelyard_deploy.api.deploy_servicer import DeployServicer
from modelyard_deploy.api.edge_servicer import EdgeServicer
from modelyard_deploy.api.policy import DEPLOY_POLICY
from modelyard_deploy.app.as_of import fleet_as_of
from modelyard_deploy.app.commands import DeployCommands, utc_now
from modelyard_deploy.app.conductor import Conductor
from modelyard_deploy.app.pass_lock import advisory_pass_lock
from modelyard_deploy.config import DeploySettings
from modelyard_deploy.consumers import DeployRunners, deploy_runners
from modelyard_deploy.projections.known_versions import REGISTRY_SOURCE, KnownVersions
from modelyard_deploy.projections.queries import DeployViewReader
from modelyard_deploy.projections.tables import changes_channel
from modelyard_deploy.projections.views import DEPLOY_SOURCE, PROGRESS, DeployViews
from modelyard_events.as_of import AsOfReader
from modelyard_events.db import create_engine
from modelyard_events.notifications import ViewChanges
from modelyard_events.projection_replay import target_of
from modelyard_events.relay import Relay
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.topics import events_topic
from modelyard_grpc import AuthInterceptor, EventLogServicer, GrpcEventSource, serving
from modelyard_grpc.projection_audit import ProjectionAuditServicer

log = logging.getLogger(__name__)
SERVICES = [
    deploy_pb2.DESCRIPTOR.services_by_name["DeployService"],
    deploy_pb2.DESCRIPTOR.services_by_name["EdgeService"],
    events_pb2.DESCRIPTOR.services_by_name["EventLog"],
    events_pb2.DESCRIPTOR.services_by_name["ProjectionAudit"],
]
SERVICE_NAMES = tuple(service.full_name for service in SERVICES)  # health and reflection
ONLINE_HEARTBEATS = 3  # a server is online while its last heartbeat is within this many intervals
# Notices that never change what the conductor decides (a server's facts, an install's progress).
_NOT_FOR_THE_CONDUCTOR = frozenset({PROGRESS, "server", "running"})


@asynccontextmanager
async def running_deploy_service(settings: DeploySettings, stop: asyncio.Event) -> AsyncIterator[int]:
    """Start every part of deploy-svc; yield its gRPC port; on exit stop them all cleanly."""
    # Hundreds of agents report at once; the 1,000-agent bench exhausted a pool of 10 (bench/README.md).
    engine = create_engine(settings.database_url, pool_size=20)
    store = PostgresEventStore(engine, settings.store_schema, signer=settings.head_signer())
    await store.create_schema()
    await store.sign_tail()
    liveness = EdgeLiveness(engine, settings.live_schema)
    await liveness.create_tables()
    online_within_s = ONLINE_HEARTBEATS * settings.edge_heartbeat_interval_s
    reader = DeployViewReader(
        engine, settings.views_schema, settings.live_schema, store, utc_now, online_within_s
    )
    commands = DeployCommands(store, reader, utc_now)
    # deploy-svc reads the registry's log (ReadEvents, to heal gaps) and job-svc's jobs (the mobile
    # status) with a token of its own.
    registry_channel = settings.grpc_channel(settings.registry_svc_target, settings.own_token())
    job_channel = settings.grpc_channel(settings.job_svc_target, settings.own_token())
    runners = deploy_runners(
        engine,
        deploy_log=(store, settings.keys_for(DEPLOY_SOURCE)),
        registry_log=(
            GrpcEventSource(events_pb2_grpc.EventLogStub(registry_channel)),
            settings.keys_for(REGISTRY_SOURCE),
        ),
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
        events_topic("deploy", settings.topic_namespace),
        security=settings.kafka_security,
    )
    changes = ViewChanges(settings.database_url, changes_channel(settings.views_schema))
    wake = asyncio.Event()  # set: the conductor passes now instead of at its next sweep
    conductor = Conductor(
        reader,
        commands,
        advisory_pass_lock(engine),
        utc_now,
        settings.edge_silence_timeout_s,
        liveness.last_heartbeat_times,
    )
    servicers = [
        (
            deploy_pb2_grpc.add_DeployServiceServicer_to_server,
            DeployServicer(commands, reader, store, JobStatusClient(job_channel), utc_now, wake.set),
        ),
        (
            deploy_pb2_grpc.add_EdgeServiceServicer_to_server,
            EdgeServicer(commands, reader, liveness, changes, utc_now, settings.edge_heartbeat_interval_s),
        ),
        (events_pb2_grpc.add_EventLogServicer_to_server, EventLogServicer(store)),
        (
            events_pb2_grpc.add_ProjectionAuditServicer_to_server,
            _projection_audit(engine, runners, {"fleet": fleet_as_of(store, reader.server_ids)}),
        ),
    ]
    auth = AuthInterceptor(
        settings.token_verifier(), DEPLOY_POLICY, plan_of=lambda org: settings.plan_of(org).key
    )
    for runner in runners.all():  # one after the other: CREATE … IF NOT EXISTS races in one schema
        await runner.create_tables()
    tasks = [
        asyncio.create_task(relay.run(stop), name="relay"),
        asyncio.create_task(liveness.run(stop), name="edge-liveness"),
        asyncio.create_task(changes.run(stop), name="view-changes"),
        asyncio.create_task(_wake_on_changes(changes, wake, stop), name="conductor-wake"),
        asyncio.create_task(conductor.run(stop, wake, settings.deploy_sweep_every_s), name="conductor"),
        *(asyncio.create_task(r.run(stop), name=r.projection.name) for r in runners.all()),
    ]
    try:
        async with serving(
            servicers,
            service_names=SERVICE_NAMES,
            port=settings.deploy_grpc_port,
            bind=settings.grpc_bind,
            interceptors=[auth],
            credentials=settings.server_credentials(),
            grace_s=settings.grpc_grace_s,
        ) as server:
            log.info("deploy-svc serving gRPC on %s:%d", settings.grpc_bind, server.port)
            yield server.port
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await registry_channel.close()
        await job_channel.close()
        await store.close()
        await engine.dispose()


async def _wake_on_changes(changes: ViewChanges, wake: asyncio.Event, stop: asyncio.Event) -> None:
    """Wake the conductor on every notice that may let it decide something (a wave's outcome, a cancel)."""
    with changes.subscription() as notices:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                _, kind = await asyncio.wait_for(notices.get(), 1.0)
                if kind not in _NOT_FOR_THE_CONDUCTOR:
                    wake.set()


def _projection_audit(
    engine: AsyncEngine, runners: DeployRunners, as_of: Mapping[str, AsOfReader]
) -> ProjectionAuditServicer:
    # The read models replay; the release-rollback reaction does not (its effect is an append).
    # Heartbeats are written beside the views, not from the log: their table is not rebuilt.
    return ProjectionAuditServicer(
        engine,
        [target_of(runners.views, DeployViews), target_of(runners.known_versions, KnownVersions)],
        as_of,
    )
