"""The composition root of job-svc: stores, runners, dispatcher and gRPC, built once, run together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from modelyard.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    datasets_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    registry_pb2_grpc,
)
from modelyard_events.db import create_engine
from modelyard_events.projection_replay import target_of
from modelyard_events.relay import Relay
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.topics import events_topic
from modelyard_grpc import (
    AuthInterceptor,
    EventLogServicer,
    GrpcEventSource,
    serving,
)
from modelyard_grpc.projection_audit import ProjectionAuditServicer
from modelyard_job.app import JobCommands, utc_now
from modelyard_job.app.as_of import job_as_of
from modelyard_job.app.dispatcher import Dispatcher, DispatcherParts
from modelyard_job.app.trainers import TrainerFleet
from modelyard_job.audit_api import AuditServicer
from modelyard_job.config import JobSettings
from modelyard_job.consumers import job_runners
from modelyard_job.dataset_client import GrpcVersionLookup
from modelyard_job.grpc_api import JobServicer
from modelyard_job.grpc_queries import QueryServicer, TrainerServicer
from modelyard_job.job_reads import JobReads
from modelyard_job.liveness import Liveness
from modelyard_job.notifications import ViewChanges
from modelyard_job.policy import JOB_POLICY
from modelyard_job.projections.audit_views import DATASET_SOURCE, DEPLOY_SOURCE, AuditViews
from modelyard_job.projections.queries import JobViewReader
from modelyard_job.projections.tables import changes_channel
from modelyard_job.projections.usage_views import UsageViews
from modelyard_job.projections.views import JOB_SOURCE, REGISTRY_SOURCE, TRAINER_SOURCE, JobViews
from modelyard_job.registry_client import GrpcModelVersionLookup

log = logging.getLogger(__name__)
SERVICES = [
    jobs_pb2.DESCRIPTOR.services_by_name["JobService"],
    jobs_pb2.DESCRIPTOR.services_by_name["QueryService"],
    jobs_pb2.DESCRIPTOR.services_by_name["TrainerService"],
    events_pb2.DESCRIPTOR.services_by_name["EventLog"],
    audit_pb2.DESCRIPTOR.services_by_name["AuditService"],
    events_pb2.DESCRIPTOR.services_by_name["ProjectionAudit"],
]
SERVICE_NAMES = tuple(service.full_name for service in SERVICES)  # health and reflection


@asynccontextmanager
async def running_job_service(settings: JobSettings, stop: asyncio.Event) -> AsyncIterator[int]:
    """Start every part of job-svc; yield the bound gRPC port; on exit stop them all cleanly."""
    engine = create_engine(settings.database_url, pool_size=10)
    store = PostgresEventStore(engine, settings.store_schema, signer=settings.head_signer())
    await store.create_schema()
    await store.sign_tail()
    liveness = Liveness(engine, settings.live_schema)
    await liveness.create_tables()
    # job-svc's own token (subject job-svc, role auditor) for GetVersion and ReadEvents of
    # dataset-svc, trainer-svc, registry-svc and deploy-svc: written and renewed by the token issuer in
    # MODELYARD_TOKEN_FILE; job-svc holds no signing key.
    token = settings.own_token()
    dataset_channel = settings.grpc_channel(settings.dataset_svc_target, token)
    versions = GrpcVersionLookup(datasets_pb2_grpc.DatasetServiceStub(dataset_channel))
    registry_channel = settings.grpc_channel(settings.registry_svc_target, token)
    models = GrpcModelVersionLookup(registry_pb2_grpc.RegistryServiceStub(registry_channel))
    commands = JobCommands(
        store,
        settings.plan_of,
        utc_now,
        versions,
        allow_file_datasets=settings.allow_file_datasets,
        max_lost_dispatches=settings.max_lost_dispatches,
        models=models,
        evaluation_priority=settings.evaluation_priority,
    )
    reader = JobViewReader(settings.views_schema)
    reads = JobReads(engine, reader, store)
    fleet = TrainerFleet(store, liveness, settings.lease_ttl, utc_now)
    changes = ViewChanges(settings.database_url, changes_channel(settings.views_schema))
    # job-svc reads the trainers' and the registry's logs with an auditor token of its own
    # (ReadEvents is an auditor read; registry-svc serves the generic EventLog like job-svc).
    trainer_channel = settings.grpc_channel(settings.trainer_svc_target, token)
    trainer_log = GrpcEventSource(events_pb2_grpc.EventLogStub(trainer_channel))
    registry_log = GrpcEventSource(events_pb2_grpc.EventLogStub(registry_channel))
    # The audit view and lineage read every service's log: dataset-svc's and deploy-svc's too.
    dataset_log = GrpcEventSource(events_pb2_grpc.EventLogStub(dataset_channel))
    deploy_channel = settings.grpc_channel(settings.deploy_svc_target, token)
    deploy_log = GrpcEventSource(events_pb2_grpc.EventLogStub(deploy_channel))
    runners = job_runners(
        engine,
        job_log=(store, settings.keys_for(JOB_SOURCE)),
        trainer_log=(trainer_log, settings.keys_for(TRAINER_SOURCE)),
        registry_log=(registry_log, settings.keys_for(REGISTRY_SOURCE)),
        views_schema=settings.views_schema,
        reactions_schema=settings.reactions_schema,
        commands=commands,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic_namespace=settings.topic_namespace,
        kafka_security=settings.kafka_security,
        dataset_log=(dataset_log, settings.keys_for(DATASET_SOURCE)),
        deploy_log=(deploy_log, settings.keys_for(DEPLOY_SOURCE)),
    )
    views = runners.views
    audit = runners.audit
    usage = runners.usage
    assert audit is not None  # given the five logs, job_runners builds both the audit …
    assert usage is not None  # … and the usage runner
    parts = DispatcherParts(engine, store, reader, views.projection.name, liveness, fleet, commands)
    dispatcher = Dispatcher(
        parts, settings.lease_ttl, utc_now, sweep_every_s=min(settings.lease_ttl_s / 4, 1.0)
    )
    relay = Relay(
        store,
        settings.database_url,
        settings.kafka_bootstrap_servers,
        events_topic("job", settings.topic_namespace),
        security=settings.kafka_security,
    )
    servicers = [
        (jobs_pb2_grpc.add_JobServiceServicer_to_server, JobServicer(commands, reads, store, changes)),
        (
            jobs_pb2_grpc.add_QueryServiceServicer_to_server,
            QueryServicer(
                reads,
                changes,
                liveness,
                settings.lease_ttl,
                utc_now,
                versions,
                settings.price_per_device_hour,
            ),
        ),
        (
            jobs_pb2_grpc.add_TrainerServiceServicer_to_server,
            TrainerServicer(fleet, settings.lease_ttl, dispatcher.wake.set, store),
        ),
        (events_pb2_grpc.add_EventLogServicer_to_server, EventLogServicer(store)),
        (
            audit_pb2_grpc.add_AuditServiceServicer_to_server,
            AuditServicer(engine, settings.views_schema, settings.plan_of, utc_now),
        ),
        # The three read models replay for auditors; the report and evaluation reactions do not (their
        # effect is an append).
        (
            events_pb2_grpc.add_ProjectionAuditServicer_to_server,
            ProjectionAuditServicer(
                engine,
                [
                    target_of(views, JobViews),
                    target_of(audit, AuditViews),
                    target_of(usage, UsageViews),
                ],
                {"job": job_as_of(store)},
            ),
        ),
    ]
    auth = AuthInterceptor(
        settings.token_verifier(), JOB_POLICY, plan_of=lambda org: settings.plan_of(org).key
    )
    # One after the other: the two reactions share a schema, and PostgreSQL's CREATE … IF NOT EXISTS
    # is not safe against a concurrent twin (a runner whose tables fail to create does not run).
    for runner in (views, runners.reports, runners.evaluations, audit, usage):
        await runner.create_tables()
    tasks = [
        asyncio.create_task(relay.run(stop), name="relay"),
        asyncio.create_task(views.run(stop), name="views"),
        asyncio.create_task(runners.reports.run(stop), name="report-reaction"),
        asyncio.create_task(runners.evaluations.run(stop), name="evaluation-reaction"),
        asyncio.create_task(audit.run(stop), name="audit-views"),
        asyncio.create_task(usage.run(stop), name="usage-views"),
        asyncio.create_task(changes.run(stop), name="view-changes"),
        asyncio.create_task(_wake_on_changes(changes, dispatcher, stop), name="dispatch-wakeups"),
        asyncio.create_task(dispatcher.run(stop), name="dispatcher"),
    ]
    try:
        async with serving(
            servicers,
            service_names=SERVICE_NAMES,
            port=settings.job_grpc_port,
            bind=settings.grpc_bind,
            interceptors=[auth],
            credentials=settings.server_credentials(),
            grace_s=settings.grpc_grace_s,
        ) as server:
            log.info("job-svc serving on %s:%d", settings.grpc_bind, server.port)
            yield server.port
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await trainer_channel.close()
        await registry_channel.close()
        await deploy_channel.close()
        await dataset_channel.close()
        await store.close()
        await engine.dispose()


async def _wake_on_changes(changes: ViewChanges, dispatcher: Dispatcher, stop: asyncio.Event) -> None:
    # Any change may free a slot or queue a job, except pure progress reports.
    with changes.subscription() as notices:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                _, kind = await asyncio.wait_for(notices.get(), 1.0)
                if kind not in ("progress", "epoch", "report", "registry"):
                    dispatcher.wake.set()
