"""Settings from the environment, the spec a dispatch becomes, the trainer's token and API policy."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from pydantic import ValidationError
from trainer_registry_fake import REGISTRY_KEY
from worker_samples import dispatch_of, settings_for

from modelyard_events.schemas.hyperparameters import HyperparameterError, ImageClassifierHyperparameters
from modelyard_grpc import mint_token
from modelyard_grpc.auth import Role
from modelyard_grpc.testing import TEST_ISSUER, TEST_TOKEN_PUBLIC_KEYS, verifier_for
from modelyard_trainer.config import TrainerSettings
from modelyard_trainer.grpc_api import SERVICES, TRAINER_POLICY
from modelyard_trainer.worker.spec import path_of_file_uri, training_spec

REQUIRED = {
    "DATABASE_URL": "postgresql://db/modelyard",
    "KAFKA_BOOTSTRAP_SERVERS": "broker:9092",
    "MODELYARD_TOKEN_PUBLIC_KEYS": TEST_TOKEN_PUBLIC_KEYS,
}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Only the required variables set; every optional one removed."""
    for name in list(os.environ):
        if name.startswith("MODELYARD_") or name in REQUIRED:
            monkeypatch.delenv(name)
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


class TestSettings:
    def test_unprefixed_servers_and_defaults(self, environment: pytest.MonkeyPatch) -> None:
        settings = TrainerSettings()

        assert settings.database_url == "postgresql://db/modelyard"
        assert settings.kafka_bootstrap_servers == "broker:9092"
        assert settings.trainer_id == f"{socket.gethostname()}-{os.getpid()}"
        assert (settings.trainer_slots, settings.trainer_grpc_port, settings.progress_interval_s) == (
            1,
            50052,
            1.0,
        )
        assert settings.trainer_root == Path.cwd() / ".modelyard" / "runs"
        assert settings.device is None  # auto: the engine picks CUDA when present
        assert settings.allow_file_datasets is False  # a dispatch naming a file:// dataset fails
        assert settings.run_memory_budget_bytes == 8 * 1024**3  # one slot: the whole budget
        assert (settings.registry_svc_target, settings.registry_public_keys) == ("127.0.0.1:50054", [])
        assert settings.manifest_verifier() is None  # fine-tuning runs then fail, saying what to pin

    def test_every_trainer_variable_is_read(self, environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
        for name, value in {
            "MODELYARD_JOB_SVC_TARGET": "job-svc:50051",
            "MODELYARD_TRAINER_ID": "gpu-box-1",
            "MODELYARD_TRAINER_SLOTS": "4",
            "MODELYARD_TRAINER_ROOT": str(tmp_path / "runs"),
            "MODELYARD_TRAINER_DEVICE": "cuda",
            "MODELYARD_PROGRESS_INTERVAL_S": "0.5",
            "MODELYARD_TRAINER_GRPC_PORT": "6000",
            "MODELYARD_ALLOW_FILE_DATASETS": "true",
            "MODELYARD_TRAINER_MEMORY_BUDGET_BYTES": "16000000000",
            "MODELYARD_REGISTRY_SVC_TARGET": "registry-svc:50054",
            "MODELYARD_REGISTRY_PUBLIC_KEYS": json.dumps([REGISTRY_KEY.public_text()]),
        }.items():
            environment.setenv(name, value)

        settings = TrainerSettings()

        assert (settings.job_svc_target, settings.trainer_id, settings.trainer_slots) == (
            "job-svc:50051",
            "gpu-box-1",
            4,
        )
        assert settings.workdir("job-1", 2, "d-7") == tmp_path / "runs" / "job-1" / "attempt-2" / "d-7"
        assert (settings.device, settings.progress_interval_s, settings.trainer_grpc_port) == (
            "cuda",
            0.5,
            6000,
        )
        assert settings.allow_file_datasets is True
        assert settings.run_memory_budget_bytes == 4_000_000_000  # 16 GB over 4 slots
        assert settings.registry_svc_target == "registry-svc:50054"
        assert settings.registry_public_keys == [REGISTRY_KEY.public_text()]
        assert settings.manifest_verifier() is not None

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("MODELYARD_TRAINER_SLOTS", "0"),
            ("MODELYARD_TRAINER_SLOTS", "65"),  # job-svc would refuse its heartbeats
            ("MODELYARD_TRAINER_DEVICE", "tpu"),
            ("MODELYARD_TOKEN_PUBLIC_KEYS", "not json"),
            ("MODELYARD_TOKEN_PUBLIC_KEYS", '["c2hvcnQ"]'),  # not a 32-byte key
            ("MODELYARD_REGISTRY_PUBLIC_KEYS", "not json"),
            ("MODELYARD_REGISTRY_PUBLIC_KEYS", '["c2hvcnQ"]'),
            ("MODELYARD_REGISTRY_PUBLIC_KEYS", '"one key, not a list"'),
        ],
    )
    def test_bad_values_are_refused(self, environment: pytest.MonkeyPatch, name: str, value: str) -> None:
        environment.setenv(name, value)

        with pytest.raises(ValidationError):
            TrainerSettings()

    def test_a_malformed_registry_key_is_refused_naming_the_variable(
        self, environment: pytest.MonkeyPatch
    ) -> None:
        environment.setenv("MODELYARD_REGISTRY_PUBLIC_KEYS", '["c2hvcnQ"]')

        with pytest.raises(ValidationError, match="MODELYARD_REGISTRY_PUBLIC_KEYS: a key must be 32 bytes"):
            TrainerSettings()

    def test_a_worker_needs_no_database_url_and_no_signing_key(self, environment: pytest.MonkeyPatch) -> None:
        environment.delenv("DATABASE_URL")
        environment.setenv("MODELYARD_TRAINER_SVC_TARGET", "trainer-svc:50052")

        settings = TrainerSettings()

        assert (settings.database_url, settings.event_signing_key) == (None, None)
        assert settings.trainer_svc_target == "trainer-svc:50052"
        assert len(settings.serve_problems()) == 3  # serve needs both, and its own token


