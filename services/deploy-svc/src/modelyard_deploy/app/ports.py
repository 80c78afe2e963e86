"""What the commands and the conductor read, as plain rows: the views (projections/) implement it.

The commands decide on aggregates loaded from the store; these reads only tell them which
aggregates to look at and the facts owned by other services (the registry's versions) or by no
aggregate at all (heartbeats).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from modelyard_events.schemas.deploy import DeploymentStatus


@dataclass(frozen=True)
class KnownVersion:
    """A model version as deploy-svc's view of the registry's events has it."""

    version_id: str
    org_id: str
    ai_module: str
    semantic_version: str
    status: str  # draft | testing | approved | released | deprecated
    environments: tuple[str, ...]  # where it is the current release
    artifact_sha256: str
    artifact_size_bytes: int
    min_edge_version: str
    supported_platforms: tuple[str, ...]
    released_to: tuple[str, ...] = ()  # every environment it was ever released to


@dataclass(frozen=True)
class ServerFacts:
    """An edge server: what it registered, what it runs (module → version id), when it last spoke."""

    server_id: str
    org_id: str
    environment: str
    platform: str
    edge_version: str
    running: Mapping[str, str] = field(default_factory=dict)
    last_heartbeat_at: datetime | None = None


@dataclass(frozen=True)
class DeploymentLine:
    """A deployment as the views have it (enough to decide which aggregate needs attention)."""

    deployment_id: str
    org_id: str
    server_id: str
    version_id: str
    ai_module: str
    status: DeploymentStatus
    attempt: int
    retry_at: datetime | None  # a failure that will be retried automatically at this time
    deadline_at: datetime
    scheduled_at: datetime
    rollout_id: str | None
    wave: int | None
    kind: str  # deploy | rollback
    previous_version_id: str | None
    updated_at: datetime


class DeployReads(Protocol):
    """The reads the app layer needs; every method sees only what the views have applied."""

    async def version(self, version_id: str) -> KnownVersion | None:
        """The registry's version, or None when no registry event named it yet."""
        ...

    async def server(self, org_id: str, server_id: str) -> ServerFacts | None:
        """One registered edge server of `org_id`."""
        ...

    async def servers_in_environment(self, org_id: str, environment: str) -> list[ServerFacts]:
        """Every registered server of the organization in `environment`, ordered by server id."""
        ...

    async def servers_serving(self, org_id: str, ai_module: str, version_id: str) -> list[ServerFacts]:
        """Servers that run `version_id` for `ai_module` or have an unfinished deployment of it."""
        ...

    async def open_deployments(self) -> list[DeploymentLine]:
        """Deployments that are pending, downloading, installing, or failed with a retry_at."""
        ...

    async def rollout_deployments(self, rollout_id: str) -> list[DeploymentLine]:
        """Every deployment a rollout created (its waves and its rollback), oldest first."""
        ...

    async def unfinished_rollout_ids(self) -> list[str]:
        """Rollouts that have not finished (scheduled, running, rolling back), oldest first."""
        ...

    async def caught_up(self, wait_s: float = 0.0) -> bool:
        """True once the views have applied every event deploy-svc's log held when asked (waiting up
        to `wait_s` for them: a log that keeps growing meanwhile does not move the mark)."""
        ...
