"""The registry's release rollback (ModelReleased with rollback) as a rollout of kind "rollback".

Its id derives from the registry event's id, so a redelivered event names the same rollout and decides
nothing twice. It takes the defaults of an operator's rollout except three: one wave, since every
server must leave the withdrawn version and a canary that is offline would hold the rest back until
its deadline; no halt (a failure ratio of 1.0: a server that fails is retried and shown failed, the
others still go back); and no rolling itself back on failure (undoing an undo would put the fleet
back on the version the registry just withdrew).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from modelyard_deploy.app.rollout_request import RolloutRequest
from modelyard_deploy.domain.rollout import RolloutSpec
from modelyard_events.schemas.bounds import truncate_text
from modelyard_events.schemas.registry import ModelReleased

_RELEASE_ROLLBACKS = uuid.UUID("0b7f3f0e-2c51-4b8e-9d0a-5f3c2a1e7d64")


def release_rollback_id(registry_event_id: str) -> str:
    """The rollout that carries the registry event `registry_event_id` to the fleet."""
    return str(uuid.uuid5(_RELEASE_ROLLBACKS, registry_event_id))


def release_rollback_spec(
    event: ModelReleased, rollout_id: str, server_ids: Sequence[str], now: datetime
) -> RolloutSpec:
    """The rollout of `event.version_id` to `server_ids`, started by whoever released it again."""
    defaults = RolloutRequest(version_id=event.version_id)
    why = (
        f"release rollback in {event.environment}: {event.ai_module} {event.semantic_version} "
        f"replaces {event.replaces_version_id}. {event.release_notes}"
    )
    return RolloutSpec(
        rollout_id=rollout_id,
        org_id=event.org_id,
        version_id=event.version_id,
        ai_module=event.ai_module,
        semantic_version=event.semantic_version,
        artifact_sha256=event.artifact_sha256,
        artifact_size_bytes=event.artifact_size_bytes,
        server_ids=server_ids,
        scheduled_at=now,
        deadline_s=defaults.deadline_s,
        max_retries=defaults.max_retries,
        backoff_base_s=defaults.backoff_base_s,
        health=defaults.health,
        started_by=event.released_by,
        failure_threshold=1.0,
        wave_sizes=[len(server_ids)],
        rollback_on_failure=False,
        environment=event.environment,
        kind="rollback",
        reason=truncate_text(why.strip()),
        release_rollback_of=event.replaces_version_id,
    )
