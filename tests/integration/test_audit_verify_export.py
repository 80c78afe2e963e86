"""`yard audit verify` and `yard audit export` as an auditor runs them: yard's own process, over gRPC,
against ReadEvents served from a real PostgreSQL store (tampered with SQL), and against every service
of the running platform; exports checked by tools/verify_export.py in a process of its own."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard.v1 import events_pb2_grpc
from modelyard_devstack.platform import Platform
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.signing import TEST_SIGNER
from modelyard_grpc import (
    EVENT_LOG_RULES,
    AccessPolicy,
    AuthInterceptor,
    EventLogServicer,
    mint_token,
    serving,
)
from modelyard_grpc.testing import TEST_ISSUER, verifier_for
from tests.integration.support import write_counters

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


async def _run(*args: str, env: dict[str, str]) -> Ran:
    """A process of its own (yard, or the offline verifier), its output and exit code."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    process = await asyncio.create_subprocess_exec(
        *args, env={**clean, "COLUMNS": "200", **env}, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT_S)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


async def _yard(*args: str, env: dict[str, str]) -> Ran:
    return await _run(sys.executable, "-m", "modelyard_cli", *args, env=env)


async def _offline(export: Path, keys: Path) -> Ran:
    # -I, no MODELYARD_ settings: the checker stands on the interpreter and `cryptography` alone.
    tool = str(ROOT / "tools" / "verify_export.py")
    return await _run(sys.executable, "-I", tool, str(export), "--keys", str(keys), env={})


def _token(*roles: str, org: str | None = None) -> str:
    return mint_token(TEST_ISSUER, "audrey", org, list(roles), 600.0)


@pytest.fixture
async def served_store(store: PostgresEventStore) -> AsyncIterator[str]:
    """12 counter events in a fresh store, signed; its ReadEvents served with the platform's auth rules."""
    await write_counters(store, streams=3, increments=3)  # positions 1..12
    await store.signatures.flush()
    interceptor = AuthInterceptor(verifier_for("job-svc"), AccessPolicy(EVENT_LOG_RULES))
    async with serving(
        [(events_pb2_grpc.add_EventLogServicer_to_server, EventLogServicer(store))],
        service_names=["modelyard.v1.EventLog"],
        interceptors=[interceptor],
        grace_s=0.0,
    ) as server:
        yield f"127.0.0.1:{server.port}"


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"job": [TEST_SIGNER.public_text()]}))
    return path


async def test_verify_finds_a_row_updated_in_postgresql_and_names_its_position(
    engine: AsyncEngine, store: PostgresEventStore, served_store: str, keys_file: Path
) -> None:
    env = {"MODELYARD_JOB_SVC_TARGET": served_store, "MODELYARD_TOKEN": _token("auditor")}
    intact = await _yard("audit", "verify", "--service", "job-svc", "--keys", str(keys_file), env=env)
    assert intact.code == 0, intact
    assert "job-svc: ok: 12 events, signed through 12" in intact.out

    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            f"UPDATE {store.schema}.events SET data = replace(data, ':2', ':20') WHERE position = 9"
        )
    tampered = await _yard("audit", "verify", "--service", "job-svc", "--keys", str(keys_file), env=env)
    assert tampered.code == 1, tampered
    assert "job-svc: BROKEN at position 9" in tampered.out
    assert "edited" in tampered.out


