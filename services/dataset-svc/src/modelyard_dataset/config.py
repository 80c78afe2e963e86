"""dataset-svc settings, from the environment only."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from modelyard_blobs.factory import BlobStoreChoice
from modelyard_dataset.domain.readiness import ReadinessPolicy
from modelyard_events.kafka_security import KafkaSecurity
from modelyard_events.plans import PlanChoice
from modelyard_events.trust import EventTrustSettings
from modelyard_grpc import GrpcSettings


class DatasetSettings(GrpcSettings, PlanChoice, EventTrustSettings, BlobStoreChoice):
    """DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and MODELYARD_* (see docs/datasets.md, "Running dataset-svc")."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore", populate_by_name=True)

    token_audience: str = "dataset-svc"  # bearer tokens must name this service in `aud`

    database_url: str = Field(validation_alias=AliasChoices("DATABASE_URL", "MODELYARD_DATABASE_URL"))
    kafka_bootstrap_servers: str = Field(
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "MODELYARD_KAFKA_BOOTSTRAP_SERVERS")
    )
    kafka_security: KafkaSecurity = Field(default_factory=KafkaSecurity)  # MODELYARD_KAFKA_* (SASL/SSL)
    dataset_grpc_port: int = Field(default=50053, ge=0, le=65535)
    # The uses consumer heals gaps in job-svc's and the registry's topics through their ReadEvents,
    # with this service's own token (MODELYARD_TOKEN_FILE, role auditor).
    job_svc_target: str = "127.0.0.1:50051"
    registry_svc_target: str = "127.0.0.1:50054"
    store_schema: str = "dataset"
    views_schema: str = "dataset_views"
    topic_namespace: str = "modelyard"
    # Blob store (BlobStoreChoice): a local folder by default, or any S3-compatible endpoint
    # (credentials: AWS_* env).
    staging_root: Path | None = None  # default: <blob_root>/.staging (same filesystem: promote is a rename)
    max_file_bytes: int = Field(default=5 * 10**9, gt=0)
    # Readiness thresholds (docs/datasets.md, "Readiness").
    min_samples_per_class: int = Field(default=10, ge=1)
    min_class_balance: float = Field(default=0.1, ge=0, le=1)
    min_label_agreement: float = Field(default=0.8, ge=0, le=1)

    @property
    def staging(self) -> Path:
        """Where uploads are staged before they are accepted."""
        return self.staging_root or self.blob_root / ".staging"

    @property
    def readiness_policy(self) -> ReadinessPolicy:
        """The thresholds a version must meet to be ready."""
        return ReadinessPolicy(
            min_per_class=self.min_samples_per_class,
            min_class_balance=self.min_class_balance,
            min_agreement=self.min_label_agreement,
        )
