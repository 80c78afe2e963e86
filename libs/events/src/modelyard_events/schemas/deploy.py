"""Events of deploy-svc: edge servers, deployments and rollouts (DESIGN §5, docs/deploy.md).

Three stream types, so that a thousand agents reporting at once never contend for one stream:

- "edge_server", id `<org_id>/<server_id>`: who the server is and which model it runs per module.
- "deployment", id the deployment id: one (model version, edge server) install, pending →
  downloading → installing → completed | failed (| cancelled), retried with backoff.
- "rollout", id the rollout id: the waves of one deploy (or rollback) across servers, its halts and
  its rollback of the servers it changed.

A rollout never appends to a deployment's stream in the same call (appends are per stream): the
conductor creates each wave's deployments with ids derived from (rollout, wave, server), so a pass
repeated after a crash finds them already created and decides nothing twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelyard_events.envelope import DomainEvent
from modelyard_events.registry import EventRegistry
from modelyard_events.schemas.bounds import Detail, Identifier, Name, Reason, Sha256Hex

EDGE_SERVER_STREAM = "edge_server"
DEPLOYMENT_STREAM = "deployment"
ROLLOUT_STREAM = "rollout"

MAX_WAVES = 20
MAX_ROLLOUT_SERVERS = 10_000  # one rollout; a larger fleet is rolled out per environment in parts
TARGETS_PER_EVENT = 400  # a rollout's servers are listed in chunks, so every event stays small
NAMED_FAILURES = 50  # a halt names this many failed servers (and counts them all)
SERVER_ID_MAX_CHARS = 64
MAX_RUNNING_MODELS = 32  # modules one edge server runs side by side
EDGE_VERSION_MAX_CHARS = 64

SemanticVersion = Annotated[str, Field(max_length=EDGE_VERSION_MAX_CHARS)]
# An edge server's id: also its edge token's subject; short and plain so a rollout can list many.
ServerId = Annotated[str, Field(min_length=1, max_length=SERVER_ID_MAX_CHARS, pattern=r"^[A-Za-z0-9._-]+$")]
DeploymentStatus = Literal["pending", "downloading", "installing", "completed", "failed", "cancelled"]
# What the agent is doing within a status (downloading → "downloading"; installing → "verifying",
# "unpacking", "loading", "health_check", "switching"); reported for people, not decided on.
DeploymentPhase = Annotated[str, Field(max_length=32)]
RolloutKind = Literal["deploy", "rollback"]  # rollback: a release rollback or a rollout's undo
RolloutOutcome = Literal["completed", "halted", "rolled_back", "cancelled"]
_DEPLOYMENT_IDS = uuid.UUID("6f1c0f3e-5d2b-4c58-9a0e-6b8e2f9d4a71")


def edge_server_stream_id(org_id: str, server_id: str) -> str:
    """The stream of one edge server of one organization."""
    return f"{org_id}/{server_id}"


def wave_deployment_id(rollout_id: str, wave: int, server_id: str, kind: str = "deploy") -> str:
    """The deployment a rollout's wave makes for one server: the same every time it is decided."""
    return str(uuid.uuid5(_DEPLOYMENT_IDS, f"{rollout_id}/{kind}/{wave}/{server_id}"))


class HealthLimits(BaseModel):
    """How much worse than the model it replaces a new model may be on the agent's probe inputs.

    Ratios compare new with old on the same server; a difference below the absolute slack always
    passes (a 0.2 ms model that takes 0.5 ms is noise, not a regression).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_load_time_ratio: float = Field(default=3.0, gt=0)
    max_p95_latency_ratio: float = Field(default=2.0, gt=0)
    min_agreement: float = Field(default=0.0, ge=0, le=1)  # share of probes with the same class
    load_time_slack_ms: float = Field(default=250.0, ge=0)
    latency_slack_ms: float = Field(default=2.0, ge=0)


class ModelFigures(BaseModel):
    """One model measured on the agent's probe inputs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version_id: Identifier
    load_time_ms: float = Field(ge=0)
    latency_p95_ms: float = Field(ge=0)


