"""trainer-svc settings, from the environment only (this module is the one place that reads it)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from modelyard_artifacts.manifest import ManifestVerifier
from modelyard_events.kafka_security import KafkaSecurity
from modelyard_events.signing import public_key_from_text
from modelyard_events.trust import EventTrustSettings
from modelyard_grpc import GrpcSettings


def default_trainer_id() -> str:
    """`<hostname>-<pid>`: unique per process on a host, readable in logs and heartbeats."""
    return f"{socket.gethostname()}-{os.getpid()}"


class TrainerSettings(GrpcSettings, EventTrustSettings):
    """DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and MODELYARD_* (see services/trainer-svc/README.md)."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore", populate_by_name=True)

    token_audience: str = "trainer-svc"  # bearer tokens must name this service in `aud`

    # serve only (the trainer store); workers report through trainer-svc and hold no database URL.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "MODELYARD_DATABASE_URL")
    )
    kafka_bootstrap_servers: str = Field(
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "MODELYARD_KAFKA_BOOTSTRAP_SERVERS")
    )
    kafka_security: KafkaSecurity = Field(default_factory=KafkaSecurity)  # MODELYARD_KAFKA_* (SASL/SSL)
    job_svc_target: str = "127.0.0.1:50051"  # job-svc's gRPC: heartbeats (work), whose a dispatch is (serve)
    dataset_svc_target: str = "127.0.0.1:50053"  # dataset-svc's gRPC, to fetch dataset:// versions (work)
    trainer_svc_target: str = "127.0.0.1:50052"  # trainer-svc's gRPC, to append reports (work)
    registry_svc_target: str = "127.0.0.1:50054"  # registry-svc's gRPC, to fetch model versions (work)
    # The registry's Ed25519 public keys (JSON list): a fine-tuning base's signed manifest must verify.
    registry_public_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trainer_id: str = Field(default_factory=default_trainer_id, min_length=1)
    trainer_slots: int = Field(default=1, ge=1, le=64)  # job-svc refuses heartbeats claiming more
    # Shared by every trainer of a deployment (a volume in k8s): another trainer resumes from its checkpoints.
    trainer_root: Path = Path(".modelyard/runs")
    trainer_device: Literal["auto", "cpu", "cuda"] = "auto"
    # Off: a dispatch naming a file:// dataset fails its run; development and tests turn it on.
    allow_file_datasets: bool = False
    # What the worker's runs may take to load their data, shared equally by its slots (8 GiB).
    trainer_memory_budget_bytes: int = Field(default=8 * 1024**3, gt=0)
    progress_interval_s: float = Field(default=1.0, gt=0)
    # A dataset download that sends nothing for this long fails its run (it has hung).
    download_stall_timeout_s: float = Field(default=60.0, gt=0)
    # A training thread that says nothing (no phase, progress, epoch or log line) for this long is
    # taken as hung: the worker writes why into the run's logs and exits (worker/stalls.py). Above
    # the longest silent stretch a healthy run has: loading its data or its checkpoint, one step, an
    # epoch's validation and checkpoint write, the artifact write, a whole evaluation; 0: no watch.
    training_stall_timeout_s: float = Field(default=1800.0, ge=0)
    # Touched by a worker's loop every few seconds, for an exec liveness probe (worker/liveness.py).
    trainer_liveness_file: Path | None = None
    trainer_grpc_port: int = Field(default=50052, ge=0, le=65535)
    trainer_store_schema: str = "trainer"
    topic_namespace: str = "modelyard"  # topics are <namespace>.<service>.events

    @field_validator("trainer_root")
    @classmethod
    def _absolute(cls, root: Path) -> Path:
        return root.expanduser().absolute()

    @field_validator("registry_public_keys", mode="before")
    @classmethod
    def _key_list(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value) if value.strip() else []
        except json.JSONDecodeError as error:
            raise ValueError(f'a JSON list of public keys, e.g. ["<key>"] ({error})') from None

    @field_validator("registry_public_keys")
    @classmethod
    def _registry_keys(cls, keys: list[str]) -> list[str]:
        for text in keys:
            # SigningKeyError (a ValueError) says what is wrong with it
            public_key_from_text(text, "MODELYARD_REGISTRY_PUBLIC_KEYS: a key")
        return keys

    def serve_problems(self) -> list[str]:
        """What `serve` lacks to run: the store's DATABASE_URL, the log's signing key, its own token."""
        problems = []
        if self.database_url is None:
            problems.append("DATABASE_URL is required by serve (the trainer store; workers do without it)")
        if self.event_signing_key is None:
            problems.append("MODELYARD_EVENT_SIGNING_KEY is required by serve (it signs the trainer log)")
        if self.token_file is None:
            problems.append(
                "MODELYARD_TOKEN_FILE is required by serve (its own auditor token for job-svc, which "
                "says whose a dispatch is before the dispatch's first report is stored)"
            )
        return problems

    @property
    def store_url(self) -> str:
        """DATABASE_URL, for serve (which refuses to start without it: `serve_problems`)."""
        if self.database_url is None:
            raise ValueError("DATABASE_URL is not set: only the serve process opens the trainer store")
        return self.database_url

    @property
    def device(self) -> str | None:
        """The TrainingSpec device: None lets the engine pick CUDA when present (`auto`)."""
        return None if self.trainer_device == "auto" else self.trainer_device

    @property
    def dataset_cache(self) -> Path:
        """Where fetched dataset versions are kept: shared by the runs (and trainers) of one root."""
        return self.trainer_root / "dataset-cache"

    @property
    def model_cache(self) -> Path:
        """Where fetched model versions are kept, named by SHA-256: shared like the dataset cache."""
        return self.trainer_root / "model-cache"

    @property
    def model_staging(self) -> Path:
        """This worker's own folder for model downloads in progress (renamed into `model_cache`)."""
        return self.model_cache / "incoming" / quote(self.trainer_id, safe="")

    def manifest_verifier(self) -> ManifestVerifier | None:
        """What checks a fine-tuning base's signed manifest; None when no registry key is pinned."""
        return ManifestVerifier.from_texts(self.registry_public_keys) if self.registry_public_keys else None

    @property
    def run_memory_budget_bytes(self) -> int:
        """One run's share of the worker's memory budget (a dataset version needing more is refused)."""
        return self.trainer_memory_budget_bytes // self.trainer_slots

    def workdir(self, job_id: str, attempt: int, dispatch_id: str) -> Path:
        """Where the run of one dispatch writes its checkpoints and artifact.

        A folder per dispatch, not per attempt: a worker wrongly presumed dead keeps writing into
        its own folder and never over the checkpoints of the worker that took the job over.
        """
        return self.trainer_root / job_id / f"attempt-{attempt}" / dispatch_id
