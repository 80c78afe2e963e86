"""What `yard audit verify` and `yard audit export` share: which services keep a log, where they
listen, the keys pinned for each, and each ReadEvents page's events as the chain check reads them.

Every service serves its own log through ReadEvents (the generic `modelyard.v1.EventLog` service,
trainer-svc's log included), to auditors and super admins only. Pages end at signed heads, so
memory holds one page whatever the log's length.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

from modelyard.v1 import events_pb2, events_pb2_grpc
from modelyard_cli.connection import (
    DATASET_SVC,
    DEPLOY_SVC,
    JOB_SVC,
    REGISTRY_SVC,
    ConnectionOptions,
    ServiceAddress,
)
from modelyard_cli.rpc_errors import describe_rpc_error, is_unreachable
from modelyard_events.canonical import canonical_json, canonical_timestamp
from modelyard_events.hashing import chain_hash, envelope_halves
from modelyard_events.signing import HeadVerifier, SignedHead, SigningKeyError, keyring_from_json

TRAINER_TARGET_ENV = "MODELYARD_TRAINER_SVC_TARGET"
DEFAULT_TRAINER_TARGET = "127.0.0.1:50052"
TRAINER_SVC = ServiceAddress("trainer-svc", "--trainer-target", TRAINER_TARGET_ENV)
KEYS_ENV = "MODELYARD_EVENT_PUBLIC_KEYS"
PAGE_SIZE = 5_000  # events per ReadEvents call (the server caps a reply at 2 MiB of events anyway)
CALL_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class LogService:
    """A service whose log yard can audit: its name, its events' source name (the key of its pinned
    public keys), and how a person points yard at it."""

    name: str
    source: str
    address: ServiceAddress


SERVICES: tuple[LogService, ...] = (
    LogService("dataset-svc", "dataset", DATASET_SVC),
    LogService("job-svc", "job", JOB_SVC),
    LogService("trainer-svc", "trainer", TRAINER_SVC),
    LogService("registry-svc", "registry", REGISTRY_SVC),
    LogService("deploy-svc", "deploy", DEPLOY_SVC),
)
SERVICE_NAMES = tuple(service.name for service in SERVICES)


class AuditError(Exception):
    """A log that could not be read or checked: the lines say which service and what to set."""

    def __init__(self, *lines: str) -> None:
        super().__init__(lines[0] if lines else "")
        self.lines = list(lines)


def service_named(name: str) -> LogService:
    """The service called `name` (`job-svc`, or its source name `job`); AuditError otherwise."""
    for service in SERVICES:
        if name in (service.name, service.source):
            return service
    raise AuditError(f"error: no service {name!r}: choose from {', '.join(SERVICE_NAMES)}")


def target_of(service: LogService, connection: ConnectionOptions, trainer_target: str) -> str:
    """Where `service` listens, from the global options (trainer-svc: --trainer-target)."""
    return {
        "dataset-svc": connection.dataset_target,
        "job-svc": connection.target,
        "trainer-svc": trainer_target,
        "registry-svc": connection.registry_target,
        "deploy-svc": connection.deploy_target,
    }[service.name]


def pinned_keys(keys_file: Path | None) -> dict[str, HeadVerifier]:
    """The public keys pinned per source: `--keys FILE`, else MODELYARD_EVENT_PUBLIC_KEYS (both JSON
    `{"<source>": ["<base64url key>", ...]}`); {} when neither is given."""
    if keys_file is not None:
        try:
            text = keys_file.read_text()
        except OSError as error:
            raise AuditError(f"error: cannot read the keys file {keys_file}: {error.strerror}") from error
        where = str(keys_file)
    else:
        text, where = os.environ.get(KEYS_ENV, "{}"), KEYS_ENV
    try:
        return keyring_from_json(text)
    except SigningKeyError as error:
        raise AuditError(f"error: {where}: {error}") from error


def keys_for(service: LogService, keyring: dict[str, HeadVerifier]) -> HeadVerifier | None:
    """The keys pinned for `service` (by source name, or by service name), None when none are."""
    return keyring.get(service.source) or keyring.get(service.name)


def missing_keys(service: LogService) -> AuditError:
    """The error for a service whose public key nobody pinned."""
    return AuditError(
        f"error: {service.name}: no public key is pinned for source {service.source!r}: pass --keys FILE "
        f'(JSON {{"{service.source}": ["<base64url public key>"]}}) or set {KEYS_ENV}; '
        "whoever operates the platform publishes each service's public event key"
    )


def served_hash(event: events_pb2.EventEnvelope) -> str:
    """What `event.hash` must be, recomputed from the fields as served (data_json byte for byte)."""
    halves = envelope_halves(
        actor_json=_actor_json(event.actor.subject, tuple(event.actor.roles)),
        causation_id=event.causation_id if event.HasField("causation_id") else None,
        correlation_id=event.correlation_id,
        data_json=event.data_json,
        event_id=event.event_id,
        occurred_at=served_time(event),
        org_id=event.org_id if event.HasField("org_id") else None,
        schema_version=event.schema_version,
        stream_id=event.stream_id,
        stream_type=event.stream_type,
        stream_version=event.stream_version,
        type_name=event.type,
    )
    return chain_hash(event.prev_hash, halves, event.position)


def served_time(event: events_pb2.EventEnvelope) -> str:
    """The event's occurred_at in the canonical form the hash covers (UTC, microseconds, Z)."""
    return canonical_timestamp(event.occurred_at.ToDatetime(tzinfo=UTC))


