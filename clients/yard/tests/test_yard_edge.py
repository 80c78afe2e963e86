"""yard's fleet views (`yard edge list | show`, `yard fleet status`) against the fake deploy-svc."""

from __future__ import annotations

import json
import socket

from deploy_fakes import FakeDeploySvc, deployment, edge_server, running
from google.protobuf.timestamp_pb2 import Timestamp
from test_yard_models import detail, table_rows
from yard_runner import TOKEN, Yard

from modelyard.v1 import deploy_pb2
from modelyard_events.domain_errors import NotFound
from modelyard_grpc import status_for


class TestConnecting:
    def test_the_bearer_token_travels_to_deploy_svc(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        assert deploy_yard("edge", "list").exit_code == 0
        assert deploy_svc.calls[0].metadata["authorization"] == f"Bearer {TOKEN}"

    def test_the_deploy_target_option_wins_over_the_environment(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        env = {"MODELYARD_DEPLOY_TARGET": "127.0.0.1:1"}
        result = deploy_yard("--deploy-target", deploy_svc.target, "edge", "list", env=env)
        assert result.exit_code == 0, result.output

    def test_an_unreachable_deploy_svc_says_where_to_point_yard(self, deploy_yard: Yard) -> None:
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        result = deploy_yard("edge", "list", env={"MODELYARD_DEPLOY_TARGET": f"127.0.0.1:{port}"})
        assert result.exit_code == 2
        assert f"cannot reach deploy-svc at 127.0.0.1:{port}" in result.stderr
        assert "--deploy-target or MODELYARD_DEPLOY_TARGET" in result.stderr


class TestEdgeList:
    def test_filters_are_sent(self, deploy_yard: Yard, deploy_svc: FakeDeploySvc) -> None:
        result = deploy_yard("edge", "list", "--org", "acme", "--environment", "staging", "--drift-only")
        assert result.exit_code == 0, result.output
        (request,) = deploy_svc.requests("ListEdgeServers")
        assert (request.org_id, request.environment, request.drift_only, request.page_size) == (
            "acme",
            "staging",
            True,
            100,
        )

    def test_a_row_per_server_with_running_and_intended_versions_and_drift(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        drifting = edge_server(
            "edge-2", intended=[running("mv-2", "1.3.0")], drift=True, online=False, free_disk_bytes=0
        )
        drifting.ClearField("last_heartbeat_at")
        deploy_svc.server_pages = [[edge_server("edge-1"), drifting]]
        rows = table_rows(deploy_yard("edge", "list").stdout)
        assert rows == [
            [
                "edge-1",
                "production",
                "digits 1.2.0",
                "digits 1.2.0",
                "no",
                "yes",
                "2026-01-01 00:00:00Z",
                "12.5 GB",
            ],
            ["edge-2", "production", "digits 1.2.0", "digits 1.3.0", "yes", "no", "-", "0 B"],
        ]

    def test_all_follows_every_page(self, deploy_yard: Yard, deploy_svc: FakeDeploySvc) -> None:
        deploy_svc.server_pages = [[edge_server("edge-1")], [edge_server("edge-2")]]
        result = deploy_yard("edge", "list", "--all")
        assert [r.page_token for r in deploy_svc.requests("ListEdgeServers")] == ["", "1"]
        assert [row[0] for row in table_rows(result.stdout)] == ["edge-1", "edge-2"]

    def test_a_server_id_cannot_drive_the_terminal(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        deploy_svc.server_pages = [[edge_server("edge-1", hostname="x", environment="prod\x1b[2Juction")]]
        result = deploy_yard("edge", "list")
        assert "\x1b[2J" not in result.stdout
        assert "production" in result.stdout

    def test_json_is_one_document(self, deploy_yard: Yard) -> None:
        document = json.loads(deploy_yard("--json", "edge", "list").stdout)
        assert [s["server_id"] for s in document["servers"]] == ["edge-1"]


class TestEdgeShow:
    def test_details_drift_reasons_and_history_newest_first(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        failed = deployment(
            "edge-1",
            deploy_pb2.DEPLOYMENT_STATUS_FAILED,
            deployment_id="dep-2",
            error_message="sha256 mismatch: got 00ff…",
            retry_count=3,
        )
        deploy_svc.server_detail = deploy_pb2.EdgeServerDetail(
            server=edge_server(
                drift=True,
                intended=[running("mv-2", "1.3.0")],
                drift_reasons=["digits runs 1.2.0, intended 1.3.0"],
            ),
            history=[
                failed,
                deployment("edge-1", deploy_pb2.DEPLOYMENT_STATUS_COMPLETED, deployment_id="dep-1"),
            ],
        )
        result = deploy_yard("edge", "show", "edge-1", "--org", "acme")
        assert result.exit_code == 0, result.output
        (request,) = deploy_svc.requests("GetEdgeServer")
        assert (request.server_id, request.org_id) == ("edge-1", "acme")
        assert detail(result.stdout, "platform") == "linux/amd64"
        assert detail(result.stdout, "drift") == "digits runs 1.2.0, intended 1.3.0"
        assert detail(result.stdout, "intended") == "digits 1.3.0"
        history = [row for row in table_rows(result.stdout) if row[0].startswith("dep-")]
        assert [(row[0], row[3], row[6], row[9]) for row in history] == [
            ("dep-2", "failed", "3/3", "sha256 mismatch: got 00ff…"),
            ("dep-1", "completed", "0/3", "-"),
        ]

    def test_an_unknown_server_is_refused_with_the_servers_message(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        deploy_svc.refusals["GetEdgeServer"] = status_for(NotFound("no edge server edge-9 in acme"))
        result = deploy_yard("edge", "show", "edge-9")
        assert result.exit_code == 2
        assert result.stderr.splitlines()[0] == "error: NOT_FOUND: no edge server edge-9 in acme"


class TestFleetStatus:
    def test_one_call_shows_jobs_and_the_active_model_per_server(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        deploy_svc.mobile = deploy_pb2.MobileStatus(
            jobs=[
                deploy_pb2.MobileStatus.JobLine(
                    job_id="job-3", name="digits", state="running", progress=0.425
                )
            ],
            edges=[
                deploy_pb2.MobileStatus.EdgeLine(
                    server_id="edge-1", environment="production", running=[running()], online=True
                )
            ],
            as_of=Timestamp(seconds=1_767_225_600),
        )
        result = deploy_yard("fleet", "status", "--org", "acme")
        assert result.exit_code == 0, result.output
        assert [r.org_id for r in deploy_svc.requests("GetMobileStatus")] == ["acme"]
        assert len(deploy_svc.calls) == 1
        rows = table_rows(result.stdout)
        assert ["job-3", "digits", "running", "42.5%", "-"] in rows
        assert ["edge-1", "production", "digits 1.2.0", "yes", "no", "-"] in rows

    def test_a_job_svc_outage_is_said_and_the_edges_still_shown(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        deploy_svc.mobile = deploy_pb2.MobileStatus(
            edges=[deploy_pb2.MobileStatus.EdgeLine(server_id="edge-1", environment="production")],
            jobs_error="job-svc unavailable",
        )
        result = deploy_yard("fleet", "status")
        assert "training jobs could not be read: job-svc unavailable" in result.stdout
        assert "edge-1" in result.stdout
