"""StartRolloutRequest → RolloutRequest: the shape checked before any lookup, the proto's defaults set.

Shape problems (too many servers, a malformed id, both a list and all_servers, a threshold outside
0..1) are all reported at once, before the version is looked up, so a malformed request never
reads as "unknown version".
"""

from __future__ import annotations

from datetime import UTC

from modelyard.v1 import deploy_pb2
from modelyard_deploy.api.convert import health_limits_from_proto
from modelyard_deploy.app.rollout_request import (
    DEFAULT_BACKOFF_BASE_S,
    DEFAULT_DEADLINE_S,
    DEFAULT_MAX_RETRIES,
    RolloutRequest,
)
from modelyard_deploy.domain.edge_server import check_server_id
from modelyard_events.domain_errors import InvalidFields
from modelyard_events.schemas.bounds import checked_identifier
from modelyard_events.schemas.deploy import MAX_ROLLOUT_SERVERS, MAX_WAVES

MAX_DEADLINE_S = 7 * 24 * 3600
MAX_BACKOFF_BASE_S = 3600.0


def rollout_request(request: deploy_pb2.StartRolloutRequest) -> RolloutRequest:
    """The request with unset fields at their defaults; InvalidFields naming every bad field."""
    problems = _shape_problems(request)
    if problems:
        raise InvalidFields(problems)
    return RolloutRequest(
        version_id=checked_identifier(request.version_id, "version_id") or "",
        server_ids=tuple(request.server_ids),
        environment=request.environment,
        all_servers=request.all_servers,
        wave_sizes=tuple(request.wave_sizes) or None,
        failure_threshold=request.failure_threshold if request.HasField("failure_threshold") else 0.0,
        rollback_on_failure=request.rollback_on_failure,
        scheduled_at=request.scheduled_at.ToDatetime(tzinfo=UTC)
        if request.HasField("scheduled_at")
        else None,
        deadline_s=request.deadline_s if request.HasField("deadline_s") else DEFAULT_DEADLINE_S,
        max_retries=request.max_retries if request.HasField("max_retries") else DEFAULT_MAX_RETRIES,
        backoff_base_s=request.backoff_base_s
        if request.HasField("backoff_base_s")
        else DEFAULT_BACKOFF_BASE_S,
        health=health_limits_from_proto(request.health),
        reason=request.reason,
        org_id=checked_identifier(request.org_id, "org_id") or "",
    )


def _shape_problems(request: deploy_pb2.StartRolloutRequest) -> dict[str, str]:
    problems: dict[str, str] = {}
    if not request.version_id:
        problems["version_id"] = "name the released version to deploy (yard models list)"
    if request.all_servers and request.server_ids:
        problems["server_ids"] = "name servers or ask for all_servers, not both"
    elif not request.all_servers and not request.server_ids:
        problems["server_ids"] = "name at least one server, or ask for all_servers"
    elif len(request.server_ids) > MAX_ROLLOUT_SERVERS:
        problems["server_ids"] = (
            f"{len(request.server_ids)} servers; one rollout takes at most {MAX_ROLLOUT_SERVERS} "
            "(roll a larger fleet out per environment or in parts)"
        )
    else:
        bad = [s for s in request.server_ids if check_server_id(s)]
        if bad:
            problems["server_ids"] = f"not a server id: {', '.join(repr(s[:80]) for s in bad[:5])}"
    if len(request.wave_sizes) > MAX_WAVES or any(size < 1 for size in request.wave_sizes):
        problems["wave_sizes"] = f"at most {MAX_WAVES} waves, each of at least one server"
    if request.HasField("failure_threshold") and not 0.0 <= request.failure_threshold <= 1.0:
        problems["failure_threshold"] = "a share of the wave, from 0.0 (any failure halts) to 1.0"
    if request.HasField("deadline_s") and not 0 < request.deadline_s <= MAX_DEADLINE_S:
        problems["deadline_s"] = f"seconds per deployment, 1 to {MAX_DEADLINE_S}"
    if request.HasField("max_retries") and not 0 <= request.max_retries <= 100:
        problems["max_retries"] = "0 to 100"
    if request.HasField("backoff_base_s") and not 0 < request.backoff_base_s <= MAX_BACKOFF_BASE_S:
        problems["backoff_base_s"] = f"seconds, more than 0 and at most {MAX_BACKOFF_BASE_S:g}"
    return problems
