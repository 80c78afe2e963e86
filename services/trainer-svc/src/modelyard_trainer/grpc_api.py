"""The `serve` mode's gRPC API: trainer-svc's log through `modelyard.v1.EventLog/ReadEvents`.

job-svc reads trainer events it missed on Kafka here, with an auditor token.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from modelyard.v1 import events_pb2, events_pb2_grpc
from modelyard_events.store.ports import EventSource
from modelyard_grpc import EVENT_LOG_RULES, AccessPolicy, AuthInterceptor, EventLogServicer, serving
from modelyard_trainer.config import TrainerSettings

log = logging.getLogger(__name__)

TRAINER_POLICY = AccessPolicy(EVENT_LOG_RULES)
"""Who may call what on trainer-svc: ReadEvents for auditors (and super_admin); nothing else."""

SERVICE_NAMES = ("modelyard.v1.EventLog",)
SERVICES = [events_pb2.DESCRIPTOR.services_by_name["EventLog"]]


@asynccontextmanager
async def serving_event_log(settings: TrainerSettings, log_source: EventSource) -> AsyncIterator[int]:
    """Serve `log_source` on MODELYARD_TRAINER_GRPC_PORT for the block; yield the bound port."""
    secret = settings.auth_secret.get_secret_value()
    async with serving(
        [(events_pb2_grpc.add_EventLogServicer_to_server, EventLogServicer(log_source))],
        service_names=SERVICE_NAMES,
        port=settings.trainer_grpc_port,
        bind=settings.grpc_bind,
        interceptors=[AuthInterceptor(secret, TRAINER_POLICY, leeway_s=settings.auth_leeway_s)],
        credentials=settings.server_credentials(),
        grace_s=settings.grpc_grace_s,
    ) as server:
        log.info("trainer-svc serving ReadEvents on %s:%d", settings.grpc_bind, server.port)
        yield server.port
