"""yard's model commands (list, show, evaluate, approve, reject, release, deprecate, rollback, renumber)
end to end against the fake registry-svc, and how they connect."""

from __future__ import annotations

import json
import socket

import pytest
from registry_fakes import FakeRegistrySvc, evaluation, model_version, released_version
from yard_runner import TOKEN, Yard

from modelyard.v1 import registry_pb2
from modelyard_events.domain_errors import IllegalTransition, PermissionDenied, QuotaExceeded
from modelyard_grpc import status_for


def table_rows(text: str) -> list[list[str]]:
    """The cells of each body row of the rendered tables in `text`."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]


def detail(text: str, label: str) -> str:
    """The value of the details grid's row `label` (the first such row)."""
    for line in text.splitlines():
        if line.startswith(label + "  "):
            return line.removeprefix(label).strip()
    raise AssertionError(f"no row {label!r} in:\n{text}")


class TestConnecting:
    def test_the_bearer_token_travels_to_registry_svc(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        assert registry_yard("models", "show", "mv-1").exit_code == 0
        assert registry_svc.calls[0].metadata["authorization"] == f"Bearer {TOKEN}"

    def test_the_registry_target_option_wins_over_the_environment(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        env = {"MODELYARD_REGISTRY_SVC_TARGET": "127.0.0.1:1"}
        result = registry_yard("--registry-target", registry_svc.target, "models", "show", "mv-1", env=env)
        assert result.exit_code == 0, result.output

    def test_an_unreachable_registry_says_where_to_point_yard(self, registry_yard: Yard) -> None:
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        result = registry_yard("models", "list", env={"MODELYARD_REGISTRY_SVC_TARGET": f"127.0.0.1:{port}"})
        assert result.exit_code == 2
        assert f"cannot reach registry-svc at 127.0.0.1:{port}" in result.stderr
        assert "--registry-target or MODELYARD_REGISTRY_SVC_TARGET" in result.stderr


class TestList:
    def test_filters_are_sent(self, registry_yard: Yard, registry_svc: FakeRegistrySvc) -> None:
        args = ("--org", "acme", "--module", "digits", "--status", "approved", "--status", "released")
        result = registry_yard("models", "list", *args)
        assert result.exit_code == 0, result.output
        (request,) = registry_svc.requests("ListVersions")
        assert list(request.statuses) == [
            registry_pb2.MODEL_STATUS_APPROVED,
            registry_pb2.MODEL_STATUS_RELEASED,
        ]
        assert (request.org_id, request.ai_module, request.page_size) == ("acme", "digits", 50)

    def test_a_row_per_version_with_status_figures_people_and_environments(self, registry_yard: Yard) -> None:
        rows = table_rows(registry_yard("models", "list").stdout)
        assert rows == [
            ["mv-1", "digits", "1.2.0", "released", "95.7%", "0.9499", "ada", "bob", "production"],
            ["mv-2", "digits", "1.2.0", "draft", "-", "-", "ada", "-", "-"],
        ]

    def test_all_follows_every_page(self, registry_yard: Yard, registry_svc: FakeRegistrySvc) -> None:
        registry_svc.version_pages = [[model_version("mv-1")], [model_version("mv-2")]]
        result = registry_yard("models", "list", "--all")
        assert [r.page_token for r in registry_svc.requests("ListVersions")] == ["", "1"]
        assert [row[0] for row in table_rows(result.stdout)] == ["mv-1", "mv-2"]

    def test_limit_stops_paging_and_says_there_is_more(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        registry_svc.version_pages = [[model_version("mv-1")], [model_version("mv-2")]]
        result = registry_yard("models", "list", "--limit", "1")
        assert [r.page_size for r in registry_svc.requests("ListVersions")] == [1]
        assert "mv-2" not in result.stdout
        assert "--all" in result.stderr

    def test_json_is_one_document_with_every_version(self, registry_yard: Yard) -> None:
        document = json.loads(registry_yard("--json", "models", "list").stdout)
        assert [(v["version_id"], v["status"]) for v in document["versions"]] == [
            ("mv-1", "MODEL_STATUS_RELEASED"),
            ("mv-2", "MODEL_STATUS_DRAFT"),
        ]

    def test_an_unknown_status_is_a_usage_error(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        result = registry_yard("models", "list", "--status", "shipped")
        assert result.exit_code == 2
        assert registry_svc.calls == []


class TestShow:
    def test_every_field_of_a_released_version(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        registry_svc.version = released_version()
        result = registry_yard("models", "show", "mv-1")
        assert result.exit_code == 0, result.output
        out = result.stdout
        assert registry_svc.requests("GetVersion")[0].version_id == "mv-1"
        assert detail(out, "module") == "digits"
        assert detail(out, "number") == "1.2.0 (minor: new class fox)"
        assert detail(out, "training job") == "job-3"
        assert detail(out, "base version") == "mv-0"
        assert detail(out, "artifact sha256") == "ab" * 32
        assert detail(out, "artifact size") == "2.5 MB"
        assert detail(out, "family") == "image_classifier"
        assert detail(out, "input shape") == "28×28×1"
        assert detail(out, "classes") == "3: cat, dog, fox"
        assert detail(out, "dataset") == "dataset://ds-1/2"
        assert detail(out, "dataset manifest") == "dd" * 32
        assert detail(out, "training metrics") == "val_accuracy=0.9500 val_loss=0.1250"
        assert detail(out, "approval") == "by bob at 2026-01-02 12:00:01Z"
        assert detail(out, "release") == "production (released 2026-01-03 00:26:40Z)"
        assert detail(out, "release notes") == "adds foxes"
        assert detail(out, "min edge version") == "0.4.0"
        assert detail(out, "platforms") == "linux/amd64, linux/arm64"

    def test_the_evaluation_its_figures_per_class_table_and_confusion_matrix(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        registry_svc.version = released_version()
        out = registry_yard("models", "show", "mv-1").stdout
        assert detail(out, "requested by") == "carol"
        assert detail(out, "on") == "dataset://ds-1/2 (test split)"
        assert detail(out, "device") == "cuda:0 (NVIDIA H200)"
        assert detail(out, "accuracy") == "95.7%"
        assert detail(out, "precision / recall / F1") == "0.9512 / 0.9488 / 0.9499"
        assert detail(out, "latency") == "p50 1.25 ms · p95 3.50 ms"
        rows = table_rows(out)
        assert ["dog", "0.9300", "0.9600", "0.9448", "120"] in rows  # per class
        assert ["fox", "2", "3", "75"] in rows  # confusion: true fox, predicted cat / dog / fox
        assert "true \\ predicted" in out

    def test_the_gates_as_judged_at_approval(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        failing = registry_pb2.GateResult(gate="f1", threshold=0.97, measured=0.9499, passed=False)
        registry_svc.version = released_version(gates=[*released_version().gates, failing])
        rows = table_rows(registry_yard("models", "show", "mv-1").stdout)
        assert ["✓", "accuracy", "0.9000", "0.9567"] in rows
        assert ["✗", "f1", "0.9700", "0.9499"] in rows

    def test_a_pending_evaluation_and_the_status_reason(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        registry_svc.version = model_version(
            status=registry_pb2.MODEL_STATUS_DRAFT, status_reason="rejected by bob: too slow",
            evaluation=evaluation(finished=False),
        )  # fmt: skip
        out = registry_yard("models", "show", "mv-1").stdout
        assert detail(out, "status") == "draft: rejected by bob: too slow"
        assert detail(out, "result") == "pending: the evaluation run has not finished"
        assert detail(out, "approval") == "not approved"
        assert "confusion matrix" not in out

    def test_json_is_the_version(self, registry_yard: Yard, registry_svc: FakeRegistrySvc) -> None:
        registry_svc.version = released_version()
        document = json.loads(registry_yard("models", "show", "mv-1", "--json").stdout)
        assert (document["version_id"], document["approved_by"]) == ("mv-1", "bob")
        assert document["evaluation"]["confusion"][2]["counts"] == ["2", "3", "75"]


class TestLifecycleCommands:
    def test_evaluate_sends_the_dataset_and_split_and_shows_the_pending_run(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        registry_svc.version = model_version(
            status=registry_pb2.MODEL_STATUS_TESTING, evaluation=evaluation(finished=False)
        )
        result = registry_yard(
            "models", "evaluate", "mv-1", "--dataset", "dataset://ds-9/1", "--split", "test"
        )
        assert result.exit_code == 0, result.output
        (request,) = registry_svc.requests("EvaluateVersion")
        assert (request.version_id, request.dataset_uri, request.split) == (
            "mv-1",
            "dataset://ds-9/1",
            "test",
        )
        assert result.stdout.strip() == (
            "mv-1  digits 1.2.0  testing  evaluation ev-1 on dataset://ds-1/2 (test split) pending"
        )

    def test_evaluate_leaves_dataset_and_split_to_the_server(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        assert registry_yard("models", "evaluate", "mv-1").exit_code == 0
        (request,) = registry_svc.requests("EvaluateVersion")
        assert (request.dataset_uri, request.split) == ("", "")

    def test_approve_prints_the_approver(self, registry_yard: Yard, registry_svc: FakeRegistrySvc) -> None:
        registry_svc.version = released_version(status=registry_pb2.MODEL_STATUS_APPROVED, environments=[])
        result = registry_yard("models", "approve", "mv-1")
        assert result.exit_code == 0, result.output
        assert registry_svc.requests("ApproveVersion")[0].version_id == "mv-1"
        assert result.stdout.strip() == "mv-1  digits 1.2.0  approved  approved by bob"

    def test_a_four_eyes_refusal_shows_the_servers_message_and_what_approval_needs(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        message = "ada created training job job-3 of digits 1.2.0 and cannot approve it (four eyes)"
        registry_svc.refusals["ApproveVersion"] = status_for(PermissionDenied(message))
        result = registry_yard("models", "approve", "mv-1")
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [
            f"error: PERMISSION_DENIED: {message}",
            "approval needs a super admin who neither created the training job nor requested the evaluation",
        ]

    def test_a_failed_gate_refusal_shows_the_servers_message_and_where_to_look(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        message = "version 1.2.0 does not pass its module's gates (accuracy 0.8100 < 0.9000)"
        registry_svc.refusals["ApproveVersion"] = status_for(IllegalTransition(message))
        result = registry_yard("models", "approve", "mv-1")
        assert result.exit_code == 2
        lines = result.stderr.splitlines()
        assert lines[0] == f"error: FAILED_PRECONDITION: {message}"
        assert "yard models show VERSION_ID" in lines[1]

    def test_reject_needs_a_reason(self, registry_yard: Yard, registry_svc: FakeRegistrySvc) -> None:
        assert registry_yard("models", "reject", "mv-1").exit_code == 2
        assert registry_svc.calls == []
        assert registry_yard("models", "reject", "mv-1", "--reason", "too slow").exit_code == 0
        assert registry_svc.requests("RejectVersion")[0].reason == "too slow"

    def test_release_sends_notes_to_production_and_prints_where(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        registry_svc.version = released_version()
        result = registry_yard("models", "release", "mv-1", "--notes", "adds foxes")
        assert result.exit_code == 0, result.output
        (request,) = registry_svc.requests("ReleaseVersion")
        assert (request.version_id, request.environment, request.release_notes) == (
            "mv-1",
            "production",
            "adds foxes",
        )
        assert (
            result.stdout.strip() == "mv-1  digits 1.2.0  released  approved by bob  released in production"
        )

    def test_release_to_another_environment(self, registry_yard: Yard, registry_svc: FakeRegistrySvc) -> None:
        assert registry_yard("models", "release", "mv-1", "--notes", "n", "--env", "staging").exit_code == 0
        assert registry_svc.requests("ReleaseVersion")[0].environment == "staging"

    def test_a_plan_limit_refusal_shows_the_message_and_how_to_free_a_place(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        message = "module digits already has 3 active versions; the plan's limit is 3: deprecate one first"
        registry_svc.refusals["ReleaseVersion"] = status_for(QuotaExceeded(message))
        result = registry_yard("models", "release", "mv-1", "--notes", "n")
        assert result.exit_code == 2
        lines = result.stderr.splitlines()
        assert lines[0] == f"error: RESOURCE_EXHAUSTED: {message}"
        assert "yard models deprecate" in lines[1]

    def test_deprecate_sends_the_reason_and_prints_it(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        registry_svc.version = released_version(
            status=registry_pb2.MODEL_STATUS_DEPRECATED, environments=[], status_reason="drifts at night"
        )
        result = registry_yard("models", "deprecate", "mv-1", "--reason", "drifts at night")
        assert registry_svc.requests("DeprecateVersion")[0].reason == "drifts at night"
        assert result.stdout.strip() == "mv-1  digits 1.2.0  deprecated  approved by bob  (drifts at night)"

    def test_rollback_prints_the_version_released_and_the_one_deprecated(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        registry_svc.rollback = registry_pb2.RollbackResponse(
            released=released_version("mv-0", semantic_version="1.1.0"),
            deprecated=released_version(
                status=registry_pb2.MODEL_STATUS_DEPRECATED, environments=[], status_reason="rolled back"
            ),
        )
        result = registry_yard("models", "rollback", "mv-0", "--reason", "regression")
        assert result.exit_code == 0, result.output
        (request,) = registry_svc.requests("RollbackVersion")
        assert (request.target_version_id, request.environment, request.reason) == (
            "mv-0",
            "production",
            "regression",
        )
        assert result.stdout.splitlines() == [
            "released:   mv-0  digits 1.1.0  released  approved by bob  released in production",
            "deprecated: mv-1  digits 1.2.0  deprecated  approved by bob  (rolled back)",
        ]

    def test_rollback_json_holds_both_versions(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        registry_svc.rollback = registry_pb2.RollbackResponse(
            released=released_version("mv-0"), deprecated=model_version("mv-1")
        )
        document = json.loads(registry_yard("--json", "models", "rollback", "mv-0", "--reason", "r").stdout)
        assert (document["released"]["version_id"], document["deprecated"]["version_id"]) == ("mv-0", "mv-1")

    def test_renumber_sends_the_new_number(self, registry_yard: Yard, registry_svc: FakeRegistrySvc) -> None:
        registry_svc.version = model_version(semantic_version="2.0.0")
        result = registry_yard("models", "renumber", "mv-1", "2.0.0", "--reason", "breaking input change")
        (request,) = registry_svc.requests("RenumberVersion")
        assert (request.version_id, request.semantic_version, request.reason) == (
            "mv-1",
            "2.0.0",
            "breaking input change",
        )
        assert result.stdout.strip() == "mv-1  digits 2.0.0  draft"

    @pytest.mark.parametrize(
        "args",
        [
            ("approve", "mv-1"),
            ("deprecate", "mv-1", "--reason", "r"),
            ("renumber", "mv-1", "2.0.0", "--reason", "r"),
            ("evaluate", "mv-1"),
        ],
    )
    def test_json_prints_the_version(self, registry_yard: Yard, args: tuple[str, ...]) -> None:
        result = registry_yard("models", *args, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["version_id"] == "mv-1"

    def test_a_refusal_with_json_still_goes_to_stderr(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc
    ) -> None:
        registry_svc.refusals["DeprecateVersion"] = status_for(IllegalTransition("deprecated is final"))
        result = registry_yard("--json", "models", "deprecate", "mv-1", "--reason", "r")
        assert (result.exit_code, result.stdout) == (2, "")
        assert result.stderr.startswith("error: FAILED_PRECONDITION: deprecated is final")