class HealthReport(BaseModel):
    """The edge health gate: the new model against the running one, and the verdict with reasons."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    probes: int = Field(ge=0)
    new: ModelFigures
    old: ModelFigures | None = None  # None when the server ran no model of the module
    agreement: float | None = None  # None when the two models share no class
    compared_classes: int = Field(default=0, ge=0)
    passed: bool
    reasons: list[Detail] = Field(default_factory=list, max_length=8)  # one per failed limit


class RunningModel(BaseModel):
    """The model an edge server serves for one module."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ai_module: Name
    version_id: Identifier
    semantic_version: SemanticVersion = ""


class EdgeServerRegistered(DomainEvent):
    """An edge agent registered for the first time, or registered again with other facts."""

    type_name = "EdgeServerRegistered"
    server_id: ServerId
    org_id: Identifier
    environment: Name
    platform: Name
    edge_version: SemanticVersion
    hostname: Name = ""


class EdgeModelSwitched(DomainEvent):
    """The server now serves `version_id` for `ai_module` (reported by its agent: an install, a local
    rollback, or the first heartbeat of a server that already ran a model)."""

    type_name = "EdgeModelSwitched"
    server_id: ServerId
    org_id: Identifier
    ai_module: Name
    version_id: Identifier | None  # None: the server stopped serving the module
    previous_version_id: Identifier | None = None
    deployment_id: Identifier | None = None
    reported_at: datetime


class DeploymentCreated(DomainEvent):
    """A released version is to be installed on one server, at `scheduled_at` or later."""

    type_name = "DeploymentCreated"
    deployment_id: Identifier
    org_id: Identifier
    server_id: ServerId
    version_id: Identifier
    ai_module: Name
    semantic_version: SemanticVersion
    artifact_sha256: Sha256Hex
    artifact_size_bytes: int = Field(ge=0)
    previous_version_id: Identifier | None = None  # what the server ran for the module when decided
    rollout_id: Identifier | None = None
    wave: int | None = Field(default=None, ge=0)
    kind: RolloutKind = "deploy"
    scheduled_at: datetime
    deadline_at: datetime  # past it, a deployment not finished is failed, whatever its status
    max_retries: int = Field(ge=0, le=100)
    backoff_base_s: float = Field(gt=0)
    health: HealthLimits
    created_by: Identifier
    reason: Reason = ""


class DeploymentProgressed(DomainEvent):
    """The deployment moved (status or phase) or its percent advanced; failed ones say why.

    `retry_at` is set on a failure that will be retried automatically (backoff), None when it is
    final: no retries left, not retryable (a bad signature, a health-gate regression) or the deadline.
    """

    type_name = "DeploymentProgressed"
    deployment_id: Identifier
    server_id: ServerId
    attempt: int = Field(ge=1)
    status: DeploymentStatus
    phase: DeploymentPhase
    progress_percent: int = Field(ge=0, le=100)
    error_message: Reason = ""
    retry_at: datetime | None = None
    health: HealthReport | None = None
    reported_by: Literal["agent", "conductor"] = "agent"


class DeploymentRetried(DomainEvent):
    """A failed deployment is pending again (attempt + 1): by backoff, or by an operator."""

    type_name = "DeploymentRetried"
    deployment_id: Identifier
    attempt: int = Field(ge=2)
    retry_count: int = Field(ge=1)
    automatic: bool
    deadline_at: datetime  # an operator's retry of a deployment past its deadline gives it a new one
    reason: Reason = ""


class DeploymentCancelled(DomainEvent):
    """Cancelled by an operator, a halted rollout or a deprecated version; the agent learns of it
    on its next contact and keeps serving what it served."""

    type_name = "DeploymentCancelled"
    deployment_id: Identifier
    server_id: ServerId
    previous_status: DeploymentStatus
    reason: Reason


