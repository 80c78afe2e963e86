"""`yard usage` against an in-process fake AuditService: the table of used, limit and left."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner, Result
from typing_extensions import override

from modelyard.v1 import audit_pb2, audit_pb2_grpc
from modelyard_cli.commands.usage import usage_rows
from modelyard_cli.main import app


class FakeUsage(audit_pb2_grpc.AuditServiceServicer):
    """acme on Enterprise with one module in use; smallco on Professional (no storage limit);
    org "other" refused like job-svc's interceptor refuses an org_admin's other organization."""

    def __init__(self) -> None:
        self.requests: list[audit_pb2.UsageRequest] = []

    @override
    def GetUsage(self, request: audit_pb2.UsageRequest, context: grpc.ServicerContext) -> Any:
        self.requests.append(request)
        if request.org_id == "other":
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED, "org_id='other' is not the caller's own ('acme')"
            )
        if request.org_id == "smallco":
            return audit_pb2.Usage(
                org_id="smallco", plan_key="professional", plan_name="Professional", month="2026-03",
                jobs_limit=0, dataset_bytes=1500,
            )  # fmt: skip
        return audit_pb2.Usage(
            org_id="acme", plan_key="enterprise", plan_name="Enterprise", month="2026-03",
            jobs_this_month=3, jobs_limit=10, dataset_bytes=2_500_000_000, dataset_bytes_limit=10**10,
            modules=[audit_pb2.ModuleUsage(ai_module="reader", active_models=2, limit=5)],
            active_models_limit=5,
        )  # fmt: skip


@pytest.fixture
def served() -> Iterator[tuple[FakeUsage, str]]:
    fake = FakeUsage()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    audit_pb2_grpc.add_AuditServiceServicer_to_server(fake, server)
    target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    yield fake, target
    server.stop(grace=None)


def _yard(target: str, *args: str) -> Result:
    env = {"MODELYARD_JOB_SVC_TARGET": target, "MODELYARD_TOKEN": "t", "MODELYARD_TOKEN_SIGNING_KEY": None}
    return CliRunner().invoke(app, list(args), env=env)


def test_the_rows_show_used_limit_and_left_and_unlimited_where_no_limit_is_set() -> None:
    enterprise = FakeUsage().GetUsage(audit_pb2.UsageRequest(org_id="acme"), None)  # type: ignore[arg-type]
    assert usage_rows(enterprise) == [
        ("training jobs (2026-03)", "3", "10", "7"),
        ("dataset data", "2.5 GB", "10 GB", "7.5 GB"),
        ("active models: reader", "2", "5", "3"),
    ]
    professional = FakeUsage().GetUsage(audit_pb2.UsageRequest(org_id="smallco"), None)  # type: ignore[arg-type]
    assert usage_rows(professional) == [
        ("training jobs (2026-03)", "0", "0", "0"),
        ("dataset data", "1.5 kB", "unlimited", "unlimited"),
        ("active models per module", "0", "unlimited", "unlimited"),
    ]


def test_usage_asks_for_the_named_organization_and_prints_the_table(served: tuple[FakeUsage, str]) -> None:
    fake, target = served
    result = _yard(target, "usage", "--org", "acme")
    assert result.exit_code == 0, result.output
    assert fake.requests[0].org_id == "acme"
    assert "Enterprise plan" in result.output
    assert "active models: reader" in result.output


def test_usage_as_json_keeps_an_unset_limit_absent(served: tuple[FakeUsage, str]) -> None:
    _, target = served
    result = _yard(target, "usage", "--org", "smallco", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["plan_key"] == "professional"
    assert int(document["jobs_limit"]) == 0  # a limit of none set explicitly is not "unlimited"
    assert "dataset_bytes_limit" not in document


def test_another_organization_refused_by_the_service_exits_2_with_its_message(
    served: tuple[FakeUsage, str],
) -> None:
    _, target = served
    result = _yard(target, "usage", "--org", "other")
    assert result.exit_code == 2
    assert "PERMISSION_DENIED" in result.output
