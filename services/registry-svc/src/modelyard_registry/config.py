"""registry-svc settings, from the environment only (docs/registry.md, "Running registry-svc")."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from modelyard_blobs.factory import BlobStoreChoice
from modelyard_events.kafka_security import KafkaSecurity
from modelyard_events.plans import PlanChoice
from modelyard_events.signing import Ed25519Key, SigningKeyError
from modelyard_events.trust import EventTrustSettings
from modelyard_grpc import GrpcSettings
from modelyard_registry.domain.gates import Gate


class RegistrySettings(GrpcSettings, PlanChoice, EventTrustSettings, BlobStoreChoice):
    """DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and MODELYARD_* (see docs/registry.md)."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore", populate_by_name=True)

    token_audience: str = "registry-svc"  # bearer tokens must name this service in `aud`

    database_url: str = Field(validation_alias=AliasChoices("DATABASE_URL", "MODELYARD_DATABASE_URL"))
    kafka_bootstrap_servers: str = Field(
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "MODELYARD_KAFKA_BOOTSTRAP_SERVERS")
    )
    kafka_security: KafkaSecurity = Field(default_factory=KafkaSecurity)  # MODELYARD_KAFKA_* (SASL/SSL)
    registry_grpc_port: int = Field(default=50054, ge=0, le=65535)
    registry_http_port: int = Field(default=50055, ge=0, le=65535)  # signed artifact downloads
    registry_http_bind: str = "0.0.0.0"
    # How clients reach the download endpoint (the Service/Ingress address in a cluster).
    registry_public_url: str = "http://127.0.0.1:50055"
    job_svc_target: str = "127.0.0.1:50051"  # job-svc's ReadEvents, to heal gaps in its topic
    store_schema: str = "registry"
    views_schema: str = "registry_views"
    reactions_schema: str = "registry_reactions"
    topic_namespace: str = "modelyard"
    # The registry's own blob store (content-addressed artifacts and configs).
    blob_root: Path = Path(".modelyard/registry-blobs")  # its own store (blob settings: BlobStoreChoice)
    s3_prefix: str = "modelyard/registry"
    # Where trainers leave finished artifacts (a volume shared with the trainers); nothing outside
    # these folders is ever read, whatever a JobCompleted says.
    artifact_roots: list[Path] = Field(default_factory=lambda: [Path(".modelyard/runs")])
    max_artifact_bytes: int = Field(default=4 * 10**9, gt=0)
    # The Ed25519 key that signs artifact manifests and download URLs (edges pin its public key).
    registry_signing_key: SecretStr | None = None
    # Earlier public keys still accepted on download URLs during a rotation (JSON list).
    registry_previous_public_keys: list[str] = Field(default_factory=list)
    download_url_ttl_s: int = Field(default=900, ge=1, le=86400)
    # Per-module metric gates, JSON (domain/gates.py): {"digits": [{"metric": "f1", "min": 0.9}], "*": [...]}
    registry_gates: dict[str, list[Gate]] = Field(default_factory=dict)
    min_edge_version: str = "1.0.0"
    supported_platforms: list[str] = Field(default_factory=lambda: ["linux/amd64", "linux/arm64"])

    @field_validator("registry_signing_key")
    @classmethod
    def _a_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None:
            Ed25519Key.from_text(key.get_secret_value())  # fail at start, not at the first approval
        return key

    def artifact_key(self) -> Ed25519Key:
        """The registry's signing key; SigningKeyError saying what to set when there is none."""
        if self.registry_signing_key is None:
            raise SigningKeyError(
                "MODELYARD_REGISTRY_SIGNING_KEY is not set: registry-svc signs artifact manifests and "
                "download URLs with it (`python -m modelyard_events.trust` prints a new key pair)"
            )
        return Ed25519Key.from_text(self.registry_signing_key.get_secret_value())

    def gates_json(self) -> str:
        """The configured gates, for logs."""
        return json.dumps(
            {m: [g.model_dump(exclude_none=True) for g in gs] for m, gs in self.registry_gates.items()}
        )