class RolloutStarted(DomainEvent):
    """A version is to reach `server_count` servers in waves of `wave_sizes` (the first wave is the
    canary). The servers follow in RolloutTargetsAdded events of the same append, in wave order."""

    type_name = "RolloutStarted"
    rollout_id: Identifier
    org_id: Identifier
    version_id: Identifier
    ai_module: Name
    semantic_version: SemanticVersion
    artifact_sha256: Sha256Hex
    artifact_size_bytes: int = Field(ge=0)
    environment: Name | None = None  # set when the target was "every server of the environment"
    server_count: int = Field(ge=1, le=MAX_ROLLOUT_SERVERS)
    wave_sizes: list[Annotated[int, Field(ge=1)]] = Field(min_length=1, max_length=MAX_WAVES)
    failure_threshold: float = Field(ge=0, le=1)  # a wave fails when failed/size exceeds it
    rollback_on_failure: bool
    kind: RolloutKind = "deploy"
    scheduled_at: datetime
    deadline_s: int = Field(gt=0)  # per deployment, from its wave's start
    max_retries: int = Field(ge=0, le=100)
    backoff_base_s: float = Field(gt=0)
    health: HealthLimits
    started_by: Identifier
    reason: Reason = ""
    # The registry's release rollback this rollout carries to the fleet (its version id), if any.
    release_rollback_of: Identifier | None = None


class RolloutTargetsAdded(DomainEvent):
    """Servers `first_index` … of the rollout, in wave order (appended with RolloutStarted)."""

    type_name = "RolloutTargetsAdded"
    rollout_id: Identifier
    first_index: int = Field(ge=0)
    server_ids: list[ServerId] = Field(min_length=1, max_length=TARGETS_PER_EVENT)


class RolloutWaveStarted(DomainEvent):
    """Wave `wave` began: the conductor creates its deployments with `wave_deployment_id`."""

    type_name = "RolloutWaveStarted"
    rollout_id: Identifier
    wave: int = Field(ge=0)
    first_index: int = Field(ge=0)
    count: int = Field(ge=1)
    started_at: datetime


class RolloutWaveFinished(DomainEvent):
    """Every deployment of wave `wave` ended (or enough failed to decide it)."""

    type_name = "RolloutWaveFinished"
    rollout_id: Identifier
    wave: int = Field(ge=0)
    completed: int = Field(ge=0)
    failed: int = Field(ge=0)
    cancelled: int = Field(ge=0)
    failure_ratio: float = Field(ge=0, le=1)
    passed: bool


class RolloutHalted(DomainEvent):
    """A wave's failure ratio passed the threshold: no further wave starts, and the wave's unfinished
    deployments are cancelled. With `rolling_back`, every server the rollout completed gets a
    deployment of the version it ran before (the previous_version_id of its deployment)."""

    type_name = "RolloutHalted"
    rollout_id: Identifier
    wave: int = Field(ge=0)
    failure_ratio: float = Field(ge=0, le=1)
    threshold: float = Field(ge=0, le=1)
    reason: Reason
    failed_count: int = Field(ge=0)
    failed_servers: list[ServerId] = Field(max_length=NAMED_FAILURES)  # the first ones, by name
    rolling_back: bool


class RolloutRollbackRequested(DomainEvent):
    """An operator asked to put the servers this rollout changed back to what they ran before."""

    type_name = "RolloutRollbackRequested"
    rollout_id: Identifier
    reason: Reason


class RolloutCancelled(DomainEvent):
    """An operator stopped the rollout: no further wave starts; unfinished deployments are cancelled."""

    type_name = "RolloutCancelled"
    rollout_id: Identifier
    reason: Reason


class RolloutFinished(DomainEvent):
    """The rollout ended: every wave passed, it halted (and rolled back), or it was cancelled."""

    type_name = "RolloutFinished"
    rollout_id: Identifier
    outcome: RolloutOutcome
    completed_servers: int = Field(ge=0)
    failed_servers: int = Field(ge=0)
    reason: Reason = ""


DEPLOY_EVENTS = EventRegistry(
    [
        EdgeServerRegistered,
        EdgeModelSwitched,
        DeploymentCreated,
        DeploymentProgressed,
        DeploymentRetried,
        DeploymentCancelled,
        RolloutStarted,
        RolloutTargetsAdded,
        RolloutWaveStarted,
        RolloutWaveFinished,
        RolloutHalted,
        RolloutRollbackRequested,
        RolloutCancelled,
        RolloutFinished,
    ]
)