class TestTrainingSpec:
    def test_a_dispatch_becomes_a_spec_in_a_workdir_of_its_own(self, tmp_path: Path) -> None:
        settings = settings_for(tmp_path, progress_interval_s=2.0)
        dispatch = dispatch_of(
            "job-1", attempt=3, dispatch_id="d-9", hyperparameters={"epochs": 2, "channels": 8}
        )

        spec = training_spec(dispatch, settings)

        assert (spec.job_id, spec.attempt, spec.family) == ("job-1", 3, "image_classifier")
        assert spec.hyperparameters == ImageClassifierHyperparameters(epochs=2, channels=8)
        assert spec.workdir == tmp_path / "job-1" / "attempt-3" / "d-9"
        assert (spec.resume_from, spec.device, spec.progress_interval_s) == (None, "cpu", 2.0)
        assert spec.base_artifact is None

    def test_a_fine_tuning_dispatch_starts_from_the_fetched_base(self, tmp_path: Path) -> None:
        base = tmp_path / "model-cache" / "ab.pt"

        spec = training_spec(dispatch_of(), settings_for(tmp_path), base_artifact=base)

        assert spec.base_artifact == base

    def test_a_dispatch_with_a_checkpoint_resumes_from_that_file(self, tmp_path: Path) -> None:
        checkpoint = tmp_path / "job-1" / "attempt-1" / "d-1" / "checkpoints" / "epoch 1.pt"
        dispatch = dispatch_of(dispatch_id="d-2", checkpoint_uri=checkpoint.as_uri())

        spec = training_spec(dispatch, settings_for(tmp_path))

        assert spec.resume_from == checkpoint
        assert spec.workdir == tmp_path / "job-1" / "attempt-1" / "d-2"  # never the folder it resumes from

    def test_hyperparameters_that_do_not_fit_the_family_are_refused(self, tmp_path: Path) -> None:
        with pytest.raises(HyperparameterError, match="learning_rate"):
            training_spec(dispatch_of(hyperparameters={"learning_rate": 0.1}), settings_for(tmp_path))

    @pytest.mark.parametrize("uri", ["s3://bucket/ckpt.pt", "file://other-host/ckpt.pt"])
    def test_a_checkpoint_that_is_not_a_local_file_is_refused(self, uri: str) -> None:
        with pytest.raises(ValueError, match="not a local file"):
            path_of_file_uri(uri)

    @pytest.mark.parametrize("job_id", ["..", "a/../../etc", ""])
    def test_a_job_id_that_would_leave_the_run_root_is_refused(self, tmp_path: Path, job_id: str) -> None:
        with pytest.raises(ValueError, match="cannot name a directory"):
            training_spec(dispatch_of(job_id=job_id), settings_for(tmp_path))

    @pytest.mark.parametrize("dispatch_id", ["..", "d/../../../etc"])
    def test_a_dispatch_id_that_would_leave_the_run_root_is_refused(
        self, tmp_path: Path, dispatch_id: str
    ) -> None:
        with pytest.raises(ValueError, match="cannot name a directory"):
            training_spec(dispatch_of(dispatch_id=dispatch_id), settings_for(tmp_path))


def test_a_worker_calls_with_the_token_its_issuer_writes_and_holds_no_key_to_mint_one(tmp_path: Path) -> None:
    path = tmp_path / "trainer-a.token"
    path.write_text(mint_token(TEST_ISSUER, "trainer-a", None, [Role.TRAINER], ttl_s=600))
    settings = settings_for(tmp_path, token_file=path)

    principal = verifier_for("job-svc").verify(settings.own_token()())

    assert (principal.subject, principal.roles) == ("trainer-a", frozenset({Role.TRAINER}))
    assert not any("signing" in name and "token" in name for name in TrainerSettings.model_fields)
    with pytest.raises(ValueError, match="MODELYARD_TOKEN_FILE is not set"):
        settings_for(tmp_path, token_file=None).own_token()


def test_the_access_policy_covers_every_served_rpc() -> None:
    assert TRAINER_POLICY.coverage_problems(SERVICES) == []
