"""Connecting and failing: the bearer token, dev tokens, refused calls, unreachable servers, token mint."""

from __future__ import annotations

import json

import grpc
import pytest
from grpc import aio
from yard_fakes import FakeJobSvc
from yard_runner import TOKEN, Yard

from modelyard_cli.hyperparameters import BadHyperparameter, parse_param, parse_value
from modelyard_cli.rpc_errors import describe_rpc_error
from modelyard_events.domain_errors import InvalidArgument, NotFound
from modelyard_grpc import Role, status_for
from modelyard_grpc.testing import TEST_ISSUER, verifier_for


class TestCredentials:
    def test_the_bearer_token_travels_in_the_metadata(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        assert yard("jobs", "list").exit_code == 0
        assert job_svc.calls[0].metadata["authorization"] == f"Bearer {TOKEN}"

    def test_the_token_option_wins_over_the_environment(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        assert yard("--token", "from-option", "trainers").exit_code == 0
        assert job_svc.calls[0].metadata["authorization"] == "Bearer from-option"

    def test_a_dev_stack_secret_mints_a_super_admin_token(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        env = {
            "MODELYARD_TOKEN": None,
            "MODELYARD_TOKEN_SIGNING_KEY": TEST_ISSUER.private_text(),
            "MODELYARD_SUBJECT": "ada",
        }
        assert yard("--org", "acme", "jobs", "watch", "job-1", env=env).exit_code == 0
        token = job_svc.calls[0].metadata["authorization"].removeprefix("Bearer ")
        principal = verifier_for().verify(token)
        assert (principal.subject, principal.org_id, principal.roles) == (
            "ada",
            "acme",
            frozenset({Role.SUPER_ADMIN}),
        )

    def test_without_token_or_secret_it_says_what_to_set(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        result = yard("jobs", "list", env={"MODELYARD_TOKEN": None})
        assert result.exit_code == 2
        assert "MODELYARD_TOKEN" in result.stderr
        assert "MODELYARD_TOKEN_SIGNING_KEY" in result.stderr
        assert job_svc.calls == []


class TestRefusedCalls:
    def test_a_status_is_printed_with_its_name_and_exit_code_2(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.refusals["GetJob"] = status_for(NotFound("job job-9 not found"))
        result = yard("jobs", "show", "job-9")
        assert result.exit_code == 2
        assert result.stderr.splitlines() == ["error: NOT_FOUND: job job-9 not found"]
        assert "Traceback" not in result.output

    def test_field_violations_are_listed(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.refusals["CreateJob"] = status_for(InvalidArgument("priority", "must be 0..100, got 900"))
        args = (
            "--name",
            "n",
            "--module",
            "m",
            "--family",
            "f",
            "--dataset",
            "file:///d",
            "--priority",
            "900",
        )
        result = yard("jobs", "submit", *args)
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [
            "error: INVALID_ARGUMENT: priority: must be 0..100, got 900",
            "  priority: must be 0..100, got 900",
        ]

    def test_a_failure_during_a_watch_is_reported_the_same_way(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.refusals["WatchJob"] = status_for(NotFound("job job-9 not found"))
        result = yard("jobs", "watch", "job-9")
        assert result.exit_code == 2
        assert "error: NOT_FOUND: job job-9 not found" in result.stderr

    def test_an_unreachable_server_names_the_target_and_how_to_change_it(self, yard: Yard) -> None:
        result = yard("--target", "127.0.0.1:1", "jobs", "list")
        assert result.exit_code == 2
        assert "cannot reach job-svc at 127.0.0.1:1" in result.stderr
        assert "MODELYARD_JOB_SVC_TARGET" in result.stderr

    def test_unavailable_for_other_reasons_is_shown_as_a_status(self) -> None:
        busy = aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE, aio.Metadata(), aio.Metadata(), details="store busy"
        )
        assert describe_rpc_error(busy, "h:1") == ["error: UNAVAILABLE: store busy"]


class TestTokenMint:
    def test_prints_a_token_signed_with_the_secret(self, yard: Yard) -> None:
        args = (
            "token",
            "mint",
            "--subject",
            "trainer-a",
            "--role",
            "trainer",
            "--role",
            "auditor",
            "--ttl-s",
            "60",
        )
        result = yard(*args, env={"MODELYARD_TOKEN_SIGNING_KEY": TEST_ISSUER.private_text()})
        assert result.exit_code == 0, result.output
        principal = verifier_for().verify(result.stdout.strip())
        assert (principal.subject, principal.org_id) == ("trainer-a", None)
        assert principal.roles == {Role.TRAINER, Role.AUDITOR}

    def test_json_holds_the_token_and_its_claims(self, yard: Yard) -> None:
        result = yard("token", "mint", "--subject", "ada", "--role", "org_admin", "--org", "acme", "--json",
                      env={"MODELYARD_TOKEN_SIGNING_KEY": TEST_ISSUER.private_text()})  # fmt: skip
        document = json.loads(result.stdout)
        assert verifier_for().verify(document["token"]).org_id == "acme"

    def test_an_unknown_role_is_refused(self, yard: Yard) -> None:
        result = yard(
            "token",
            "mint",
            "--subject",
            "ada",
            "--role",
            "god",
            env={"MODELYARD_TOKEN_SIGNING_KEY": TEST_ISSUER.private_text()},
        )
        assert result.exit_code == 2
        assert "unknown role(s) god" in result.output

    def test_without_the_secret_it_says_what_to_set(self, yard: Yard) -> None:
        result = yard("token", "mint", "--subject", "ada", "--role", "super_admin")
        assert result.exit_code == 2
        assert "MODELYARD_TOKEN_SIGNING_KEY" in result.stderr


class TestHyperparameterValues:
    @pytest.mark.parametrize(
        ("text", "value"),
        [("0.01", 0.01), ("3", 3), ("true", True), ("[64, 32]", [64, 32]), ("adam", "adam"), ("", "")],
    )
    def test_values_are_json_when_they_parse_else_text(self, text: str, value: object) -> None:
        assert parse_value(text) == value

    def test_a_value_may_contain_an_equals_sign(self) -> None:
        assert parse_param("note=a=b") == ("note", "a=b")

    def test_a_key_is_required(self) -> None:
        with pytest.raises(BadHyperparameter):
            parse_param("=3")
