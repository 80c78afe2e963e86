"""GetRollout right after StartRollout: the rollout's own stream answers while the views lag."""

from __future__ import annotations

from typing import Any

import pytest
from deploy_builders import OPERATOR, ORG, register_fleet, world

from modelyard.v1 import deploy_pb2
from modelyard_deploy.api.deploy_servicer import DeployServicer
from modelyard_deploy.app.rollout_request import RolloutRequest
from modelyard_events.domain_errors import NotFound, PermissionDenied
from modelyard_grpc import Principal, Role
from modelyard_grpc.authorization import _principal


class _LaggingViews:
    """Views that have applied nothing yet."""

    async def rollout(self, rollout_id: str) -> None:
        return None


def _servicer(w: Any) -> DeployServicer:
    return DeployServicer(w.commands, _LaggingViews(), None, None, w.clock)  # type: ignore[arg-type]


async def _get(servicer: DeployServicer, rollout_id: str, org_id: str) -> deploy_pb2.Rollout:
    token = _principal.set(Principal("op", org_id, frozenset({Role.ORG_ADMIN})))
    try:
        return await servicer.GetRollout(deploy_pb2.RolloutRef(rollout_id=rollout_id), None)  # type: ignore[arg-type]
    finally:
        _principal.reset(token)


async def test_a_rollout_the_views_do_not_show_yet_is_read_from_its_stream() -> None:
    w = world()
    await register_fleet(w, "edge-1")
    request = RolloutRequest(version_id="v2", server_ids=("edge-1",))
    started = await w.commands.start_rollout(request, OPERATOR)
    found = await _get(_servicer(w), started.rollout_id, ORG)
    assert (found.rollout_id, found.version_id, found.org_id) == (started.rollout_id, "v2", ORG)
    with pytest.raises(PermissionDenied):
        await _get(_servicer(w), started.rollout_id, "globex")


async def test_a_rollout_that_does_not_exist_is_not_found() -> None:
    with pytest.raises(NotFound, match="rollout 'nope' does not exist"):
        await _get(_servicer(world()), "nope", ORG)
