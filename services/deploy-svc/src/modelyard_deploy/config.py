"""deploy-svc settings, from the environment only (docs/deploy.md, "Running deploy-svc")."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from modelyard_events.kafka_security import KafkaSecurity
from modelyard_events.plans import PlanChoice
from modelyard_events.trust import EventTrustSettings
from modelyard_grpc import GrpcSettings


class DeploySettings(GrpcSettings, PlanChoice, EventTrustSettings):
    """DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and MODELYARD_* (see docs/deploy.md)."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore", populate_by_name=True)

    token_audience: str = "deploy-svc"  # bearer tokens must name this service in `aud`

    database_url: str = Field(validation_alias=AliasChoices("DATABASE_URL", "MODELYARD_DATABASE_URL"))
    kafka_bootstrap_servers: str = Field(
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "MODELYARD_KAFKA_BOOTSTRAP_SERVERS")
    )
    kafka_security: KafkaSecurity = Field(default_factory=KafkaSecurity)  # MODELYARD_KAFKA_* (SASL/SSL)
    deploy_grpc_port: int = Field(default=50056, ge=0, le=65535)
    registry_svc_target: str = "127.0.0.1:50054"  # the registry's ReadEvents, to heal gaps in its topic
    job_svc_target: str = "127.0.0.1:50051"  # job-svc's ListJobs, for GetMobileStatus
    store_schema: str = "deploy"
    views_schema: str = "deploy_views"
    reactions_schema: str = "deploy_reactions"
    live_schema: str = "deploy_live"  # edge heartbeats: rows updated in place, not events
    topic_namespace: str = "modelyard"
    # What agents are told; a server silent for edge_silence_timeout_s is offline (no deployment of
    # it fails for that alone: its deadline decides).
    edge_heartbeat_interval_s: float = Field(default=10.0, gt=0, le=3600)
    edge_silence_timeout_s: float = Field(default=60.0, gt=0)
    # How often the conductor looks at due retries, deadlines and waves when no notice woke it.
    deploy_sweep_every_s: float = Field(default=1.0, gt=0, le=60)
