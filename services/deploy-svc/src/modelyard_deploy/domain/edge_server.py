"""The EdgeServer aggregate: who a server is (registration) and which model it serves per module.

Registration and heartbeats arrive again and again; only a change is an event, so a fleet of idle
servers writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from modelyard_events.domain_errors import InvalidFields, NotFound
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.bounds import NAME_MAX_CHARS
from modelyard_events.schemas.deploy import (
    DEPLOY_EVENTS,
    EDGE_VERSION_MAX_CHARS,
    MAX_RUNNING_MODELS,
    SERVER_ID_MAX_CHARS,
    EdgeModelSwitched,
    EdgeServerRegistered,
    RunningModel,
)

_SERVER_ID = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class EdgeFacts:
    """What an agent says about its server when it registers (the organization comes from its token)."""

    server_id: str
    environment: str
    platform: str
    edge_version: str
    hostname: str = ""


@dataclass(frozen=True)
class EdgeServer:
    """One registered edge server; `running` maps module → version id it serves."""

    server_id: str
    org_id: str
    environment: str
    platform: str
    edge_version: str
    hostname: str
    registered_at: datetime
    running: Mapping[str, str] = field(default_factory=dict)
    stream_version: int = 1

    @classmethod
    def from_events(cls, envelopes: Iterable[EventEnvelope]) -> EdgeServer | None:
        """The server after its stored events, or None when it never registered."""
        server: EdgeServer | None = None
        for envelope in envelopes:
            event = DEPLOY_EVENTS.decode(envelope)
            server = fold(server, event, envelope.occurred_at)
        return server

    def apply(self, event: DomainEvent, at: datetime) -> EdgeServer:
        """The server after `event`: a registration updates its facts, a switch what it runs."""
        version = self.stream_version + 1
        if isinstance(event, EdgeServerRegistered):
            return replace(
                self,
                environment=event.environment,
                platform=event.platform,
                edge_version=event.edge_version,
                hostname=event.hostname,
                stream_version=version,
            )
        if isinstance(event, EdgeModelSwitched):
            running = {m: v for m, v in self.running.items() if m != event.ai_module}
            if event.version_id is not None:
                running[event.ai_module] = event.version_id
            return replace(self, running=running, stream_version=version)
        return replace(self, stream_version=version)

    def apply_envelopes(self, envelopes: Iterable[EventEnvelope]) -> EdgeServer:
        """The server after events just recorded."""
        server = self
        for envelope in envelopes:
            server = server.apply(DEPLOY_EVENTS.decode(envelope), envelope.occurred_at)
        return server

    @property
    def facts(self) -> EdgeFacts:
        """What it registered with."""
        return EdgeFacts(self.server_id, self.environment, self.platform, self.edge_version, self.hostname)


def fold(server: EdgeServer | None, event: DomainEvent, at: datetime) -> EdgeServer | None:
    """The server after `event`; the first registration creates it."""
    if server is not None:
        return server.apply(event, at)
    if isinstance(event, EdgeServerRegistered):
        return EdgeServer(
            event.server_id, event.org_id, event.environment, event.platform, event.edge_version,
            event.hostname, registered_at=at,
        )  # fmt: skip
    return None


def register(server: EdgeServer | None, org_id: str, facts: EdgeFacts) -> list[DomainEvent]:
    """EdgeServerRegistered when the server is new or its facts changed; [] for the same facts again."""
    _check_facts(facts)
    if server is not None and server.facts == facts:
        return []
    return [
        EdgeServerRegistered(
            server_id=facts.server_id,
            org_id=org_id,
            environment=facts.environment,
            platform=facts.platform,
            edge_version=facts.edge_version,
            hostname=facts.hostname,
        )
    ]


def report_running(
    server: EdgeServer | None,
    running: Sequence[RunningModel],
    now: datetime,
    deployment_id: str | None = None,
) -> list[EdgeModelSwitched]:
    """One EdgeModelSwitched per module whose served version changed; `running` is everything the
    server serves, so a module it no longer lists is switched to None (it stopped serving it)."""
    if server is None:
        raise NotFound("edge server is not registered; register it before reporting what it runs")
    reported = _by_module(running)
    modules = sorted(set(reported) | set(server.running))
    return [
        EdgeModelSwitched(
            server_id=server.server_id,
            org_id=server.org_id,
            ai_module=module,
            version_id=reported.get(module),
            previous_version_id=server.running.get(module),
            deployment_id=deployment_id,
            reported_at=now,
        )
        for module in modules
        if reported.get(module) != server.running.get(module)
    ]


def _by_module(running: Sequence[RunningModel]) -> dict[str, str]:
    if len(running) > MAX_RUNNING_MODELS:
        raise InvalidFields({"running": f"at most {MAX_RUNNING_MODELS} modules; got {len(running)}"})
    modules = [m.ai_module for m in running]
    twice = sorted({m for m in modules if modules.count(m) > 1})
    if twice:
        raise InvalidFields({"running": f"one version per module; listed more than once: {', '.join(twice)}"})
    return {m.ai_module: m.version_id for m in running}


def check_server_id(server_id: str) -> str | None:
    """What is wrong with `server_id` as an edge server's id, or None."""
    if _SERVER_ID.fullmatch(server_id) and len(server_id) <= SERVER_ID_MAX_CHARS:
        return None
    return f"1 to {SERVER_ID_MAX_CHARS} of A-Z a-z 0-9 . _ -; got {server_id[:80]!r}"


def _check_facts(facts: EdgeFacts) -> None:
    problems: dict[str, str] = {}
    server_id_problem = check_server_id(facts.server_id)
    if server_id_problem:
        problems["server_id"] = server_id_problem
    for name in ("environment", "platform"):
        value = getattr(facts, name)
        if not value or len(value) > NAME_MAX_CHARS:
            problems[name] = f"required, at most {NAME_MAX_CHARS} characters"
    if not facts.edge_version or len(facts.edge_version) > EDGE_VERSION_MAX_CHARS:
        problems["edge_version"] = f"required, at most {EDGE_VERSION_MAX_CHARS} characters"
    if len(facts.hostname) > NAME_MAX_CHARS:
        problems["hostname"] = f"at most {NAME_MAX_CHARS} characters"
    if problems:
        raise InvalidFields(problems)