async def test_an_exported_range_verifies_offline_and_an_edited_one_does_not(
    served_store: str, keys_file: Path, tmp_path: Path
) -> None:
    env = {"MODELYARD_JOB_SVC_TARGET": served_store, "MODELYARD_TOKEN": _token("auditor")}
    export = tmp_path / "range.jsonl"
    ran = await _yard(
        "audit", "export", "--service", "job-svc", "--entity", "counter/counter-1", "--out", str(export),
        "--keys", str(keys_file), env=env,
    )  # fmt: skip
    assert ran.code == 0, ran
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    selected = [r["event"]["position"] for r in lines if r["kind"] == "event" and r["selected"]]
    assert selected == [2, 5, 8, 11]  # counter-1's opening and its three increments

    checked = await _offline(export, keys_file)
    assert checked.code == 0, checked
    assert checked.out.startswith("verified: ")

    # Where heads fall depends on how appends were batched: find the lines by what they hold.
    def event_line(position: int, records: list[dict[str, Any]]) -> int:
        return next(
            i for i, r in enumerate(records) if r["kind"] == "event" and r["event"]["position"] == position
        )

    at, first_head = event_line(5, lines), next(i for i, r in enumerate(lines) if r["kind"] == "head")
    for edit in ("data", "deleted", "reordered", "signature"):
        records = copy.deepcopy(lines)
        if edit == "data":
            records[at]["event"]["data_json"] = records[at]["event"]["data_json"].replace(":1", ":100")
            bad, why = at, "edited"
        elif edit == "deleted":  # the event and the head that signs it, if one does
            del records[at : at + (2 if records[at + 1]["kind"] == "head" else 1)]
            bad, why = event_line(6, records), "position 6 where 5 should be"
        elif edit == "reordered":
            later = event_line(6, records)
            records[at], records[later] = records[later], records[at]
            bad, why = at, "position 6 where 5 should be"
        else:
            signature = records[first_head]["signature"]
            records[first_head]["signature"] = ("B" if signature[0] == "A" else "A") + signature[1:]
            bad, why = first_head, "does not verify"
        edited = tmp_path / f"{edit}.jsonl"
        edited.write_text("".join(json.dumps(r) + "\n" for r in records))
        refused = await _offline(edited, keys_file)
        assert refused.code == 1, (edit, refused)
        assert refused.err.startswith(f"NOT verified: line {bad + 1}:"), (edit, refused)
        assert why in refused.err, (edit, refused)


@pytest.mark.parametrize(("roles", "org"), [(("operator",), None), (("org_admin",), "org-1")])
async def test_readevents_refuses_a_token_without_the_auditor_role_and_yard_says_so(
    served_store: str, keys_file: Path, tmp_path: Path, roles: tuple[str, ...], org: str | None
) -> None:
    env = {"MODELYARD_JOB_SVC_TARGET": served_store, "MODELYARD_TOKEN": _token(*roles, org=org)}
    ran = await _yard("audit", "verify", "--service", "job-svc", "--keys", str(keys_file), env=env)
    assert ran.code == 2, ran
    assert "job-svc refused the token: PERMISSION_DENIED" in ran.err
    assert "auditor role" in ran.err

    export = tmp_path / "x.jsonl"
    ran = await _yard(
        "audit", "export", "--service", "job-svc", "--positions", "1..12", "--out", str(export), env=env
    )
    assert ran.code == 2, ran
    assert "PERMISSION_DENIED" in ran.err
    assert not export.exists()  # an org_admin gets nothing


async def test_every_service_of_the_platform_verifies_and_refuses_an_org_admin(
    services: Platform, tmp_path: Path
) -> None:
    # Each service's real ReadEvents, policy and signing key: yard finds all five (trainer-svc's log
    # included, at MODELYARD_TRAINER_SVC_TARGET) and every event it reads is covered by a signed head.
    env = {
        "MODELYARD_JOB_SVC_TARGET": services.job_target,
        "MODELYARD_DATASET_SVC_TARGET": services.dataset_target,
        "MODELYARD_REGISTRY_SVC_TARGET": services.registry_target,
        "MODELYARD_DEPLOY_TARGET": services.deploy_target,
        "MODELYARD_TRAINER_SVC_TARGET": services.trainer_target,
        "MODELYARD_EVENT_PUBLIC_KEYS": services.base_env["MODELYARD_EVENT_PUBLIC_KEYS"],
        "MODELYARD_TOKEN": services.token(("auditor",), subject="audrey"),
    }
    ran = await _yard("--json", "audit", "verify", env=env)
    assert ran.code == 0, ran
    verdicts = {v["service"]: v for v in map(json.loads, ran.out.splitlines())}
    assert set(verdicts) == {"dataset-svc", "job-svc", "trainer-svc", "registry-svc", "deploy-svc"}
    assert all(v["ok"] and v["signed_through"] == v["events"] for v in verdicts.values()), verdicts

    refused = await _yard(
        "audit", "verify", env={**env, "MODELYARD_TOKEN": services.token(("org_admin",), org_id="acme")}
    )
    assert refused.code == 2, refused
    for name in verdicts:
        assert f"{name} refused the token: PERMISSION_DENIED" in refused.err
