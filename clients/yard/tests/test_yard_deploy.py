"""yard's rollout commands (`yard deploy start | status | list | cancel | retry | rollback | deployments`)
against the fake deploy-svc, and `yard edge-agent`'s hand-over to the agent's package."""

from __future__ import annotations

import json
import sys
import types
from datetime import UTC, datetime

import pytest
from deploy_fakes import FakeDeploySvc, deployment, rollout
from test_yard_models import table_rows
from yard_runner import Yard

from modelyard.v1 import deploy_pb2
from modelyard_events.domain_errors import IllegalTransition, NotFound
from modelyard_grpc import status_for

PENDING = deploy_pb2.DEPLOYMENT_STATUS_PENDING
DOWNLOADING = deploy_pb2.DEPLOYMENT_STATUS_DOWNLOADING
COMPLETED = deploy_pb2.DEPLOYMENT_STATUS_COMPLETED
FAILED = deploy_pb2.DEPLOYMENT_STATUS_FAILED
FAST = ("--interval", "0.05")


class TestStart:
    def test_every_option_is_sent(self, deploy_yard: Yard, deploy_svc: FakeDeploySvc) -> None:
        result = deploy_yard(
            "deploy", "start", "mv-2", "--server", "edge-1", "--server", "edge-2", "--waves", "1,1",
            "--failure-threshold", "0.2", "--rollback-on-failure", "--at", "2026-12-02T18:00:00+01:00",
            "--deadline-s", "600", "--max-retries", "5", "--backoff-s", "2.5", "--max-load-time-ratio", "3",
            "--max-p95-latency-ratio", "1.5", "--min-agreement", "0.9", "--reason", "fox support",
            "--org", "acme",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        (request,) = deploy_svc.requests("StartRollout")
        assert (request.version_id, list(request.server_ids), request.all_servers) == (
            "mv-2",
            ["edge-1", "edge-2"],
            False,
        )
        assert list(request.wave_sizes) == [1, 1]
        assert (request.failure_threshold, request.rollback_on_failure) == (0.2, True)
        assert request.scheduled_at.ToDatetime(tzinfo=UTC) == datetime(2026, 12, 2, 17, 0, tzinfo=UTC)
        assert (request.deadline_s, request.max_retries, request.backoff_base_s) == (600, 5, 2.5)
        health = request.health
        assert (health.max_load_time_ratio, health.max_p95_latency_ratio, health.min_agreement) == (
            3,
            1.5,
            0.9,
        )
        assert (request.reason, request.org_id) == ("fox support", "acme")
        assert result.stdout.startswith("ro-1  digits 1.3.0 (mv-2)  running  3 servers in waves 1,2")

    def test_options_left_out_are_left_to_deploy_svcs_defaults(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        assert deploy_yard("deploy", "start", "mv-2", "--all", "--environment", "staging").exit_code == 0
        (request,) = deploy_svc.requests("StartRollout")
        assert (request.all_servers, request.environment, list(request.server_ids)) == (True, "staging", [])
        unset = ("failure_threshold", "deadline_s", "max_retries", "backoff_base_s", "scheduled_at")
        assert not any(request.HasField(name) for name in unset)
        assert not any(
            request.health.HasField(name)
            for name in ("max_load_time_ratio", "max_p95_latency_ratio", "min_agreement")
        )
        assert list(request.wave_sizes) == []

    @pytest.mark.parametrize(
        ("args", "said"),
        [
            ((), "--server S"),
            (("--server", "edge-1", "--all"), "not both"),
            (("--server", "edge-1", "--environment", "staging"), "--environment goes with --all"),
            (("--all", "--waves", "1,x"), "--waves takes sizes"),
            (("--all", "--waves", "0,2"), "at least one server"),
            (("--all", "--at", "tomorrow"), "--at takes an ISO 8601 time"),
        ],
    )
    def test_a_bad_request_is_refused_before_calling(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc, args: tuple[str, ...], said: str
    ) -> None:
        result = deploy_yard("deploy", "start", "mv-2", *args)
        assert result.exit_code == 2
        assert said in result.stderr
        assert deploy_svc.calls == []

    def test_a_refused_version_shows_the_servers_message_and_what_it_usually_means(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        message = "version mv-2 (digits 1.3.0) is approved but not released: only released versions deploy"
        deploy_svc.refusals["StartRollout"] = status_for(IllegalTransition(message))
        result = deploy_yard("deploy", "start", "mv-2", "--server", "edge-1")
        assert result.exit_code == 2
        lines = result.stderr.splitlines()
        assert lines[0] == f"error: FAILED_PRECONDITION: {message}"
        assert "released, not deprecated version" in lines[1]
        assert result.stdout == ""

    def test_wait_follows_the_rollout_to_its_end(self, deploy_yard: Yard, deploy_svc: FakeDeploySvc) -> None:
        deploy_svc.rollout_steps = [
            (rollout(), [deployment("edge-1", DOWNLOADING, phase="downloading", progress_percent=40)]),
            (
                _completed_rollout(),
                [deployment("edge-1", COMPLETED, phase="switching", progress_percent=100)],
            ),
        ]
        result = deploy_yard("deploy", "start", "mv-2", "--server", "edge-1", "--wait", *FAST)
        assert result.exit_code == 0, result.output
        assert "  edge-1: downloading 40%" in result.stdout
        assert "  edge-1: completed switching 100%" in result.stdout


class TestStatus:
    def test_a_bar_per_server_with_status_phase_retries_and_error(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        deploy_svc.rollout_steps = [
            (
                rollout(),
                [
                    deployment("edge-2", DOWNLOADING, wave=2, phase="downloading", progress_percent=50),
                    deployment(
                        "edge-1", FAILED, phase="verifying", error_message="bad signature", retry_count=1
                    ),
                ],
            )
        ]
        result = deploy_yard("deploy", "status", "ro-1")
        assert result.exit_code == 0, result.output
        assert [r.rollout_id for r in deploy_svc.requests("ListDeployments")] == ["ro-1"]
        servers = [row for row in table_rows(result.stdout) if row[0].startswith("edge-")]
        assert [(row[0], row[1], row[2], row[3], row[4], row[6], row[7]) for row in servers] == [
            ("edge-1", "1", "failed", "verifying", "0%", "1/3", "bad signature"),
            ("edge-2", "2", "downloading", "downloading", "50%", "0/3", "-"),
        ]
        assert "━" in result.stdout  # the bars
        waves = [row for row in table_rows(result.stdout) if row[0] in ("1", "2")]
        assert [row[-1] for row in waves] == ["running", "waiting"]

    def test_watch_polls_until_completed_and_exits_0(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        deploy_svc.rollout_steps = [
            (rollout(), [deployment("edge-1", PENDING)]),
            (rollout(), [deployment("edge-1", DOWNLOADING, phase="downloading", progress_percent=10)]),
            (rollout(), [deployment("edge-1", DOWNLOADING, phase="downloading", progress_percent=10)]),
            (_completed_rollout(), [deployment("edge-1", COMPLETED, progress_percent=100)]),
        ]
        result = deploy_yard("deploy", "status", "ro-1", "--watch", *FAST)
        assert result.exit_code == 0, result.output
        assert len(deploy_svc.requests("GetRollout")) == 4
        changes = [line for line in result.stdout.splitlines() if line.startswith("  edge-1:")]
        assert changes == [
            "  edge-1: pending 0%",
            "  edge-1: downloading 10%",
            "  edge-1: completed 100%",
        ]

    def test_a_halt_that_rolls_back_is_followed_to_the_rollback_and_exits_1(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        halt = "wave 1: 1 of 1 servers failed (100% > 0%): edge-1"
        rolling = rollout(deploy_pb2.ROLLOUT_STATE_HALTED, rollback_on_failure=True, halt_reason=halt)
        rolled_back = rollout(
            deploy_pb2.ROLLOUT_STATE_ROLLED_BACK, rollback_on_failure=True, halt_reason=halt
        )
        rolled_back.finished_at.GetCurrentTime()
        back = deployment("edge-2", PENDING, kind="rollback", deployment_id="dep-back", version_id="mv-1")
        deploy_svc.rollout_steps = [
            (rolling, [deployment("edge-1", FAILED, error_message="health gate: p95 3.1x > 1.5x")]),
            (rolled_back, [deployment("edge-1", FAILED), back]),
        ]
        result = deploy_yard("deploy", "status", "ro-1", "--watch", *FAST)
        assert result.exit_code == 1, result.output
        assert len(deploy_svc.requests("GetRollout")) == 2  # a halt with a rollback to come is not the end
        assert f"halted: {halt}" in result.stdout
        assert "  edge-1: failed 0%: health gate: p95 3.1x > 1.5x" in result.stdout
        assert "  edge-2 (rollback): pending 0%" in result.stdout

    def test_the_reason_a_completed_rollout_ended_is_its_outcome_not_a_halt(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        done = _completed_rollout()
        done.halt_reason = "every wave passed; 3 of 3 servers completed"
        deploy_svc.rollout_steps = [(done, [])]
        result = deploy_yard("deploy", "status", "ro-1", "--watch", *FAST)
        assert result.exit_code == 0, result.output
        assert "outcome: every wave passed; 3 of 3 servers completed" in result.stdout
        assert "halted" not in result.stdout

    def test_a_rollback_asked_after_the_rollout_finished_is_followed_to_its_end(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        rolling_back = _completed_rollout()
        rolling_back.state = deploy_pb2.ROLLOUT_STATE_ROLLING_BACK  # finished_at stays from the completion
        rolled_back = _completed_rollout()
        rolled_back.state = deploy_pb2.ROLLOUT_STATE_ROLLED_BACK
        back = deployment("edge-1", COMPLETED, kind="rollback", deployment_id="dep-back", version_id="mv-1")
        deploy_svc.rollout_steps = [(rolling_back, []), (rolled_back, [back])]
        result = deploy_yard("deploy", "status", "ro-1", "--watch", *FAST)
        assert result.exit_code == 1, result.output
        assert len(deploy_svc.requests("GetRollout")) == 2
        assert "  edge-1 (rollback): completed 0%" in result.stdout

    def test_watch_as_json_prints_a_line_per_change(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        deploy_svc.rollout_steps = [
            (rollout(), [deployment("edge-1", PENDING)]),
            (_completed_rollout(), [deployment("edge-1", COMPLETED, progress_percent=100)]),
        ]
        result = deploy_yard("--json", "deploy", "status", "ro-1", "--watch", *FAST)
        assert result.exit_code == 0, result.output
        kinds = [next(iter(json.loads(line))) for line in result.stdout.splitlines()]
        assert kinds == ["rollout", "deployment", "rollout", "deployment"]

    def test_an_unknown_rollout_is_refused(self, deploy_yard: Yard, deploy_svc: FakeDeploySvc) -> None:
        deploy_svc.refusals["GetRollout"] = status_for(NotFound("no rollout ro-9"))
        result = deploy_yard("deploy", "status", "ro-9", "--watch", *FAST)
        assert result.exit_code == 2
        assert result.stderr.splitlines()[0] == "error: NOT_FOUND: no rollout ro-9"


class TestCommands:
    def test_cancel_asks_first_and_a_no_cancels_nothing(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        result = deploy_yard("deploy", "cancel", "ro-1", "--reason", "wrong version", input="n\n")
        assert result.exit_code == 1
        assert "Cancel rollout ro-1?" in result.stderr
        assert deploy_svc.calls == []

    def test_cancel_confirmed_sends_the_reason(self, deploy_yard: Yard, deploy_svc: FakeDeploySvc) -> None:
        deploy_svc.rollout = rollout(deploy_pb2.ROLLOUT_STATE_CANCELLED)
        result = deploy_yard("deploy", "cancel", "ro-1", "--reason", "wrong version", input="y\n")
        assert result.exit_code == 0, result.output
        (request,) = deploy_svc.requests("CancelRollout")
        assert (request.rollout_id, request.reason) == ("ro-1", "wrong version")
        assert "cancelled" in result.stdout

    def test_cancel_of_one_deployment_with_yes(self, deploy_yard: Yard, deploy_svc: FakeDeploySvc) -> None:
        deploy_svc.deployment = deployment("edge-3", deploy_pb2.DEPLOYMENT_STATUS_CANCELLED)
        result = deploy_yard("deploy", "cancel", "--deployment", "dep-edge-3", "--reason", "offline", "--yes")
        assert result.exit_code == 0, result.output
        (request,) = deploy_svc.requests("CancelDeployment")
        assert (request.deployment_id, request.reason) == ("dep-edge-3", "offline")
        assert result.stdout.startswith("dep-edge-3  edge-3  digits 1.3.0 (mv-2)  cancelled")

    @pytest.mark.parametrize(
        ("args", "said"),
        [
            (("ro-1",), "--reason is required"),
            (("ro-1", "--deployment", "d", "--reason", "r"), "one of them"),
            (("--reason", "r"), "one of them"),
        ],
    )
    def test_cancel_needs_one_target_and_a_reason(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc, args: tuple[str, ...], said: str
    ) -> None:
        result = deploy_yard("deploy", "cancel", *args, "--yes")
        assert result.exit_code == 2
        assert said in result.stderr
        assert deploy_svc.calls == []

    def test_a_refused_cancel_exits_non_zero_with_the_message(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        deploy_svc.refusals["CancelRollout"] = status_for(IllegalTransition("rollout ro-1 has completed"))
        result = deploy_yard("deploy", "cancel", "ro-1", "--reason", "r", "--yes")
        assert result.exit_code == 2
        assert result.stderr.splitlines() == ["error: FAILED_PRECONDITION: rollout ro-1 has completed"]

    def test_retry_prints_the_new_attempt(self, deploy_yard: Yard, deploy_svc: FakeDeploySvc) -> None:
        deploy_svc.deployment = deployment("edge-1", PENDING, retry_count=2, attempt=3)
        result = deploy_yard("deploy", "retry", "dep-edge-1")
        assert result.exit_code == 0, result.output
        assert [r.deployment_id for r in deploy_svc.requests("RetryDeployment")] == ["dep-edge-1"]
        assert "retries 2/3" in result.stdout

    def test_rollback_needs_and_sends_a_reason(self, deploy_yard: Yard, deploy_svc: FakeDeploySvc) -> None:
        assert deploy_yard("deploy", "rollback", "ro-1").exit_code == 2
        deploy_svc.rollout = rollout(deploy_pb2.ROLLOUT_STATE_ROLLING_BACK)
        result = deploy_yard("deploy", "rollback", "ro-1", "--reason", "accuracy dropped")
        assert result.exit_code == 0, result.output
        (request,) = deploy_svc.requests("RollbackRollout")
        assert (request.rollout_id, request.reason) == ("ro-1", "accuracy dropped")
        assert "rolling back" in result.stdout

    def test_list_of_rollouts_by_version(self, deploy_yard: Yard, deploy_svc: FakeDeploySvc) -> None:
        result = deploy_yard("deploy", "list", "--version", "mv-2", "--org", "acme")
        assert result.exit_code == 0, result.output
        (request,) = deploy_svc.requests("ListRollouts")
        assert (request.version_id, request.org_id) == ("mv-2", "acme")
        assert table_rows(result.stdout)[0][:5] == ["ro-1", "digits 1.3.0 (mv-2)", "deploy", "running", "3"]

    def test_deployments_are_filtered_and_show_their_errors(
        self, deploy_yard: Yard, deploy_svc: FakeDeploySvc
    ) -> None:
        deploy_svc.deployment_pages = [[deployment("edge-1", FAILED, error_message="sha256 mismatch")]]
        result = deploy_yard(
            "deploy", "deployments", "--version", "mv-2", "--server", "edge-1", "--status", "failed"
        )
        assert result.exit_code == 0, result.output
        (request,) = deploy_svc.requests("ListDeployments")
        assert (request.version_id, request.server_id, list(request.statuses)) == (
            "mv-2",
            "edge-1",
            [FAILED],
        )
        (row,) = table_rows(result.stdout)
        assert (row[0], row[3], row[-1]) == ("dep-edge-1", "failed", "sha256 mismatch")


class TestEdgeAgent:
    @pytest.fixture
    def agent(self, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
        """A stand-in for modelyard_edge.cli whose main records its argv."""
        calls: list[list[str]] = []
        module = types.ModuleType("modelyard_edge.cli")

        def main(argv: list[str]) -> int:
            calls.append(argv)
            return 3

        module.main = main  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "modelyard_edge.cli", module)
        return calls

    def test_the_arguments_go_to_the_agent_as_they_are(
        self, offline_yard: Yard, agent: list[list[str]]
    ) -> None:
        result = offline_yard("edge-agent", "--server-id", "edge-1", "--org", "acme", "--help")
        assert agent == [["--server-id", "edge-1", "--org", "acme", "--help"]]
        assert result.exit_code == 3

    def test_an_agent_without_main_is_said(self, offline_yard: Yard, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "modelyard_edge.cli", types.ModuleType("modelyard_edge.cli"))
        result = offline_yard("edge-agent", "--server-id", "edge-1")
        assert result.exit_code == 2
        assert "has no main(argv)" in result.stderr


def _completed_rollout() -> deploy_pb2.Rollout:
    done = rollout(deploy_pb2.ROLLOUT_STATE_COMPLETED, current_wave=2)
    done.finished_at.GetCurrentTime()
    return done