@functools.lru_cache(maxsize=4096)
def _actor_json(subject: str, roles: tuple[str, ...]) -> str:
    # A log has few distinct actors: encode each once.
    return canonical_json({"subject": subject, "roles": list(roles)})


def served_fields(event: events_pb2.EventEnvelope) -> dict[str, Any]:
    """Every envelope field as served, as the export writes it (data_json as a string, untouched)."""
    return {
        "event_id": event.event_id,
        "stream_type": event.stream_type,
        "stream_id": event.stream_id,
        "stream_version": event.stream_version,
        "position": event.position,
        "type": event.type,
        "schema_version": event.schema_version,
        "occurred_at": served_time(event),
        "actor": {"subject": event.actor.subject, "roles": list(event.actor.roles)},
        "org_id": event.org_id if event.HasField("org_id") else None,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id if event.HasField("causation_id") else None,
        "data_json": event.data_json,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def heads_of(response: events_pb2.ReadEventsResponse) -> list[SignedHead]:
    """The signed heads of a page."""
    return [SignedHead(h.position, h.hash, h.key_id, h.signature) for h in response.heads]


@dataclass(frozen=True, slots=True)
class LogReader:
    """One service's ReadEvents, with the errors a person can act on."""

    service: LogService
    target: str
    stub: Any  # events_pb2_grpc.EventLogStub; generated stubs carry no type hints

    async def page(self, after_position: int, limit: int = PAGE_SIZE) -> events_pb2.ReadEventsResponse:
        """One page after `after_position`; AuditError naming the service and what to do."""
        request = events_pb2.ReadEventsRequest(after_position=after_position, limit=limit)
        try:
            response: events_pb2.ReadEventsResponse = await self.stub.ReadEvents(
                request, timeout=CALL_TIMEOUT_S
            )
        except aio.AioRpcError as error:
            raise AuditError(*self.describe(error)) from error
        return response

    async def pages(self, after_position: int) -> AsyncIterator[events_pb2.ReadEventsResponse]:
        """Pages after `after_position` until one comes back empty (that one is yielded too: its
        head_position says how far the log was committed)."""
        while True:
            response = await self.page(after_position)
            yield response
            if not response.events:
                return
            last = response.events[-1].position
            if last <= after_position:  # a server going backwards: the checker has said why
                return
            after_position = last

    def describe(self, error: aio.AioRpcError) -> list[str]:
        """What a failed ReadEvents means for an auditor: which service, and what to set."""
        name = self.service.name
        if error.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
            return [
                f"error: {name} refused the token: {error.code().name}: {error.details() or 'no details'}",
                "reading an event log needs a token with the auditor role: set MODELYARD_TOKEN "
                "(or --token) to one from whoever issues tokens",
            ]
        if error.code() is grpc.StatusCode.UNIMPLEMENTED:
            return [
                f"error: {name} at {self.target} does not serve ReadEvents ({error.details()})",
                f"is {self.service.address.option} / {self.service.address.env} pointing at {name}?",
            ]
        if is_unreachable(error):
            return describe_rpc_error(error, self.target, self.service.address)
        return [
            f"error: {name}: {line.removeprefix('error: ')}"
            for line in describe_rpc_error(error, self.target)
        ]


def event_log_stub(channel: aio.Channel) -> Any:
    """The generic EventLog stub: every service serves its log under it."""
    return events_pb2_grpc.EventLogStub(channel)


def json_line(document: dict[str, Any]) -> str:
    """One line of an export: compact JSON, ASCII only (every non-ASCII character escaped)."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True) + "\n"


def selected_names(names: Sequence[str]) -> list[LogService]:
    """The services named (default: all), each once, in the platform's order."""
    if not names:
        return list(SERVICES)
    chosen = {service_named(name).name for name in names}
    return [service for service in SERVICES if service.name in chosen]
