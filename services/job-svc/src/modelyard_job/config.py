"""job-svc settings, from the environment only."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from modelyard_events.kafka_security import KafkaSecurity
from modelyard_events.plans import PlanChoice
from modelyard_events.trust import EventTrustSettings
from modelyard_grpc import GrpcSettings
from modelyard_job.domain.lost_dispatches import DEFAULT_MAX_LOST_DISPATCHES


class JobSettings(GrpcSettings, PlanChoice, EventTrustSettings):
    """DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and MODELYARD_* (see docs/jobs.md, "Running the services")."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore", populate_by_name=True)

    token_audience: str = "job-svc"  # bearer tokens must name this service in `aud`

    database_url: str = Field(validation_alias=AliasChoices("DATABASE_URL", "MODELYARD_DATABASE_URL"))
    kafka_bootstrap_servers: str = Field(
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "MODELYARD_KAFKA_BOOTSTRAP_SERVERS")
    )
    kafka_security: KafkaSecurity = Field(default_factory=KafkaSecurity)  # MODELYARD_KAFKA_* (SASL/SSL)
    job_grpc_port: int = Field(default=50051, ge=0, le=65535)
    trainer_svc_target: str = "127.0.0.1:50052"  # trainer-svc's ReadEvents, to heal gaps in its topic
    dataset_svc_target: str = "127.0.0.1:50053"  # dataset-svc's GetVersion: CreateJob checks versions
    # registry-svc: GetVersion (a fine-tuning job's base) and ReadEvents (gaps in its topic)
    registry_svc_target: str = "127.0.0.1:50054"
    # deploy-svc's ReadEvents: the audit view and lineage heal gaps in its topic from it
    deploy_svc_target: str = Field(
        default="127.0.0.1:50056",
        validation_alias=AliasChoices("MODELYARD_DEPLOY_SVC_TARGET", "MODELYARD_DEPLOY_TARGET"),
    )
    store_schema: str = "job"
    views_schema: str = "job_views"
    live_schema: str = "job_live"
    reactions_schema: str = "job_reactions"
    topic_namespace: str = "modelyard"  # topics are <namespace>.<service>.events
    lease_ttl_s: float = Field(default=30.0, gt=0)
    # The lease lapse that makes this many lost dispatches in one attempt fails the job (a poison job).
    max_lost_dispatches: int = Field(default=DEFAULT_MAX_LOST_DISPATCHES, ge=1, le=100)
    # Local files are for development, tests and benchmarks; a cluster trains only on published versions.
    allow_file_datasets: bool = False
    # The queue priority of the evaluation runs the registry asks for (they have no CreateJob request).
    evaluation_priority: int = Field(default=50, ge=0, le=100)
    # EstimateJob's prices: kind of device → price per device-hour, e.g. {"cpu": 0.05, "cuda": 2.5}
    # (MODELYARD_PRICE_PER_DEVICE_HOUR, JSON); a kind without a price gets a duration and no cost.
    price_per_device_hour: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)

    @property
    def lease_ttl(self) -> timedelta:
        """How long a dispatch lives without a heartbeat renewing it."""
        return timedelta(seconds=self.lease_ttl_s)
