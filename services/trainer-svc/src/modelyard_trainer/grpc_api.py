"""The `serve` mode's gRPC API: trainer-svc's log through `modelyard.v1.EventLog/ReadEvents`, and
`modelyard.v1.TrainerReports/AppendReports`, through which workers append their reports.

job-svc reads trainer events it missed on Kafka here, with an auditor token. trainer-svc asks
job-svc, with its own auditor token, whose a dispatch is before it opens the dispatch's stream.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from modelyard.v1 import events_pb2, events_pb2_grpc, trainer_pb2, trainer_pb2_grpc
from modelyard_events.store.ports import EventStore
from modelyard_grpc import (
    EVENT_LOG_RULES,
    AccessPolicy,
    AuthInterceptor,
    EventLogServicer,
    Role,
    command,
    serving,
)
from modelyard_trainer.config import TrainerSettings
from modelyard_trainer.dispatches import GrpcDispatchLookup
from modelyard_trainer.report_service import ReportServicer

log = logging.getLogger(__name__)

TRAINER_POLICY = AccessPolicy(
    {
        # Workers report as themselves only: the servicer checks every report's trainer_id (and
        # refuses any caller without the trainer role, super_admin included).
        "/modelyard.v1.TrainerReports/AppendReports": command(Role.TRAINER, scoped_in_servicer=True),
        **EVENT_LOG_RULES,
    }
)
"""Who may call what on trainer-svc: ReadEvents for auditors, AppendReports for trainers; nothing else."""

SERVICE_NAMES = ("modelyard.v1.EventLog", "modelyard.v1.TrainerReports")
SERVICES = [
    events_pb2.DESCRIPTOR.services_by_name["EventLog"],
    trainer_pb2.DESCRIPTOR.services_by_name["TrainerReports"],
]


@asynccontextmanager
async def serving_api(settings: TrainerSettings, store: EventStore) -> AsyncIterator[int]:
    """Serve `store` (reads, and workers' reports) on MODELYARD_TRAINER_GRPC_PORT; yield the bound port."""
    async with (
        settings.grpc_channel(settings.job_svc_target, settings.own_token()) as job_svc,
        serving(
            [
                (events_pb2_grpc.add_EventLogServicer_to_server, EventLogServicer(store)),
                (
                    trainer_pb2_grpc.add_TrainerReportsServicer_to_server,
                    ReportServicer(store, GrpcDispatchLookup(job_svc)),
                ),
            ],
            service_names=SERVICE_NAMES,
            port=settings.trainer_grpc_port,
            bind=settings.grpc_bind,
            interceptors=[AuthInterceptor(settings.token_verifier(), TRAINER_POLICY)],
            credentials=settings.server_credentials(),
            grace_s=settings.grpc_grace_s,
        ) as server,
    ):
        log.info("trainer-svc serving ReadEvents and AppendReports on %s:%d", settings.grpc_bind, server.port)
        yield server.port
