"""`yard audit events`, `yard audit trail` and `yard lineage` against an in-process fake AuditService."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner, Result
from typing_extensions import override

from modelyard.v1 import audit_pb2, audit_pb2_grpc
from modelyard_cli.main import app
from modelyard_grpc.values import timestamp


def _event(position: int, type_: str, reason: str = "") -> audit_pb2.AuditEvent:
    return audit_pb2.AuditEvent(
        source="job", position=position, event_id=f"e-{position}", type=type_, stream_type="training_job",
        stream_id="job-1", occurred_at=timestamp(datetime(2026, 3, 1, 9, position, tzinfo=UTC)),
        actor_subject="ada", org_id="acme", reason=reason, correlation_id="corr-1",
    )  # fmt: skip


class FakeAudit(audit_pb2_grpc.AuditServiceServicer):
    """Two pages of events; a lineage of two nodes; refuses org "other" like job-svc's interceptor."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    @override
    def SearchAudit(self, request: audit_pb2.SearchAuditRequest, context: grpc.ServicerContext) -> Any:
        self.requests.append(request)
        if request.org_id == "other":
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED, "org_id='other' is not the caller's own ('acme')"
            )
        if request.page_token == "":
            return audit_pb2.SearchAuditResponse(events=[_event(1, "JobCreated")], next_page_token="p2")
        return audit_pb2.SearchAuditResponse(events=[_event(2, "JobCancelled", "wrong data")])

    @override
    def FollowCorrelation(
        self, request: audit_pb2.FollowCorrelationRequest, context: grpc.ServicerContext
    ) -> Any:
        self.requests.append(request)
        return audit_pb2.SearchAuditResponse(events=[_event(1, "JobCreated")])

    @override
    def GetLineage(self, request: audit_pb2.GetLineageRequest, context: grpc.ServicerContext) -> Any:
        self.requests.append(request)
        sample = audit_pb2.LineageNode(
            kind="sample", id="ds-1:ab", org_id="acme", label="cam.png",
            acts=[audit_pb2.LineageAct(act="labeled", subject="lena", detail="class 7")],
            sample=audit_pb2.SampleProvenance(filename="cam.png", sha256="ab" * 32, size_bytes=9),
        )  # fmt: skip
        version = audit_pb2.LineageNode(kind="dataset_version", id="ds-1/1", org_id="acme")
        edge = audit_pb2.LineageEdge(
            from_kind="sample",
            from_id="ds-1:ab",
            to_kind="dataset_version",
            to_id="ds-1/1",
            relation="contains",
        )
        return audit_pb2.GetLineageResponse(start=version, nodes=[version, sample], edges=[edge])


@pytest.fixture
def audit() -> Iterator[tuple[FakeAudit, str]]:
    fake = FakeAudit()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    audit_pb2_grpc.add_AuditServiceServicer_to_server(fake, server)
    target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    yield fake, target
    server.stop(grace=None)


def _yard(target: str, *args: str) -> Result:
    env = {"MODELYARD_JOB_SVC_TARGET": target, "MODELYARD_TOKEN": "t", "MODELYARD_TOKEN_SIGNING_KEY": None}
    return CliRunner().invoke(app, list(args), env=env)


def test_events_sends_the_filters_and_follows_every_page_with_all(audit: tuple[FakeAudit, str]) -> None:
    fake, target = audit
    result = _yard(
        target, "audit", "events", "--actor", "ada", "--org", "acme", "--entity", "training_job/job-1",
        "--type", "JobCancelled", "--since", "2026-03-01T09:00:00", "--all",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    first, second = fake.requests
    assert (first.actor, first.org_id, first.stream_type, first.stream_id, first.type) == (
        "ada", "acme", "training_job", "job-1", "JobCancelled",
    )  # fmt: skip
    assert first.since.ToSeconds() > 0
    assert not first.HasField("until")
    assert second.page_token == "p2"
    assert "JobCreated" in result.output
    assert "reason: wrong data" in result.output


def test_one_page_names_the_token_of_the_next(audit: tuple[FakeAudit, str]) -> None:
    _, target = audit
    result = _yard(target, "audit", "events", "--json")
    assert result.exit_code == 0, result.output
    assert "--page-token p2" in result.output
    assert json.loads(result.stdout.splitlines()[0])["type"] == "JobCreated"


def test_a_malformed_entity_is_refused_before_any_call(audit: tuple[FakeAudit, str]) -> None:
    fake, target = audit
    result = _yard(target, "audit", "events", "--entity", "job-1")
    assert result.exit_code == 2
    assert "STREAM_TYPE/ID" in result.output
    assert fake.requests == []


def test_another_organization_refused_by_the_service_exits_2_with_its_message(
    audit: tuple[FakeAudit, str],
) -> None:
    _, target = audit
    result = _yard(target, "audit", "events", "--org", "other")
    assert result.exit_code == 2
    assert "PERMISSION_DENIED" in result.output


def test_trail_follows_one_correlation_id(audit: tuple[FakeAudit, str]) -> None:
    fake, target = audit
    result = _yard(target, "audit", "trail", "corr-1")
    assert result.exit_code == 0, result.output
    assert fake.requests[0].correlation_id == "corr-1"
    assert "corr corr-1" in result.output


def test_lineage_up_from_a_sample_id_with_a_colon(audit: tuple[FakeAudit, str]) -> None:
    fake, target = audit
    result = _yard(target, "lineage", "sample:ds-1:ab", "--up")
    assert result.exit_code == 0, result.output
    (request,) = fake.requests
    assert (request.kind, request.id, request.direction) == (
        "sample",
        "ds-1:ab",
        audit_pb2.LINEAGE_DIRECTION_UPSTREAM,
    )
    assert "labeled by lena" in result.output
    assert "← sample:ds-1:ab (contains)" in result.output


def test_lineage_refuses_both_directions_and_a_node_without_kind(audit: tuple[FakeAudit, str]) -> None:
    fake, target = audit
    assert _yard(target, "lineage", "sample:x", "--up", "--down").exit_code == 2
    assert _yard(target, "lineage", "mv-1").exit_code == 2
    assert fake.requests == []
