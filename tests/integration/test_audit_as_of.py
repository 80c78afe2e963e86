"""`ProjectionAudit/StateAsOf` on the running services: the fleet as its log said it was before and
after an agent upgraded; who may ask (an org_admin for its own organization only); bad requests."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from modelyard.v1 import deploy_pb2, deploy_pb2_grpc, events_pb2, events_pb2_grpc
from modelyard_devstack.platform import Platform
from modelyard_devstack.processes import eventually
from modelyard_grpc import channel
from tests.integration.support import run_yard


def _at(instant: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(instant)
    return stamp


async def _register(services: Platform, org: str, server_id: str, edge_version: str) -> None:
    async with channel(
        services.deploy_target, services.token(("edge",), org_id=org, subject=server_id)
    ) as ch:
        await deploy_pb2_grpc.EdgeServiceStub(ch).Register(
            deploy_pb2.RegisterEdgeRequest(
                server_id=server_id, platform="linux/amd64", edge_version=edge_version
            )
        )


async def _as_of(
    services: Platform, token: str, kind: str, id_: str, at: datetime | None
) -> events_pb2.AsOfState:
    target = services.registry_target if kind == "model_version" else services.deploy_target
    async with channel(target, token) as ch:
        request = events_pb2.AsOfRequest(kind=kind, id=id_)
        if at is not None:
            request.at.CopyFrom(_at(at))
        result: events_pb2.AsOfState = await events_pb2_grpc.ProjectionAuditStub(ch).StateAsOf(request)
        return result


async def _code(services: Platform, token: str, kind: str, id_: str, at: datetime | None) -> tuple[str, str]:
    try:
        await _as_of(services, token, kind, id_, at)
    except grpc.aio.AioRpcError as error:
        return error.code().name, error.details() or ""
    return "OK", ""


async def test_the_fleet_as_of_before_and_after_an_agent_upgraded(services: Platform) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    auditor = services.token(("auditor",), subject="auditor-1")
    # The services stamp events with this machine's clock when they receive the call: an instant
    # taken before a call is before its event, one taken after it returns is after.
    before_anything = datetime.now(UTC)
    await _register(services, org, "edge-old", "1.0.0")
    after_first = datetime.now(UTC)
    await _register(services, org, "edge-old", "1.2.0")  # the agent upgraded
    await _register(services, org, "edge-new", "1.2.0")

    async def fleet(at: datetime) -> dict[str, object]:
        state = await _as_of(services, auditor, "fleet", org, at)
        return {s["server_id"]: s["edge_version"] for s in json.loads(state.state_json)["servers"]}

    async def both_listed() -> bool:
        try:
            return len(await fleet(datetime.now(UTC) + timedelta(seconds=1))) == 2
        except grpc.aio.AioRpcError:  # NOT_FOUND until the views list a server of the organization
            return False

    # The server list comes from the views, a moment behind the log.
    await eventually(both_listed, 30, "both servers listed by the views")
    assert await fleet(after_first) == {"edge-old": "1.0.0"}
    assert await fleet(datetime.now(UTC)) == {"edge-old": "1.2.0", "edge-new": "1.2.0"}
    now = await _as_of(services, auditor, "fleet", org, datetime.now(UTC))
    assert (now.org_id, now.events_applied) == (org, 3)
    assert await _code(services, auditor, "fleet", org, before_anything) == (
        "NOT_FOUND",
        f"fleet {org} did not exist at {before_anything.isoformat()}",
    )
    # An org_admin of the organization may look; one of another organization may not.
    own_admin = services.token(("org_admin",), org_id=org, subject="admin-1")
    assert (await _code(services, own_admin, "fleet", org, datetime.now(UTC)))[0] == "OK"
    other_admin = services.token(("org_admin",), org_id="acme", subject="admin-2")
    assert (await _code(services, other_admin, "fleet", org, datetime.now(UTC)))[0] == "PERMISSION_DENIED"


@pytest.mark.parametrize("roles", [("operator",), ("edge",), ("trainer",)])
async def test_only_auditors_super_admins_and_org_admins_travel_in_time(
    services: Platform, roles: tuple[str, ...]
) -> None:
    token = services.token(roles, org_id="acme", subject="someone")
    code, _ = await _code(services, token, "fleet", "acme", datetime.now(UTC))
    assert code == "PERMISSION_DENIED"


async def test_bad_requests_say_what_to_fix(services: Platform) -> None:
    auditor = services.token(("auditor",))
    code, details = await _code(services, auditor, "job", "", None)
    assert code == "INVALID_ARGUMENT"
    assert "kind: 'job' is not kept by this service (kinds here: fleet)" in details
    assert "id: give the id of the job (1..200 characters)" in details
    assert "at: required" in details
    code, details = await _code(services, auditor, "model_version", "no-such-version", datetime.now(UTC))
    assert code == "NOT_FOUND"
    assert "no-such-version" in details


async def test_yard_audit_as_of_prints_the_fleet_and_names_a_bad_time(services: Platform) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    await _register(services, org, "edge-1", "1.0.0")
    auditor = services.token(("auditor",), subject="auditor-1")
    env = {"MODELYARD_DEPLOY_TARGET": services.deploy_target, "MODELYARD_TOKEN": auditor}
    at = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    ran: list[tuple[int, str, str]] = []

    async def shown() -> bool:  # the server list comes from the views, a moment behind the log
        ran[:] = [await run_yard(env, "audit", "as-of", "fleet", org, "--at", at)]
        return ran[0][0] == 0

    await eventually(shown, 60, "the fleet shown by yard audit as-of")
    code, out, err = ran[0]
    assert code == 0, (out, err)
    assert f"fleet {org} at " in out
    assert "  servers: [{" in out
    assert '"server_id": "edge-1"' in out
    assert '"edge_version": "1.0.0"' in out
    code, _, err = await run_yard(env, "audit", "as-of", "fleet", org, "--at", "yesterday")
    assert code == 2
    assert "--at 'yesterday' is not an ISO 8601 time" in err
    code, _, err = await run_yard(env, "audit", "as-of", "rollout", org, "--at", at)
    assert code == 2
    assert "no kind 'rollout': choose from job, model-version, dataset, fleet" in err
