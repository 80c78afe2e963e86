"""`ProjectionAudit/ReplayProjections` on the running services: an auditor gets every read model
rebuilt and compared (identical on an honest stack); an edited read model is found; org_admins,
operators and edges are refused; an unknown read model is named."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import text

from modelyard.v1 import events_pb2, events_pb2_grpc
from modelyard_devstack.platform import Platform
from modelyard_events.db import create_engine
from modelyard_grpc import channel
from tests.integration.support import run_yard


async def _replay(
    target: str, token: str, *projections: str
) -> tuple[list[str], list[events_pb2.ProjectionReplayResult]]:
    lines: list[str] = []
    results: list[events_pb2.ProjectionReplayResult] = []
    async with channel(target, token) as ch:
        request = events_pb2.ReplayRequest(projections=list(projections))
        async for message in events_pb2_grpc.ProjectionAuditStub(ch).ReplayProjections(request, timeout=300):
            if message.HasField("result"):
                results.append(message.result)
            else:
                lines.append(message.line)
    return lines, results


@pytest.mark.parametrize("service", ["registry", "deploy", "job", "dataset"])
async def test_an_auditor_replays_every_read_model_identical(services: Platform, service: str) -> None:
    targets = {
        "registry": services.registry_target,
        "deploy": services.deploy_target,
        "job": services.job_target,
        "dataset": services.dataset_target,
    }
    lines, results = await _replay(targets[service], services.token(("auditor",), subject="auditor-1"))
    expected = {
        "registry": ["registry_views"],
        "deploy": ["deploy_known_versions", "deploy_views"],
        "job": ["audit_views", "job_views", "usage_views"],
        "dataset": ["dataset_version_uses", "dataset_views"],
    }[service]
    assert [r.projection for r in results] == expected
    for result in results:
        differing = [
            f"{t.table}: live {list(t.only_live_examples)} replayed {list(t.only_replayed_examples)}"
            for t in result.tables
            if t.only_live or t.only_replayed
        ]
        assert result.identical, "\n".join([result.projection, result.problem, *differing])
        assert result.tables
        assert all(t.only_live == t.only_replayed == 0 for t in result.tables)
    assert any("rebuilding into" in line for line in lines)


async def test_a_row_slipped_into_a_live_view_is_found_and_named(services: Platform) -> None:
    auditor = services.token(("auditor",), subject="auditor-1")
    engine = create_engine(services.infra.database_url)
    forged = "forged-version-1"
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO registry_views.model_versions VALUES (:v, 'acme', 'reader', 9, 9, 9, "
                    "'released', 'no-such-job', now(), now(), 0)"
                ),
                {"v": forged},
            )
        _, results = await _replay(services.registry_target, auditor, "registry_views")
        (result,) = results
        assert not result.identical
        (table,) = [t for t in result.tables if t.table == "model_versions"]
        assert (table.only_live, table.only_replayed) == (1, 0)
        assert f'"version_id":"{forged}"' in table.only_live_examples[0]
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM registry_views.model_versions WHERE version_id = :v"), {"v": forged}
            )
        await engine.dispose()


@pytest.mark.parametrize("roles", [("org_admin",), ("operator",), ("edge",), ("trainer",)])
async def test_only_auditors_and_super_admins_replay(services: Platform, roles: tuple[str, ...]) -> None:
    token = services.token(roles, org_id="acme", subject="someone")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _replay(services.registry_target, token)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_unknown_read_model_is_named_with_the_ones_there_are(services: Platform) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _replay(services.deploy_target, services.token(("auditor",)), "deploy_reactions")
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'deploy_reactions'" in (refused.value.details() or "")
    assert "deploy_known_versions, deploy_views" in (refused.value.details() or "")


async def test_yard_audit_replay_says_identical_or_names_the_difference(services: Platform) -> None:
    env = {
        "MODELYARD_REGISTRY_SVC_TARGET": services.registry_target,
        "MODELYARD_DEPLOY_TARGET": services.deploy_target,
        "MODELYARD_TOKEN": services.token(("auditor",), subject="auditor-1"),
    }
    both = ("--service", "registry-svc", "--service", "deploy")
    code, out, err = await run_yard(env, "audit", "replay", *both)
    assert code == 0, (out, err)
    assert "registry-svc registry_views: identical" in out
    assert "deploy-svc deploy_views: identical" in out
    assert "every read model replayed identical" in out
    assert "registry-svc: registry_views: rebuilding into" in out  # progress streams as it goes

    engine = create_engine(services.infra.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO registry_views.model_versions VALUES ('forged-2', 'acme', 'reader', "
                    "9, 9, 9, 'released', 'no-such-job', now(), now(), 0)"
                )
            )
        code, out, err = await run_yard(env, "audit", "replay", "--service", "registry-svc")
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM registry_views.model_versions WHERE version_id = 'forged-2'")
            )
        await engine.dispose()
    assert code == 1, (out, err)
    assert "registry-svc registry_views: DIFFERS" in out
    assert "model_versions: 1 rows only in the live view, 0 only in the replay" in out
    assert '"version_id":"forged-2"' in out
    assert "replayed read models differ from the live ones: registry_views" in err

    operator = {**env, "MODELYARD_TOKEN": services.token(("operator",), org_id="acme")}
    code, out, err = await run_yard(operator, "audit", "replay", "--service", "registry-svc")
    assert code == 2, (out, err)
    assert "registry-svc refused the token: PERMISSION_DENIED" in err
    code, _, err = await run_yard(env, "audit", "replay", "--service", "trainer-svc")
    assert code == 2
    assert "trainer-svc keeps no read model to replay" in err
