"""An operator's (or the registry's) request for a rollout, after the transport, with the defaults of
deploy.proto (docs/deploy.md)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from modelyard_deploy.app.ports import KnownVersion
from modelyard_deploy.domain.rollout import RolloutSpec
from modelyard_events.schemas.bounds import truncate_text
from modelyard_events.schemas.deploy import HealthLimits, RolloutKind

DEFAULT_DEADLINE_S = 3600
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_BASE_S = 10.0


@dataclass(frozen=True)
class RolloutRequest:
    """Deploy `version_id` to `server_ids`, or to every server of `environment` (`all_servers`).

    Empty `org_id`: the version's organization. Empty `environment` with `all_servers`: the one
    environment the version is released to (InvalidArgument when it is released to several).
    `scheduled_at` None: now. `rollout_id` None: a new id; given (e.g. from a request id), a second
    request with it returns the rollout the first one started.
    """

    version_id: str
    server_ids: Sequence[str] = ()
    environment: str = ""
    all_servers: bool = False
    wave_sizes: Sequence[int] | None = None
    failure_threshold: float = 0.0
    rollback_on_failure: bool = False
    scheduled_at: datetime | None = None
    deadline_s: int = DEFAULT_DEADLINE_S
    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base_s: float = DEFAULT_BACKOFF_BASE_S
    health: HealthLimits = field(default_factory=HealthLimits)
    reason: str = ""
    org_id: str = ""
    kind: RolloutKind = "deploy"
    release_rollback_of: str | None = None
    rollout_id: str | None = None


def rollout_spec(
    request: RolloutRequest,
    version: KnownVersion,
    org_id: str,
    server_ids: Sequence[str],
    environment: str | None,
    started_by: str,
    now: datetime,
) -> RolloutSpec:
    """The rollout the request asks for, once its version and servers were checked."""
    return RolloutSpec(
        rollout_id=request.rollout_id or str(uuid.uuid4()),
        org_id=org_id,
        version_id=version.version_id,
        ai_module=version.ai_module,
        semantic_version=version.semantic_version,
        artifact_sha256=version.artifact_sha256,
        artifact_size_bytes=version.artifact_size_bytes,
        server_ids=server_ids,
        scheduled_at=request.scheduled_at or now,
        deadline_s=request.deadline_s,
        max_retries=request.max_retries,
        backoff_base_s=request.backoff_base_s,
        health=request.health,
        started_by=started_by,
        failure_threshold=request.failure_threshold,
        rollback_on_failure=request.rollback_on_failure,
        wave_sizes=request.wave_sizes,
        environment=environment,
        kind=request.kind,
        reason=truncate_text(request.reason),
        release_rollback_of=request.release_rollback_of,
    )
